"""The aggregate score and the CI-aware ranking, both defined as data.

The aggregate (version 2, ``mean_bounded_relative_improvement``) is the mean
over metrics of a *bounded* relative improvement over a baseline row of the
same kind (reported rows against a reported baseline, verified rows against a
verified one; never mixed). The baseline is named by an explicit model id in
the spec. Per metric, with ``d = value - baseline`` (``baseline - value`` where
lower is better) and the metric's ``floor`` (its resolution: 0.01 for scores in
[0, 1], one character for Levenshtein, 0.1 for FCD)::

    score = clip(d / max(|baseline|, floor), -1, +1)

So a metric counts at most +-1 whatever the baseline: a baseline of 0 or
1e-300 (nltk's unsmoothed BLEU of a bad model) no longer explodes, a row equal
to the baseline scores 0, and doubling a higher-is-better metric counts as
much as reaching 0 on a lower-is-better one. An undefined value (null, e.g.
FCD with no valid molecule) is the worst value: -1 against a defined baseline,
+1 for a defined value against an undefined baseline, 0 when both are
undefined. A row that lacks a metric of the aggregate (or a direction) gets no
aggregate and no rank for that group (listed in ``missing``); a metric the
baseline lacks is skipped for every row (listed in ``skipped``).

Version 1 was the plain relative improvement ``(value - baseline) / |baseline|``
(the L+M-24 style of comparing with a baseline), skipping only baselines of
exactly 0; near-zero baselines made it meaningless (1.2e+152 for a model with
no valid molecule).

Its interval comes from the metric CIs: each metric contributes its score at
both ends of its CI; averaging the lower and upper ends gives a conservative
interval. Rows without CIs (reported numbers) get a point interval.

Ranks: within one group, a row's rank is 1 + the number of rows whose interval
lies entirely above its own. Rows whose intervals overlap therefore share a
rank.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from lmolt_hub.leaderboard.records import Record

AGGREGATE_VERSION = "2"
# Denominator floor of the relative improvement: the smallest baseline treated as non-zero.
UNIT_FLOOR = 0.01
FLOORS = {"levenshtein": 1.0, "fcd": 0.1}
CAP = 1.0


def default_spec(baseline_model: str | None = None) -> dict[str, Any]:
    """The aggregate definition stored in ``leaderboard.json`` (change it by bumping ``version``).

    ``metrics`` are the paper's table columns (so reported and verified rows
    are aggregated over the same metrics); ``baseline`` names the reference
    row per kind by an explicit model id (optionally ``revision``), never by
    a pattern a submitter could match: verified rows compare with the zoo's
    SFT model ``<org>/lmolt-sft`` unless ``baseline_model`` says otherwise.
    """
    from lmolt_hub.leaderboard.records import paper_table_metrics
    from lmolt_hub.naming import default_org, repo_id, zoo_name

    metrics = paper_table_metrics()
    return {
        "name": "mean_bounded_relative_improvement",
        "version": AGGREGATE_VERSION,
        "description": (
            "Mean over metrics of the relative improvement over the baseline row of the same kind, "
            "(value - baseline) / max(|baseline|, floor), sign flipped for lower-is-better metrics, "
            "clipped to [-1, 1]; an undefined value counts as the worst; rows missing a metric are "
            "not ranked."
        ),
        "metrics": metrics,
        "floor": {name: FLOORS.get(name, UNIT_FLOOR) for names in metrics.values() for name in names},
        "cap": CAP,
        "baseline": {
            "reported": {"model": "Meditron-7B SFT"},
            "verified": {"model": baseline_model or repo_id(default_org(), zoo_name("sft"))},
        },
    }


def find_baseline(records: Sequence[Record], kind: str, selector: dict[str, Any] | None) -> Record | None:
    """The baseline row of ``kind``: the first record (in the given, acceptance order) whose model id
    (and revision, if the selector names one) equals the selector's."""
    if not selector:
        return None
    unknown = set(selector) - {"model", "revision"}
    if unknown or not selector.get("model"):
        raise ValueError(
            f"the aggregate's {kind} baseline must name a model id (and optionally a revision), got {selector}"
        )
    for r in records:
        if r.kind == kind and r.model == selector["model"]:
            if selector.get("revision") in (None, r.revision):
                return r
    return None


