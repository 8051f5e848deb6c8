"""Validation of a leaderboard submission (a results file + its samples, or an evaluation request).

Every check raises :class:`SubmissionError` with a reason a submitter can act
on; the reviewer posts that reason as the PR comment. The checks, in order:

1. size (before anything is read), strict JSON (no NaN/Infinity), the results
   schema (``lmolt_hub.results.validate_results``);
2. versions: the template and metric-code versions are the installed ones (so
   the metrics can be recomputed exactly);
3. the model: exists on the Hub at that revision, loads without remote code,
   its card declares a licence; an adapter's base model exists;
4. the eval set is ours (``<org>/lmolt-eval-3k``) at an existing revision;
5. samples: one file per direction, each matching the eval set row for row by
   id and by a hash of (source, reference), in any order, none missing or extra;
6. metrics recomputed from the submitted outputs with ``lmolt_hub.metrics.score``
   equal the submitted values;
7. (optional) spot check: a random subset regenerated greedily with the
   harness must match the submitted raw outputs exactly.

Duplicates and the per-namespace rate limit depend on the other submissions
and are checked by the reviewer (``submissions.review``) with
:func:`check_duplicate` and :func:`check_rate_limit`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.leaderboard.records import Record, verified_record
from lmolt_hub.naming import EVAL_DATASET
from lmolt_hub.prompts import source_target

MAX_SUBMISSION_BYTES = 200 * 1024 * 1024  # a full 3k-pair submission is a few MB
RESULTS_FILE = "results.json"
REQUEST_FILE = "request.json"
# Metric values are floats computed by the same code; allow only rounding noise.
REL_TOL = 1e-6
ABS_TOL = 1e-9


class SubmissionError(ValueError):
    """A submission is refused; ``str(err)`` is the reason shown to the submitter."""


@dataclass
class Verdict:
    record: Record
    results: dict[str, Any]
    checks: list[str] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)


def pair_hash(source: str, reference: str) -> str:
    """Hash of one evaluation pair; samples are matched to the eval set by id and this hash."""
    return hashlib.sha256(json.dumps([source, reference], ensure_ascii=False).encode()).hexdigest()


def _reject_constant(name: str) -> Any:
    raise SubmissionError(f"non-finite number {name} in JSON: NaN and Infinity are not allowed")


def strict_json(text: str | bytes, what: str) -> Any:
    """Parse JSON refusing NaN/Infinity (Python's json accepts them by default)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except SubmissionError as exc:
        raise SubmissionError(f"{what}: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{what} is not valid JSON: {exc}") from None


def check_sizes(paths: Sequence[Path], max_bytes: int = MAX_SUBMISSION_BYTES) -> None:
    total = sum(p.stat().st_size for p in paths)
    if total > max_bytes:
        raise SubmissionError(f"submission is {total:,} bytes, over the {max_bytes:,}-byte limit")


def check_sizes_remote(sizes: dict[str, int], max_bytes: int = MAX_SUBMISSION_BYTES) -> None:
    """Size check from the repo tree, so an oversize upload is refused before it is downloaded."""
    total = sum(sizes.values())
    if total > max_bytes:
        biggest = max(sizes, key=sizes.__getitem__)
        raise SubmissionError(
            f"submission is {total:,} bytes, over the {max_bytes:,}-byte limit (largest file: {biggest})"
        )


def _finite(obj: Any, path: str = "") -> None:
    """Numbers must be finite and counts non-negative (the schema checks types; this, values)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _finite(v, f"{path}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise SubmissionError(f"{path} is not a finite number")


def load_results(path: Path) -> dict[str, Any]:
    from lmolt_hub.results import ResultsValidationError, validate_results

    obj = strict_json(path.read_bytes(), RESULTS_FILE)
    try:
        validate_results(obj)
    except ResultsValidationError as exc:
        raise SubmissionError(f"{RESULTS_FILE} does not match the results schema: {exc}") from None
    _finite(obj)
    if obj["kind"] != "model" or not obj["model"].get("id"):
        raise SubmissionError("results must come from a Hub model (kind 'model' with a model id)")
    if not (obj["model"].get("sha") or obj["model"].get("revision")):
        raise SubmissionError("results must name the model revision (model.sha)")
    return obj


def check_versions(results: dict[str, Any]) -> None:
    from lmolt_hub.metrics import METRICS_VERSION
    from lmolt_hub.prompts import TEMPLATE_VERSION

    if results["template_version"] != TEMPLATE_VERSION:
        raise SubmissionError(
            f"template_version {results['template_version']!r} is not this leaderboard's {TEMPLATE_VERSION!r}"
        )
    if results["metrics_version"] != METRICS_VERSION:
        raise SubmissionError(
            f"metrics_version {results['metrics_version']!r} differs from the installed {METRICS_VERSION!r}; "
            "re-score with the current lmolt-hub"
        )


# --------------------------------------------------------------------------- the model on the Hub


def _card_license(api: Any, repo_id: str, revision: str, info: Any) -> str | None:
    card = getattr(info, "card_data", None) or getattr(info, "cardData", None)
    license_ = card.get("license") if card is not None and hasattr(card, "get") else None
    if license_:
        return str(license_)
    try:  # fall back to the README front matter
        from lmolt_hub.cards import parse_card

        readme = api.hf_hub_download(repo_id, "README.md", revision=revision)
        meta = parse_card(Path(readme).read_text(encoding="utf-8"))[0]
        return meta.get("license")
    except Exception:  # noqa: BLE001 - no card means no licence
        return None


def _check_loads(model_id: str, revision: str) -> None:
    """transformers must know the architecture without remote code (the config is enough to tell)."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(model_id, revision=revision, trust_remote_code=False)
    except (ValueError, OSError, KeyError) as exc:
        raise SubmissionError(f"model {model_id} does not load without remote code: {exc}") from None


def check_model(api: Any, model_id: str, revision: str) -> dict[str, Any]:
    """Existence at ``revision``, no remote code, a licence, and an adapter's base. Returns facts."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        info = api.model_info(model_id, revision=revision)
    except (HfHubHTTPError, HFValidationError) as exc:
        raise SubmissionError(
            f"model {model_id} not found at revision {revision} on the Hub ({exc})"
        ) from None
    names = [s.rfilename for s in info.siblings or []]
    if any(n.endswith(".py") for n in names):
        raise SubmissionError(
            f"model {model_id} ships Python files: models needing remote code are not accepted"
        )
    facts: dict[str, Any] = {"sha": info.sha}
    if "adapter_config.json" in names:
        cfg = json.loads(
            Path(api.hf_hub_download(model_id, "adapter_config.json", revision=revision)).read_text()
        )
        base = cfg.get("base_model_name_or_path")
        if not base:
            raise SubmissionError(f"adapter {model_id} does not name its base model")
        try:
            base_info = api.model_info(base)
        except (HfHubHTTPError, HFValidationError):
            # e.g. a local path left in adapter_config.json: nobody else could load this adapter
            raise SubmissionError(
                f"adapter {model_id}: its base model {base!r} (adapter_config.json base_model_name_or_path) "
                "is not a model on the Hub"
            ) from None
        facts["base_model"] = base
        facts["base_sha"] = base_info.sha
    elif "config.json" in names:
        cfg = json.loads(Path(api.hf_hub_download(model_id, "config.json", revision=revision)).read_text())
        if cfg.get("auto_map"):
            raise SubmissionError(f"model {model_id} needs remote code (config.json has auto_map)")
        _check_loads(model_id, revision)
    else:
        raise SubmissionError(f"model {model_id}@{revision} has neither config.json nor adapter_config.json")
    license_ = _card_license(api, model_id, revision, info)
    if not license_:
        raise SubmissionError(
            f"model {model_id}: its card declares no licence (add `license:` to the README)"
        )
    facts["license"] = license_
    return facts


# --------------------------------------------------------------------------- the eval set


def check_eval_dataset(results: dict[str, Any], org: str) -> tuple[str, str]:
    ours = f"{org}/{EVAL_DATASET}"
    eval_ds = results["eval_dataset"]
    if eval_ds.get("id") != ours:
        raise SubmissionError(
            f"results are for eval set {eval_ds.get('id')!r}; this leaderboard scores {ours!r}"
        )
    revision = eval_ds.get("sha") or eval_ds.get("revision")
    if not revision:
        raise SubmissionError("results must name the eval set revision (eval_dataset.revision)")
    return ours, revision


def load_eval_set(repo_id: str, revision: str, split: str | None = None) -> Any:
    """The eval set at ``revision``, read by the harness's own loader (``lmolt_hub.evaluation.tasks``)."""
    from lmolt_hub.evaluation.tasks import EvalSetError
    from lmolt_hub.evaluation.tasks import load_eval_set as harness_load

    try:
        return harness_load(repo_id, revision, split or "test")
    except EvalSetError as exc:
        raise SubmissionError(f"eval set {repo_id}@{revision}: {exc}") from None


# --------------------------------------------------------------------------- samples and metrics


def _read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    from lmolt_hub.results import ResultsValidationError, validate_sample

    rows = []
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        row = strict_json(line, f"{what}, line {n}")
        try:
            validate_sample(row)
        except ResultsValidationError as exc:
            raise SubmissionError(f"{what}, line {n}: {exc}") from None
        rows.append(row)
    return rows


def check_samples(
    directory: Path, results: dict[str, Any], eval_rows: Sequence[dict[str, Any]], label: str
) -> dict[str, list[dict[str, Any]]]:
    """direction -> sample rows in eval-set order; refuses missing, extra, duplicated or altered rows.

    ``eval_rows`` are the eval set's ``{id, molecule, caption}``; ``label`` names it in messages.
    """
    expected = {str(r["id"]): r for r in eval_rows}
    ordered: dict[str, list[dict[str, Any]]] = {}
    for direction in results["directions"]:
        name = results["samples"].get(direction)
        if not name or Path(name).name != name:
            raise SubmissionError(
                f"results.samples must name a samples file for {direction} (a plain file name)"
            )
        path = directory / name
        if not path.is_file():
            raise SubmissionError(f"samples file {name} for {direction} is missing from the submission")
        rows = _read_jsonl(path, name)
        by_id: dict[str, dict[str, Any]] = {}
        for row in rows:
            key = str(row["id"])
            if key in by_id:
                raise SubmissionError(f"{name}: sample id {key} appears twice")
            if row["direction"] != direction:
                raise SubmissionError(f"{name}: sample {key} is for {row['direction']}, not {direction}")
            by_id[key] = row
        missing = sorted(set(expected) - set(by_id))
        extra = sorted(set(by_id) - set(expected))
        if missing or extra:
            raise SubmissionError(
                f"{name} does not match the eval set {label}: "
                f"{len(missing)} missing row(s) {missing[:5]}, {len(extra)} extra row(s) {extra[:5]}"
            )
        for key, gold in expected.items():
            source, reference = source_target(direction, gold["molecule"], gold["caption"])
            row = by_id[key]
            if pair_hash(row["source"], row["reference"]) != pair_hash(source, reference):
                raise SubmissionError(
                    f"{name}: sample {key} has a source/reference that differs from the eval set"
                )
        count = results["n_samples"].get(direction)
        if count != len(rows):
            raise SubmissionError(f"n_samples.{direction} is {count}, but {name} has {len(rows)} rows")
        ordered[direction] = [by_id[k] for k in expected]
    return ordered


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return (a is None or (isinstance(a, float) and math.isnan(a))) and (
            b is None or (isinstance(b, float) and math.isnan(b))
        )
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _score_options(results: dict[str, Any], direction: str) -> tuple[dict[str, Any], bool]:
    """(options for ``score``, hallucination flag) as the harness recorded them in ``metric_options``."""
    recorded = results.get("metric_options") or {}
    hallucination = bool(recorded.get("hallucination", True))
    if "by_direction" in recorded:
        options = dict((recorded.get("by_direction") or {}).get(direction) or {})
    else:
        options = {k: v for k, v in recorded.items() if k != "hallucination"}
    return {k: v for k, v in options.items() if v is not None}, hallucination


def _compare(block: str, direction: str, submitted: dict[str, Any], recomputed: dict[str, Any]) -> None:
    for name, value in sorted(recomputed.items()):
        if name not in submitted:
            raise SubmissionError(f"{block}.{direction} lacks {name!r}, which the harness computes")
        if not _same(submitted[name], value):
            raise SubmissionError(
                f"{block}.{direction}.{name} = {submitted[name]!r}, but recomputing it from the "
                f"submitted outputs gives {value!r}"
            )


def check_metrics(
    results: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]],
    fcd_stats: Callable[[list[str]], Any] | None = None,
) -> None:
    """Recompute every metric from the submitted outputs; all must equal the submitted values.

    Uses the harness's own scoring layer (``lmolt_hub.evaluation.scoring.score_direction`` over
    ``lmolt_hub.metrics.score``) with the options the submission recorded; for L->M the FCD
    reference statistics come from the eval set (``fcd_stats``), exactly as the harness gets them.
    """
    from lmolt_hub.evaluation.scoring import score_direction

    for direction, rows in samples.items():
        options, hallucination = _score_options(results, direction)
        references = [r["reference"] for r in rows]
        if direction == "caption2smiles" and fcd_stats is not None:
            stats = fcd_stats(references)
            if stats is not None:
                options["fcd_reference_stats"] = stats
        try:
            scores = score_direction(
                direction, [r["output"] for r in rows], references, options=options,
                hallucination=hallucination, bootstrap_resamples=0,
            )  # fmt: skip
        except ValueError as exc:
            raise SubmissionError(f"metric options of {direction} cannot be reproduced: {exc}") from None
        reported = results["results"].get(direction, {})
        unknown = sorted(set(reported) - set(scores.corpus))
        if unknown:
            raise SubmissionError(f"results.{direction} has metrics the harness does not compute: {unknown}")
        _compare("results", direction, reported, scores.corpus)
        _compare(
            "hallucination", direction, results["hallucination"].get(direction) or {}, scores.hallucination
        )


