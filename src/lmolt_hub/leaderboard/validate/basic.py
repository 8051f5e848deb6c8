"""Basic checks of one submission: sizes, strict JSON, the results schema, versions, the eval set
(the whole pinned split) and the samples files (row for row against the eval set)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.leaderboard.layout import RESULTS_FILE
from lmolt_hub.naming import EVAL_DATASET
from lmolt_hub.prompts import source_target

if TYPE_CHECKING:
    from lmolt_hub.metrics.metric_config import MetricConfig

MAX_SUBMISSION_BYTES = 200 * 1024 * 1024  # a full 3k-pair submission is a few MB


class SubmissionError(ValueError):
    """A submission is refused; ``str(err)`` is the reason shown to the submitter."""


class ReviewerSetupError(RuntimeError):
    """The reviewer itself cannot work (e.g. the eval set's NLI model is unavailable): not the
    submitter's fault, so the PR stays pending with this reason."""


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
    except RecursionError:
        raise SubmissionError(f"{what}: JSON nested too deeply to read") from None


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


def _not_computed(obj: Any, path: str = "") -> list[str]:
    """Paths of values the harness marked "not computed: <reason>" (and the reasons)."""
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _not_computed(v, f"{path}.{k}" if path else str(k))]
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _not_computed(v, f"{path}[{i}]")]
    if isinstance(obj, str) and obj.lower().startswith("not computed"):
        return [f"{path} ({obj})"]
    return []


def check_complete(results: Any) -> None:
    """A result with metrics "not computed" (e.g. no NLI model at hand) is incomplete: refused."""
    if not isinstance(results, dict):
        return
    missing = _not_computed({k: v for k, v in results.items() if k not in ("command", "warnings")})
    if missing:
        raise SubmissionError(
            f"incomplete results: {'; '.join(missing[:3])}; re-run the harness where the eval set's "
            "NLI model can be loaded (it scores every metric), then submit"
        )


def load_results(path: Path) -> dict[str, Any]:
    from lmolt_hub.formats.results import ResultsValidationError, validate_results

    obj = strict_json(path.read_bytes(), RESULTS_FILE)
    check_complete(obj)
    try:
        validate_results(obj)
    except ResultsValidationError as exc:
        raise SubmissionError(f"{RESULTS_FILE} does not match the results schema: {exc}") from None
    _finite(obj)
    if obj["kind"] != "model" or not obj["model"].get("id"):
        raise SubmissionError("results must come from a Hub model (kind 'model' with a model id)")
    if not pinned_revision(obj["model"]):
        raise SubmissionError("results must name the model revision (model.sha)")
    return obj


def check_versions(results: dict[str, Any]) -> None:
    from lmolt_hub.metrics import METRICS_VERSION
    from lmolt_hub.prompts import TEMPLATE_VERSION, template_version

    fmt = results.get("prompt_format")  # the format the harness resolved and used (null: older results)
    used = template_version(fmt) if fmt else results["template_version"]
    if results["template_version"] != used:
        raise SubmissionError(
            f"template_version {results['template_version']!r} is not the one prompt_format "
            f"{results.get('prompt_format')!r} uses ({used!r}): record the template the prompts were built with"
        )
    if results["template_version"] != TEMPLATE_VERSION:
        raise SubmissionError(
            f"template_version {results['template_version']!r} is not this leaderboard's {TEMPLATE_VERSION!r}"
        )
    if results["metrics_version"] != METRICS_VERSION:
        raise SubmissionError(
            f"metrics_version {results['metrics_version']!r} differs from the installed {METRICS_VERSION!r}; "
            "re-score with the current lmolt-hub"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# --------------------------------------------------------------------------- the eval set


def check_eval_dataset(results: dict[str, Any], org: str, api: Any = None) -> MetricConfig:
    """The eval set's pinned configuration at the submitted revision; refuses other sets and slices."""
    from lmolt_hub.metrics.metric_config import MetricConfigError, load_metric_config

    ours = f"{org}/{EVAL_DATASET}"
    eval_ds = results["eval_dataset"]
    if eval_ds.get("id") != ours:
        raise SubmissionError(
            f"results are for eval set {eval_ds.get('id')!r}; this leaderboard scores {ours!r}"
        )
    revision = pinned_revision(eval_ds)
    if not revision:
        raise SubmissionError("results must name the eval set revision (eval_dataset.revision)")
    try:
        cfg = load_metric_config(ours, revision, api=api)
    except MetricConfigError as exc:
        raise SubmissionError(str(exc)) from None
    if eval_ds.get("sha") and eval_ds["sha"] != cfg.eval_revision:
        raise SubmissionError(f"eval_dataset.sha {eval_ds['sha']} is not a commit of {ours}")
    split, limit = eval_ds.get("split"), eval_ds.get("limit")
    if (split is not None and split != cfg.split) or limit is not None:
        raise SubmissionError(
            f"results cover eval_dataset split {split!r} with limit {limit!r}; the leaderboard scores the "
            f"whole split {cfg.split!r} (run the harness without --limit or --split)"
        )
    return cfg


def load_eval_set(repo_id: str, revision: str, split: str | None = None) -> Any:
    """The eval set at ``revision``, read by the harness's own loader (``lmolt_hub.formats.eval_set``)."""
    from lmolt_hub.formats.eval_set import EvalSetError
    from lmolt_hub.formats.eval_set import load_eval_set as harness_load

    try:
        return harness_load(repo_id, revision, split or "test")
    except EvalSetError as exc:
        raise SubmissionError(f"eval set {repo_id}@{revision}: {exc}") from None


# --------------------------------------------------------------------------- samples and metrics


def _read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    from lmolt_hub.formats.results import ResultsValidationError, validate_sample

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


# Values from a neural network (ChemNet for FCD, the NLI cross-encoder) differ in the last float