def bounded_improvement(
    value: float | None,
    base: float | None,
    higher_is_better: bool,
    floor: float = UNIT_FLOOR,
    cap: float = CAP,
) -> float:
    """One metric's bounded relative improvement over the baseline, in [-cap, cap] (see module doc)."""
    if value is None or base is None:
        return 0.0 if value is None and base is None else (-cap if value is None else cap)
    delta = (value - base) if higher_is_better else (base - value)
    return max(-cap, min(cap, delta / max(abs(base), floor)))


def aggregate_row(
    record: Record,
    baseline: Record,
    metrics: dict[str, list[str]],
    higher_is_better: dict[str, bool],
    floors: dict[str, float] | None = None,
    cap: float = CAP,
) -> dict[str, Any] | None:
    """{"value", "ci", "n_metrics", "skipped"} for the given direction->metrics.

    None when the row lacks a metric (it is not ranked) or nothing can be compared.
    """
    floors = floors or {}
    points: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    skipped: list[str] = []
    for direction, names in metrics.items():
        for name in names:
            if name not in record.results.get(direction, {}):
                return None  # incomplete rows are not ranked
            if name not in baseline.results.get(direction, {}):
                skipped.append(f"{direction}.{name}")
                continue
            value = record.results[direction][name]
            base = baseline.results[direction][name]
            hib = higher_is_better[name]
            floor = floors.get(name, FLOORS.get(name, UNIT_FLOOR))
            ci = record.confidence_intervals.get(direction, {}).get(name)
            ends = [value, value] if not ci or None in ci else [ci[0], ci[1]]
            scored = sorted(bounded_improvement(x, base, hib, floor, cap) for x in ends)
            points.append(bounded_improvement(value, base, hib, floor, cap))
            lows.append(scored[0])
            highs.append(scored[1])
    if not points:
        return None
    n = len(points)
    return {
        "value": sum(points) / n,
        "ci": [sum(lows) / n, sum(highs) / n],
        "n_metrics": n,
        "skipped": skipped,
    }


def missing_metrics(record: Record, metrics: dict[str, list[str]]) -> list[str]:
    """``direction.metric`` of the aggregate that the row does not have."""
    return [f"{d}.{m}" for d, names in metrics.items() for m in names if m not in record.results.get(d, {})]


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
    """row_id -> {"aggregate": {group: agg|None}, "rank": {group: int|None}, "baseline": model|None,
    "missing": [direction.metric, ...]}.

    Groups are each direction (its own metrics) and ``overall`` (all metrics).
    Ranks are computed within each kind separately, over complete rows only: a row missing a
    metric of the group, or whose results say a metric of that direction was not computed (e.g.
    the NLI metrics without the NLI model), gets no rank.
    """
    spec = copy.deepcopy(spec)
    groups: dict[str, dict[str, list[str]]] = {d: {d: names} for d, names in spec["metrics"].items()}
    groups["overall"] = spec["metrics"]
    floors, cap = spec.get("floor") or {}, float(spec.get("cap", CAP))
    out: dict[str, dict[str, Any]] = {
        r.row_id: {
            "aggregate": {},
            "rank": {},
            "baseline": None,
            "missing": missing_metrics(r, spec["metrics"])
            + sorted(f"{d}.{m}" for d, ms in r.not_computed.items() for m in ms),
        }
        for r in records
    }
    for kind in sorted({r.kind for r in records}):
        rows = [r for r in records if r.kind == kind]
        baseline = find_baseline(records, kind, spec["baseline"].get(kind))
        for group, metrics in groups.items():
            aggs = [
                aggregate_row(r, baseline, metrics, higher_is_better, floors, cap) if baseline else None
                for r in rows
            ]
            rankable = [a if a and not any(d in r.not_computed for d in metrics) else None
                        for r, a in zip(rows, aggs, strict=True)]  # fmt: skip
            ranks = ci_ranks([tuple(a["ci"]) if a else None for a in rankable])
            for r, agg, rank in zip(rows, aggs, ranks, strict=True):
                out[r.row_id]["aggregate"][group] = agg
                out[r.row_id]["rank"][group] = rank
                out[r.row_id]["baseline"] = baseline.model if baseline else None
    return out