# --------------------------------------------------------------------------- spot check

# (results document, direction, sample rows) -> the harness's cleaned outputs, one per row.
Regenerate = Callable[[dict[str, Any], str, list[dict[str, Any]]], list[str]]


def spot_check(
    results: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]],
    regenerate: Regenerate,
    n: int,
    seed: int,
) -> dict[str, Any]:
    """Regenerate ``n`` random pairs per direction; every output must equal the submitted one exactly."""
    params = (results.get("generation") or {}).get("params") or {}
    if params.get("do_sample"):
        raise SubmissionError("spot check needs greedy outputs, but the submission sampled (do_sample=true)")
    rng = random.Random(seed)
    checked: dict[str, list[str]] = {}
    for direction, rows in sorted(samples.items()):
        chosen = sorted(rng.sample(range(len(rows)), min(n, len(rows))))
        picked = [rows[i] for i in chosen]
        outputs = regenerate(results, direction, picked)
        for row, output in zip(picked, outputs, strict=True):
            if output != row["output"]:
                raise SubmissionError(
                    f"spot check failed: regenerating sample {row['id']} ({direction}) gave {output!r}, "
                    f"the submission has {row['output']!r}"
                )
        checked[direction] = [str(r["id"]) for r in picked]
    return {"n_per_direction": n, "seed": seed, "ids": checked, "matched": True}


