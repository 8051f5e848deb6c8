"""Validation of a leaderboard submission (a results file + its samples, or an evaluation request).

Trust model: the submission is data, never configuration. The reviewer reads the scoring options
(NLI model and revision, FCD and fingerprint conventions, FCD reference statistics, hallucination,
bootstrap settings, the split) from the eval set's pinned configuration
(``lmolt_hub.metrics.metric_config.load_metric_config``) and recomputes every reported number
from the submitted outputs. ``metric_options`` in a results file is ignored.

Every check raises :class:`SubmissionError` with a reason a submitter can act on; the reviewer
posts that reason as the PR comment. The checks, in order:

1. size (before anything is read), strict JSON (no NaN/Infinity), nothing "not computed", the
   results schema (``lmolt_hub.formats.results.validate_results``), no undeclared file;
2. versions: the template (the one the recorded prompt format uses) and metric-code versions are
   the installed ones;
3. the model: exists on the Hub at that revision (resolved to a commit sha), its config files are
   JSON, within the download and parameter limits with its declared shapes (checked in a limited
   child process), it loads without remote code and without pickle weights, its card declares a
   licence; an adapter's base model exists;
4. the eval set is ours (``<org>/lmolt-eval-3k``) at an existing revision, the whole pinned split;
5. samples: one file per direction, each matching the eval set row for row by id and by a hash of
   (source, reference), in any order, none missing or extra;
6. "re-scored": points, confidence intervals (the eval set's bootstrap settings), hallucination
   values and every row's per-sample metrics recomputed from the submitted outputs equal the
   submitted ones;
7. "reproduced" (spot check, on by default in the reviewer): ``n`` pairs per direction, drawn from
   a secret source (90: a 5% forged share is caught with probability >= 99%), are regenerated
   greedily with the submitted model at its sha in a limited child and must equal the submitted
   outputs.

Ownership, duplicates and the per-author rate limit depend on who opened the PR and on the other
submissions and are checked by the reviewer (``review.review``).

Modules, one per kind of check: ``basic`` (1, 2, 4, 5), ``model`` (3: the only part that calls the
Hub about the model), ``scores`` (6), ``spot`` (7, with the regenerator).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.leaderboard.layout import REQUEST_FILE, RESULTS_FILE, SUBMISSION_FILE
from lmolt_hub.leaderboard.records import Record, verified_record
from lmolt_hub.leaderboard.validate.basic import (
    MAX_SUBMISSION_BYTES,
    ReviewerSetupError,
    SubmissionError,
    check_complete,
    check_eval_dataset,
    check_samples,
    check_sizes,
    check_sizes_remote,
    check_versions,
    load_eval_set,
    load_results,
    pair_hash,
    strict_json,
)
from lmolt_hub.leaderboard.validate.model import MAX_DOWNLOAD_BYTES, MAX_PARAMS, check_model
from lmolt_hub.leaderboard.validate.scores import check_metrics, check_options
from lmolt_hub.leaderboard.validate.spot import (
    DEFAULT_SPOT_CHECK,
    Regenerate,
    regenerator,
    spot_check,
    spot_check_settings,
)

__all__ = [
    "DEFAULT_SPOT_CHECK",
    "MAX_DOWNLOAD_BYTES",
    "MAX_PARAMS",
    "MAX_SUBMISSION_BYTES",
    "Regenerate",
    "ReviewerSetupError",
    "SubmissionError",
    "Verdict",
    "check_complete",
    "check_eval_dataset",
    "check_metrics",
    "check_model",
    "check_options",
    "check_samples",
    "check_sizes",
    "check_sizes_remote",
    "check_versions",
    "load_eval_set",
    "load_results",
    "pair_hash",
    "regenerator",
    "results_sha256",
    "spot_check",
    "spot_check_settings",
    "strict_json",
    "validate_request",
    "validate_results_submission",
]

RESCORED, REPRODUCED = "re-scored", "reproduced"  # the two verification statuses


@dataclass
class Verdict:
    record: Record
    results: dict[str, Any]
    checks: list[str] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)


def check_declared_files(directory: Path, files: list[Path], declared: set[str]) -> None:
    """A submission folder holds the declared files only (results + its samples, or a request, and
    the ``submission.json`` that ``submit`` writes)."""
    declared = declared | {SUBMISSION_FILE}
    extra = sorted(
        p.relative_to(directory).as_posix()
        for p in files
        if p.relative_to(directory).as_posix() not in declared
    )
    if extra:
        raise SubmissionError(
            f"the submission folder holds files it does not declare ({', '.join(extra[:5])}); submit only "
            f"{', '.join(sorted(declared))}"
        )


def results_sha256(data: bytes) -> str:
    """The hash that binds a verification record to the exact results.json bytes it verified."""
    return hashlib.sha256(data).hexdigest()


def validate_results_submission(
    directory: Path,
    *,
    api: Any,
    org: str,
    max_bytes: int = MAX_SUBMISSION_BYTES,
    regenerate: Regenerate | None = None,
    spot_check_n: int = 0,
    spot_check_full: bool = False,
    model_options: dict[str, Any] | None = None,
    requested: bool = False,
) -> Verdict:
    """All per-submission checks on a downloaded submission folder; raises SubmissionError.

    ``model_options`` go to :func:`check_model` (``limits``, ``max_params``, ``max_download_bytes``);
    ``requested``: the reviewer evaluated an evaluation request into this folder (its request stays)."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    check_sizes(files, max_bytes)
    path = directory / RESULTS_FILE
    if not path.is_file():
        raise SubmissionError(f"the submission has no {RESULTS_FILE}")
    raw = path.read_bytes()
    results = load_results(path)
    check_declared_files(
        directory, files, {RESULTS_FILE, *results["samples"].values(), *([REQUEST_FILE] if requested else [])}
    )
    checks = ["size", "json", "complete", "schema"]
    check_versions(results)
    checks.append("versions")
    model = results["model"]
    facts = check_model(api, model["id"], pinned_revision(model), **(model_options or {}))
    if model.get("sha") and facts["sha"] != model["sha"]:
        raise SubmissionError(f"model {model['id']}: revision {model['sha']} resolves to {facts['sha']}")
    checks.append("model")
    cfg = check_eval_dataset(results, org, api)
    eval_set = load_eval_set(cfg.eval_dataset, cfg.eval_revision, cfg.split)
    checks.append("eval_set")
    samples = check_samples(directory, results, eval_set.rows, f"{cfg.eval_dataset}@{cfg.eval_revision[:12]}")
    checks.append("samples")
    check_metrics(results, samples, cfg, api)
    checks.append("metrics")
    statuses = [RESCORED]
    verification: dict[str, Any] = {
        "results_sha256": results_sha256(raw),
        "statuses": statuses,
        "checks": checks,
        "license": facts["license"],
        "model_sha": facts["sha"],
        "weights_sha256": facts.get("weights_sha256"),
        "samples_sha256": {
            name: results_sha256((directory / name).read_bytes())
            for name in sorted(results["samples"].values())
        },
        "eval_revision": cfg.eval_revision,
        "metric_config": cfg.to_dict(),
        "spot_check": None,
    }
    if spot_check_n > 0:
        if regenerate is None:  # the reviewer's set-up, not the submitter's fault
            raise ValueError(
                "spot_check_n > 0 needs a regenerate function (lmolt_hub.leaderboard.validate.regenerator)"
            )
        verification["spot_check"] = spot_check(
            results, samples, regenerate, spot_check_n, facts["sha"], full=spot_check_full
        )
        checks.append("spot_check")
        statuses.append(REPRODUCED)
    record = verified_record(results, verification=verification)
    record.revision, record.eval_revision = facts["sha"], cfg.eval_revision  # shas: one model, one row
    return Verdict(record=record, results=results, checks=checks, verification=verification)


def validate_request(
    directory: Path,
    *,
    api: Any,
    max_bytes: int = MAX_SUBMISSION_BYTES,
    model_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An evaluation request: ``request.json`` = {"model": id, "revision": rev or null}."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    check_sizes(files, max_bytes)
    check_declared_files(directory, files, {REQUEST_FILE})
    path = directory / REQUEST_FILE
    request = strict_json(path.read_bytes(), REQUEST_FILE)
    if not isinstance(request, dict) or not isinstance(request.get("model"), str) or not request["model"]:
        raise SubmissionError(f"{REQUEST_FILE} must be an object with a string 'model'")
    revision = request.get("revision") or "main"
    if not isinstance(revision, str):
        raise SubmissionError(f"{REQUEST_FILE}: 'revision' must be a string")
    facts = check_model(api, request["model"], revision, **(model_options or {}))
    return {"model": request["model"], "revision": facts["sha"], "license": facts["license"]}
