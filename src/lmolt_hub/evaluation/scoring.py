"""Score one direction: corpus metrics, per-pair metrics, hallucination win rates, bootstrap CIs.

A thin layer over ``lmolt_hub.metrics`` (the metric code lives there) that
shapes its output into the results document's blocks.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class DirectionScores:
    corpus: dict[str, float | None]
    per_sample: list[dict[str, Any]]
    hallucination: dict[str, Any]
    confidence_intervals: dict[str, list[float | None]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def metrics_version() -> str:
    from lmolt_hub.metrics import METRICS_VERSION

    return METRICS_VERSION


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _accepted(func, options: dict[str, Any]) -> dict[str, Any]:
    names = inspect.signature(func).parameters
    return {k: v for k, v in options.items() if k in names and v is not None}


def win_rate_interval(
    wins: list[bool], n_resamples: int, seed: int, confidence: float = 0.95
) -> list[float] | None:
    """Percentile bootstrap interval of the share of wins (rows resampled with replacement)."""
    if not wins or n_resamples <= 0:
        return None
    arr = np.asarray(wins, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), (n_resamples, len(arr)))].mean(axis=1)
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    return [float(np.percentile(means, lo)), float(np.percentile(means, hi))]


def score_direction(
    direction: str,
    predictions: list[str],
    references: list[str],
    *,
    options: dict[str, Any] | None = None,
    hallucination: bool = True,
    bootstrap_resamples: int = 1000,
    seed: int = 0,
) -> DirectionScores:
    """All metrics of ``direction`` for aligned predictions and references.

    ``options`` go to ``lmolt_hub.metrics.score`` (e.g. ``nli_model``, ``fcd_reference_stats``,
    ``fingerprint_convention``) and, where they apply, to the bootstrap.
    """
    from lmolt_hub.metrics import score
    from lmolt_hub.metrics.bootstrap import confidence_intervals

    opts = dict(options or {})
    unknown = (
        set(opts)
        - set(inspect.signature(score).parameters)
        - set(inspect.signature(confidence_intervals).parameters)
    )
    if unknown:
        raise ValueError(f"unknown metric option(s): {', '.join(sorted(unknown))}")
    scores = score(direction, predictions, references, hallucination=hallucination, **_accepted(score, opts))
    corpus = {name: _finite(v) for name, v in scores.corpus.items()}
    halluc = {k: _finite(v) for k, v in (scores.hallucination or {}).items()}
    cis: dict[str, list[float | None]] = {}
    if bootstrap_resamples > 0 and predictions:
        ci_opts = _accepted(confidence_intervals, {k: v for k, v in opts.items() if k != "scores"})
        raw = confidence_intervals(
            direction,
            predictions,
            references,
            n_resamples=bootstrap_resamples,
            seed=seed,
            scores=scores,
            **ci_opts,
        )
        cis = {name: [_finite(lo), _finite(hi)] for name, (lo, hi) in raw.items()}
        wins = [bool(r["win"]) for r in scores.per_sample if "win" in r]
        if hallucination and len(wins) == len(scores.per_sample):
            interval = win_rate_interval(wins, bootstrap_resamples, seed)
            if interval:
                cis["win_rate"] = interval
    used = {k: v for k, v in {**opts, **scores.options}.items() if isinstance(v, (str, int, float, bool))}
    return DirectionScores(corpus, list(scores.per_sample), halluc, cis, used)
