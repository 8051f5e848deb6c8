"""Build summaries: counts, drops by reason, length distributions; printed and put in the card."""

from __future__ import annotations

import statistics
from typing import Any


def length_stats(texts: list[str]) -> dict[str, float]:
    """Character-length distribution (min, median, mean, p95, max) of ``texts``."""
    if not texts:
        return {"min": 0, "median": 0, "mean": 0, "p95": 0, "max": 0}
    lengths = sorted(len(t) for t in texts)
    p95 = lengths[min(len(lengths) - 1, round(0.95 * (len(lengths) - 1)))]
    return {
        "min": lengths[0],
        "median": float(statistics.median(lengths)),
        "mean": round(statistics.fmean(lengths), 1),
        "p95": p95,
        "max": lengths[-1],
    }


def format_drops(drops: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(drops.items())) or "none"


def format_lengths(stats: dict[str, float]) -> str:
    return f"{stats['min']}/{stats['median']:g}/{stats['mean']:g}/{stats['p95']}/{stats['max']}"


def format_summary(summary: dict[str, Any]) -> str:
    """Plain-text summary for the terminal (the card renders the same numbers as tables)."""
    lines = [f"{summary['kind']} dataset {summary['name']!r}"]
    for split, s in summary["splits"].items():
        lines.append(
            f"  {split}: source rows {s['source_rows']}, after validation {s['valid_rows']}, "
            f"selected {s['selected']}; drops: {format_drops(s['drops'])}"
        )
        for direction, d in s.get("directions", {}).items():
            kept = d.get("kept_flagged") or {}
            lines.append(
                f"    {direction}: {d['rows']} rows; drops: {format_drops(d['drops'])}"
                + (f"; kept although flagged: {format_drops(kept)}" if kept else "")
            )
            for column, st in d["lengths"].items():
                lines.append(f"      {column} length min/median/mean/p95/max: {format_lengths(st)}")
        for column, st in s.get("lengths", {}).items():
            lines.append(f"    {column} length min/median/mean/p95/max: {format_lengths(st)}")
    for key, value in summary.get("contamination", {}).items():
        lines.append(f"  contamination {key}: {value}")
    return "\n".join(lines)
