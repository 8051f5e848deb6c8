"""Score one direction: corpus metrics, per-pair metrics, hallucination win rates, bootstrap CIs.

A thin layer over ``lmolt_hub.metrics`` (the metric code lives there) that
splits its output into the results document's blocks.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# Corpus keys that belong in the results' ``hallucination`` block rather than ``results``.
_HALLUCINATION_HINTS = ("win_rate", "hallucination", "nli", "chrf", "dlen")


@dataclass
class DirectionScores:
    corpus: dict[str, float | None]
    per_sample: list[dict[str, Any]]
    hallucination: dict[str, Any]
    confidence_intervals: dict[str, list[float | None]] = field(default_factory=dict)


def metrics_version() -> str:
    from lmolt_hub.metrics import METRICS_VERSION

    return METRICS_VERSION


def _is_hallucination(name: str) -> bool:
    try:
        from lmolt_hub.metrics import METRIC_INFO

        table = str(METRIC_INFO.get(name, {}).get("table", ""))
        if "halluc" in table.lower():
            return True
    except ImportError:
        pass
    return any(h in name.lower() for h in _HALLUCINATION_HINTS)


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def score_direction(
    direction: str,
    predictions: list[str],
    references: list[str],
    *,
    options: dict[str, Any] | None = None,
    bootstrap_resamples: int = 1000,
    seed: int = 0,
) -> DirectionScores:
    """All metrics of ``direction`` for aligned predictions and references."""
    from lmolt_hub.metrics import score

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    scores = score(direction, predictions, references, **opts)
    corpus: dict[str, float | None] = {}
    hallucination: dict[str, Any] = {}
    for name, value in scores.corpus.items():
        (hallucination if _is_hallucination(name) else corpus)[name] = _finite(value)
    if "win_rate" not in hallucination:
        wins = [row.get("win") for row in scores.per_sample if row.get("win") is not None]
        hallucination["win_rate"] = sum(map(bool, wins)) / len(wins) if wins else None
    cis: dict[str, list[float | None]] = {}
    if bootstrap_resamples > 0:
        from lmolt_hub.metrics.bootstrap import confidence_intervals

        raw = confidence_intervals(
            direction, predictions, references, n_resamples=bootstrap_resamples, seed=seed
        )
        cis = {name: [_finite(lo), _finite(hi)] for name, (lo, hi) in raw.items()}
    return DirectionScores(corpus, list(scores.per_sample), hallucination, cis)