# --------------------------------------------------------------------------- cross-submission checks


def check_duplicate(record: Record, accepted: Sequence[Record]) -> None:
    for other in accepted:
        if other.key() == record.key():
            raise SubmissionError(
                f"duplicate: {record.model}@{(record.revision or '')[:12]} on {record.eval_dataset}"
                f"@{(record.eval_revision or '')[:12]} (template {record.template_version}, metrics "
                f"{record.metrics_version}) is already on the leaderboard ({other.source})"
            )


def check_rate_limit(
    namespace: str, this_time: _dt.datetime, earlier: Sequence[_dt.datetime], limit: int, window_hours: float
) -> None:
    """At most ``limit`` submissions per namespace within ``window_hours`` (counting this one)."""
    start = this_time - _dt.timedelta(hours=window_hours)
    recent = [t for t in earlier if start <= t <= this_time]
    if len(recent) + 1 > limit:
        raise SubmissionError(
            f"rate limit: namespace {namespace!r} already has {len(recent)} submission(s) in the last "
            f"{window_hours:g} h (limit {limit}); try again later"
        )


# --------------------------------------------------------------------------- the whole submission


def validate_results_submission(
    directory: Path,
    *,
    api: Any,
    org: str,
    max_bytes: int = MAX_SUBMISSION_BYTES,
    regenerate: Regenerate | None = None,
    spot_check_n: int = 0,
    seed: int = 0,
) -> Verdict:
    """All per-submission checks on a downloaded submission folder; raises SubmissionError."""
    check_sizes([p for p in directory.rglob("*") if p.is_file()], max_bytes)
    path = directory / RESULTS_FILE
    if not path.is_file():
        raise SubmissionError(f"the submission has no {RESULTS_FILE}")
    results = load_results(path)
    checks = ["size", "json", "schema"]
    check_versions(results)
    checks.append("versions")
    model = results["model"]
    facts = check_model(api, model["id"], model.get("sha") or model["revision"])
    if model.get("sha") and facts["sha"] != model["sha"]:
        raise SubmissionError(f"model {model['id']}: revision {model['sha']} resolves to {facts['sha']}")
    checks.append("model")
    repo_id, revision = check_eval_dataset(results, org)
    eval_set = load_eval_set(repo_id, revision, results["eval_dataset"].get("split"))
    checks.append("eval_set")
    samples = check_samples(directory, results, eval_set.rows, f"{repo_id}@{(eval_set.sha or revision)[:12]}")
    checks.append("samples")
    check_metrics(results, samples, eval_set.fcd_stats)
    checks.append("metrics")
    verification: dict[str, Any] = {"checks": checks, "license": facts["license"], "spot_check": None}
    if spot_check_n > 0:
        if regenerate is None:  # the reviewer's set-up, not the submitter's fault
            raise ValueError("spot_check_n > 0 needs a regenerate function (lmolt_hub.leaderboard.harness)")
        verification["spot_check"] = spot_check(results, samples, regenerate, spot_check_n, seed)
        checks.append("spot_check")
    record = verified_record(results, verification=verification)
    return Verdict(record=record, results=results, checks=checks, verification=verification)


def validate_request(directory: Path, *, api: Any, max_bytes: int = MAX_SUBMISSION_BYTES) -> dict[str, Any]:
    """An evaluation request: ``request.json`` = {"model": id, "revision": rev or null}."""
    check_sizes([p for p in directory.rglob("*") if p.is_file()], max_bytes)
    path = directory / REQUEST_FILE
    request = strict_json(path.read_bytes(), REQUEST_FILE)
    if not isinstance(request, dict) or not isinstance(request.get("model"), str) or not request["model"]:
        raise SubmissionError(f"{REQUEST_FILE} must be an object with a string 'model'")
    revision = request.get("revision") or "main"
    if not isinstance(revision, str):
        raise SubmissionError(f"{REQUEST_FILE}: 'revision' must be a string")
    facts = check_model(api, request["model"], revision)
    return {"model": request["model"], "revision": facts["sha"], "license": facts["license"]}
