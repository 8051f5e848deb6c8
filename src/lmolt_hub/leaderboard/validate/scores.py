"""The score checks ("re-scored"): every reported number recomputed from the submitted outputs with
the eval set's pinned options, never the submission's."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from lmolt_hub.formats.direction import DIRECTION_NAMES, Direction
from lmolt_hub.leaderboard.validate.basic import ReviewerSetupError, SubmissionError, _first_line

if TYPE_CHECKING:
    from lmolt_hub.metrics.metric_config import MetricConfig

# Metric values are floats computed by the same code; allow only rounding noise.
REL_TOL = 1e-6
ABS_TOL = 1e-9

# digits between devices and kernels (a GPU run re-scored on a CPU): a wider tolerance for them, and
# one NLI label flip for the entailment win rate (at most 0.001). Every other metric is exact.
NEURAL_TOL = 1e-4
NEURAL = {"fcd", "mean_entailment"}


def _tolerance(direction: str, name: str, n_rows: int) -> tuple[float, float]:
    if name in NEURAL:
        return NEURAL_TOL, NEURAL_TOL
    if name == "win_rate" and direction == Direction.SMILES2CAPTION:
        return REL_TOL, min(1.0 / max(n_rows, 1), 1e-3) + ABS_TOL
    return REL_TOL, ABS_TOL


def _same(a: Any, b: Any, tol: tuple[float, float] = (REL_TOL, ABS_TOL)) -> bool:
    """Equal up to ``tol`` (relative, absolute); None and NaN are the same "no value"."""
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
            and all(_same(x, y, tol) for x, y in zip(a, b, strict=True))
        )  # fmt: skip
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)):
        return a == b
    return math.isclose(a, b, rel_tol=tol[0], abs_tol=tol[1])


def _compare(block: str, direction: str, submitted: Any, recomputed: dict[str, Any], n_rows: int = 0) -> None:
    """``submitted`` must hold exactly the recomputed values (nothing missing, nothing added)."""
    if not isinstance(submitted, dict):
        raise SubmissionError(f"{block}.{direction} must be an object of metric values")
    for name, value in sorted(recomputed.items()):
        if name not in submitted:
            raise SubmissionError(
                f"{block}.{direction} lacks {name!r}, which the eval set's configuration computes"
            )
        if not _same(submitted[name], value, _tolerance(direction, name, n_rows)):
            raise SubmissionError(
                f"{block}.{direction}.{name} = {submitted[name]!r}, but recomputing it from the "
                f"submitted outputs gives {value!r}"
            )
    extra = sorted(set(submitted) - set(recomputed))
    if extra:
        raise SubmissionError(f"{block}.{direction} has values the reviewer does not compute: {extra}")


def check_per_sample(direction: str, rows: list[dict[str, Any]], recomputed: list[dict[str, Any]]) -> None:
    """Each row's ``metrics`` (they feed the published figures) must equal the recomputed ones:
    exactly, but for the NLI entailment (neural tolerance) and as many M->L win flips as the
    win-rate tolerance allows."""
    n = len(rows)
    flips, allowed = 0, int(n * min(1.0 / max(n, 1), 1e-3))
    for row, want in zip(rows, recomputed, strict=True):
        got = row.get("metrics")
        if not isinstance(got, dict) or set(got) != set(want):
            raise SubmissionError(
                f"samples {direction}, row {row['id']}: per-sample metrics {sorted(got or {})} are not the "
                f"recomputed {sorted(want)}; submit the harness's samples files unchanged"
            )
        for name, value in want.items():
            if name == "win" and direction == Direction.SMILES2CAPTION and got[name] != value:
                flips += 1
                continue
            tol = (NEURAL_TOL, NEURAL_TOL) if name == "entailment" else (REL_TOL, ABS_TOL)
            if not _same(got[name], value, tol):
                raise SubmissionError(
                    f"samples {direction}, row {row['id']}: metrics.{name} = {got[name]!r}, but recomputing "
                    f"it from the output gives {value!r} (per-sample values feed the published figures)"
                )
    if flips > allowed:
        raise SubmissionError(
            f"samples {direction}: {flips} per-sample 'win' values differ from the recomputed ones"
        )


PINNED_OPTIONS = ("hallucination", "fcd", "fcd_convention", "fingerprint_convention")


def check_options(results: dict[str, Any], cfg: MetricConfig) -> None:
    """``metric_options`` is never used, but one that contradicts the eval set's configuration or
    names a path is refused with a reason (it was forged or scored under other rules)."""
    recorded = results.get("metric_options") or {}
    if not isinstance(recorded, dict):
        raise SubmissionError("metric_options must be an object")
    by_direction = recorded.get("by_direction") if isinstance(recorded.get("by_direction"), dict) else {}
    blocks = {"metric_options": {k: v for k, v in recorded.items() if k != "by_direction"}}
    blocks |= {f"metric_options.by_direction.{d}": o for d, o in by_direction.items() if isinstance(o, dict)}
    for where, options in blocks.items():
        for key, value in options.items():
            if key.endswith(("_dir", "_path", "_file", "_stats")) or isinstance(value, (dict, list)):
                raise SubmissionError(
                    f"{where}.{key}: the reviewer never takes paths or files from a submission"
                )
            if key in PINNED_OPTIONS and value is not None and value != getattr(cfg, key):
                raise SubmissionError(
                    f"{where}.{key} = {value!r}, but the eval set's configuration says {getattr(cfg, key)!r}: "
                    "results are scored with the eval set's options only"
                )


def _check_bootstrap(results: dict[str, Any], cfg: MetricConfig) -> None:
    boot = results.get("bootstrap") or {}
    wanted = {"n_resamples": cfg.bootstrap_resamples, "seed": cfg.bootstrap_seed}
    got = {k: boot.get(k) for k in wanted}
    if got != wanted:
        raise SubmissionError(
            f"bootstrap settings {got} differ from the eval set's {wanted}; re-run the harness with its "
            "defaults (it reads them from the eval set)"
        )


def check_metrics(
    results: dict[str, Any], samples: dict[str, list[dict[str, Any]]], cfg: MetricConfig, api: Any = None
) -> dict[str, Any]:
    """ "Re-scored": recompute points, CIs and hallucination values from the submitted outputs with
    the eval set's pinned options (never the submission's); all must equal the submitted values.

    Returns what was recomputed (direction -> corpus metrics), for the verification record.
    """
    from lmolt_hub.metrics.scoring import score_direction

    check_options(results, cfg)
    _check_bootstrap(results, cfg)
    missing = [d for d in DIRECTION_NAMES if d not in samples]
    if missing:
        raise SubmissionError(f"results must cover both directions; missing {missing}")
    try:  # the eval set's pinned metric modules (Spaces at their commits), else the bundled ones
        modules = cfg.run_modules()
    except ValueError as exc:
        raise ReviewerSetupError(f"cannot load the eval set's metric modules: {_first_line(exc)}") from None
    recomputed: dict[str, Any] = {}
    for direction, rows in samples.items():
        options = cfg.score_options(direction)
        references = [r["reference"] for r in rows]
        if direction == Direction.CAPTION2SMILES and cfg.fcd:
            stats = _fcd_stats(cfg, api)
            if stats is not None:
                options["fcd_reference_stats"] = stats
        try:
            scores = score_direction(
                direction, [r["output"] for r in rows], references, options=options,
                hallucination=cfg.hallucination, bootstrap_resamples=cfg.bootstrap_resamples,
                seed=cfg.bootstrap_seed, modules=modules,
            )  # fmt: skip
        except OSError as exc:  # the NLI model (or another resource) the eval set names is missing here
            msg = f"cannot re-score with the eval set's configuration: {_first_line(exc)}"
            raise ReviewerSetupError(msg) from None
        if getattr(scores, "not_computed", None):
            raise ReviewerSetupError(f"cannot re-score {direction}: {scores.not_computed}")
        n = len(rows)
        _compare("results", direction, results["results"].get(direction, {}), scores.corpus, n)
        _compare("hallucination", direction, (results.get("hallucination") or {}).get(direction) or {},
                 scores.hallucination if cfg.hallucination else {}, n)  # fmt: skip
        _compare(
            "confidence_intervals", direction,
            (results.get("confidence_intervals") or {}).get(direction) or {}, scores.confidence_intervals, n,
        )  # fmt: skip
        check_per_sample(direction, rows, scores.per_sample)
        recomputed[direction] = scores.corpus
    return recomputed


def _fcd_stats(cfg: MetricConfig, api: Any):
    from lmolt_hub.metrics.metric_config import MetricConfigError

    try:
        return cfg.fcd_reference_stats(api)
    except (MetricConfigError, ValueError) as exc:
        raise ReviewerSetupError(f"eval set FCD statistics unusable: {_first_line(exc)}") from None
