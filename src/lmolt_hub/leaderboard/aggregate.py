"""The aggregate score and the CI-aware ranking, both defined as data.

The aggregate is the mean relative improvement over a named baseline row of
the same kind (reported rows against a reported baseline, verified rows against
a verified one; never mixed). For a metric where higher is better the relative
improvement is ``(v - b) / |b|``; where lower is better it is flipped,
``(b - v) / |b|``. Metrics whose baseline value is 0 or missing, or whose own
value is undefined (null, e.g. FCD with no valid molecule), are skipped and
listed in the row's ``skipped`` field; a row without a direction gets no
aggregate for it.

Its interval comes from the metric CIs: each metric contributes the relative
improvement at both ends of its CI; averaging the lower and upper ends gives a
conservative interval. Rows without CIs (reported numbers) get a point
interval.

Ranks: within one group, a row's rank is 1 + the number of rows whose interval
lies entirely above its own. Rows whose intervals overlap therefore share a
rank.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from lmolt_hub.leaderboard.records import Record

AGGREGATE_VERSION = "1"


def default_spec() -> dict[str, Any]:
    """The aggregate definition stored in ``leaderboard.json`` (change it by bumping ``version``).

    ``metrics`` are the paper's table columns (so reported and verified rows
    are aggregated over the same metrics); ``baseline`` names the reference
    row per kind: a dict of record fields that must all match (the first
    match, ordered by model id, wins).
    """
    from lmolt_hub.leaderboard.records import paper_table_metrics

    return {
        "name": "mean_relative_improvement",
        "version": AGGREGATE_VERSION,
        "description": (
            "Mean over metrics of the relative improvement over the baseline row of the same kind: "
            "(value - baseline) / |baseline|, sign flipped for lower-is-better metrics; "
            "metrics with a zero or missing baseline, or an undefined value, are skipped."
        ),
        "metrics": paper_table_metrics(),
        "baseline": {
            "reported": {"model": "Meditron-7B SFT"},
            "verified": {"method": "sft", "fusion": None},
        },
    }


def find_baseline(records: Sequence[Record], kind: str, selector: dict[str, Any] | None) -> Record | None:
    if not selector:
        return None
    matches = [
        r for r in records if r.kind == kind and all(getattr(r, k, None) == v for k, v in selector.items())
    ]
    return min(matches, key=lambda r: (r.model, r.revision or "")) if matches else None


def _relative(value: float, base: float, higher_is_better: bool) -> float:
    delta = (value - base) if higher_is_better else (base - value)
    return delta / abs(base)


def aggregate_row(
    record: Record,
    baseline: Record,
    metrics: dict[str, list[str]],
    higher_is_better: dict[str, bool],
) -> dict[str, Any] | None:
    """{"value", "ci", "n_metrics", "skipped"} for the given direction->metrics; None if nothing to average."""
    points: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    skipped: list[str] = []
    for direction, names in metrics.items():
        for name in names:
            if direction not in record.results:
                return None  # a row without the direction is not ranked on it
            value = record.results[direction].get(name)
            base = baseline.results.get(direction, {}).get(name)
            if value is None or base is None or base == 0:
                skipped.append(f"{direction}.{name}")
                continue
            hib = higher_is_better[name]
            ci = record.confidence_intervals.get(direction, {}).get(name)
            ends = [value, value] if not ci or None in ci else [ci[0], ci[1]]
            rel_ends = sorted(_relative(x, base, hib) for x in ends)
            points.append(_relative(value, base, hib))
            lows.append(rel_ends[0])
            highs.append(rel_ends[1])
    if not points:
        return None
    n = len(points)
    return {
        "value": sum(points) / n,
        "ci": [sum(lows) / n, sum(highs) / n],
        "n_metrics": n,
        "skipped": skipped,
    }


def ci_ranks(intervals: Sequence[tuple[float, float] | None]) -> list[int | None]:
    """Rank = 1 + number of rows whose interval lies entirely above this one (None for None)."""
    ranks: list[int | None] = []
    for own in intervals:
        if own is None:
            ranks.append(None)
            continue
        ranks.append(1 + sum(1 for other in intervals if other is not None and other[0] > own[1]))
    return ranks


def score_records(
    records: Sequence[Record], spec: dict[str, Any], higher_is_better: dict[str, bool]
) -> dict[str, dict[str, Any]]:
    """row_id -> {"aggregate": {group: agg|None}, "rank": {group: int|None}, "baseline": model|None}.

    Groups are each direction (its own metrics) and ``overall`` (all metrics).
    Ranks are computed within each kind separately.
    """
    spec = copy.deepcopy(spec)
    groups: dict[str, dict[str, list[str]]] = {d: {d: names} for d, names in spec["metrics"].items()}
    groups["overall"] = spec["metrics"]
    out: dict[str, dict[str, Any]] = {
        r.row_id: {"aggregate": {}, "rank": {}, "baseline": None} for r in records
    }
    for kind in sorted({r.kind for r in records}):
        rows = [r for r in records if r.kind == kind]
        baseline = find_baseline(records, kind, spec["baseline"].get(kind))
        for group, metrics in groups.items():
            aggs = [aggregate_row(r, baseline, metrics, higher_is_better) if baseline else None for r in rows]
            ranks = ci_ranks([tuple(a["ci"]) if a else None for a in aggs])
            for r, agg, rank in zip(rows, aggs, ranks, strict=True):
                out[r.row_id]["aggregate"][group] = agg
                out[r.row_id]["rank"][group] = rank
                out[r.row_id]["baseline"] = baseline.model if baseline else None
    return out
