"""``lmolt-hub report``: the verified leaderboard rows next to the paper's Tables 1-4, as Markdown.

For every verified row the report lists, per metric of the paper's tables: our
value, our 95% bootstrap interval, the paper's number for the matching
configuration, the difference (ours - paper), and whether the paper's number
lies inside our interval. A verified model is matched to the paper row with
the same method and fusion (``<org>/lmolt-slerp-cpo`` -> "Meditron-7B
SLERP+CPO"), or explicitly with ``--match MODEL=PAPER_ROW``.

Input is a built ``leaderboard.json`` (``lmolt-hub leaderboard build``), a
local copy of the leaderboard repo, or the repo on the Hub.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmolt_hub.leaderboard.records import PAPER_CITATION, Record, reported_records

DIRECTION_TITLES = {
    "smiles2caption": "M->L, molecule captioning (smiles2caption; paper Tables 1 and 3)",
    "caption2smiles": "L->M, molecule generation (caption2smiles; paper Tables 2 and 4)",
}


def _md(text: Any) -> str:
    """A table cell shown literally: HTML escaped, pipes and backticks neutralised."""
    escaped = html.escape(str(text)).replace("`", "&#96;").replace("\n", " ")
    return re.sub(r"([\\|*_\[\]])", r"\\\1", escaped)  # Markdown emphasis, links and cell breaks


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def record_from_row(row: dict[str, Any]) -> Record:
    """A leaderboard.json row back into a Record (extra columns such as rank are dropped)."""
    names = {f.name for f in dataclasses.fields(Record)}
    return Record(**{k: v for k, v in row.items() if k in names})


def load_verified(leaderboard_json: Path | str) -> list[Record]:
    doc = json.loads(Path(leaderboard_json).read_text(encoding="utf-8"))
    return [record_from_row(r) for r in doc["rows"] if r["kind"] == "verified"]


def paper_match(
    record: Record, paper: Sequence[Record], overrides: dict[str, str] | None = None
) -> Record | None:
    """The paper row for a verified record: an explicit override, else same method and fusion."""
    by_name = {p.model: p for p in paper}
    if overrides and record.model in overrides:
        name = overrides[record.model]
        if name not in by_name:
            raise KeyError(
                f"--match {record.model}={name}: no paper row {name!r}; rows: {', '.join(by_name)}"
            )
        return by_name[name]
    if record.method is None:
        return None
    matches = [
        p
        for p in paper
        if p.method == record.method and p.fusion == record.fusion and p.model.startswith("Meditron-7B")
    ]
    return matches[0] if len(matches) == 1 else None


def _metric_labels() -> dict[str, dict[str, Any]]:
    from lmolt_hub.metrics import METRIC_INFO

    return METRIC_INFO


def _model_section(record: Record, match: Record | None, direction: str) -> list[str]:
    info = _metric_labels()
    rev = (record.revision or "?")[:12]
    head = f"#### {_md(record.model)} @ {_md(rev)}"
    if match is None:
        return [head, "", "No matching row in the paper (set one with `--match MODEL=PAPER_ROW`).", ""]
    lines = [
        head + f" vs paper: {_md(match.model)}",
        "",
        "| Metric | Ours | Our 95% CI | Paper | Ours - paper | Paper in CI |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    ours = record.results.get(direction, {})
    cis = record.confidence_intervals.get(direction, {})
    for key, paper_value in match.results.get(direction, {}).items():
        meta = info.get(key, {})
        arrow = "↑" if meta.get("higher_is_better", True) else "↓"
        value = ours.get(key)
        ci = cis.get(key)
        has_ci = bool(ci) and None not in ci
        diff = None if value is None else value - paper_value
        inside = ("yes" if ci[0] <= paper_value <= ci[1] else "no") if has_ci else "–"
        ci_text = f"[{_num(ci[0])}, {_num(ci[1])}]" if has_ci else "–"
        lines.append(
            f"| {_md(meta.get('label', key))} {arrow} | {_num(value)} | {ci_text} | {_num(paper_value)} | "
            f"{'–' if diff is None else f'{diff:+.4f}'} | {inside} |"
        )
    return lines + [""]


def render_report(verified: Sequence[Record], overrides: dict[str, str] | None = None) -> str:
    """The Markdown report (deterministic for the same inputs)."""
    paper = reported_records()
    verified = sorted(verified, key=lambda r: (r.model, r.revision or ""))
    matches = {r.row_id: paper_match(r, paper, overrides) for r in verified}
    lines = [
        "# lmolt-hub reproduction report",
        "",
        f"Paper: {PAPER_CITATION}.",
        "",
        "Verified rows are results the lmolt-hub harness computed and the leaderboard review re-scored "
        "from the submitted outputs; the paper's numbers are as printed (two decimals). Differences are "
        "ours minus the paper's; *Paper in CI* says whether the printed number lies inside our 95% "
        "bootstrap interval. Our numbers come from the eval set named in each row, which is the paper's "
        "3k unseen pairs only when that set was built from L+M-24.",
        "",
        "## Summary",
        "",
        "| Model | Revision | Eval set | Paper row | Metrics with paper in CI |",
        "|---|---|---|---|---:|",
    ]
    if not verified:
        lines.append("| – | – | – | – | – |")
    for r in verified:
        match = matches[r.row_id]
        inside = total = 0
        for direction in r.results:
            for key, paper_value in (match.results.get(direction, {}) if match else {}).items():
                ci = r.confidence_intervals.get(direction, {}).get(key)
                if ci and None not in ci:
                    total += 1
                    inside += ci[0] <= paper_value <= ci[1]
        lines.append(
            f"| {_md(r.model)} | {_md((r.revision or '?')[:12])} | {_md(r.eval_dataset)}@"
            f"{_md((r.eval_revision or '?')[:12])} | {_md(match.model) if match else '–'} | "
            f"{f'{inside}/{total}' if total else '–'} |"
        )
    lines.append("")
    for direction, title in DIRECTION_TITLES.items():
        rows = [r for r in verified if direction in r.results]
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["No verified rows for this direction.", ""]
        for r in rows:
            lines += _model_section(r, matches[r.row_id], direction)
    return "\n".join(lines).rstrip() + "\n"


def write_report(
    leaderboard_json: Path | str, output: Path | str, overrides: dict[str, str] | None = None
) -> Path:
    """Render the report for a built ``leaderboard.json`` and write it to ``output``."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_report(load_verified(leaderboard_json), overrides), encoding="utf-8")
    return output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument(
        "--leaderboard", type=Path, help="a built leaderboard.json (lmolt-hub leaderboard build)"
    )
    src.add_argument("--results-dir", type=Path, help="local copy of the leaderboard repo")
    parser.add_argument(
        "--org", default=None, help="Hub namespace of the leaderboard repo (default $LMOLT_ORG)"
    )
    parser.add_argument("--repo", default=None, help="leaderboard repo id (default <org>/lmolt-leaderboard)")
    parser.add_argument(
        "--output", "-o", type=Path, default=None, help="write Markdown here (default: stdout)"
    )
    parser.add_argument("--match", action="append", default=[], metavar="MODEL=PAPER_ROW",
                        help="pair a verified model with a paper row, e.g. org/my-model='Meditron-7B SLERP+CPO'")  # fmt: skip


def _verified_from_args(args: argparse.Namespace) -> list[Record]:
    from lmolt_hub.leaderboard.build import load_accepted

    if args.leaderboard:
        return load_verified(args.leaderboard)
    if args.results_dir:
        return [r for r, _ in load_accepted(args.results_dir)]
    from huggingface_hub import snapshot_download

    from lmolt_hub.leaderboard.layout import leaderboard_repo

    with tempfile.TemporaryDirectory(prefix="lmolt-report-") as tmp:
        snapshot_download(args.repo or leaderboard_repo(args.org), repo_type="dataset", local_dir=tmp)
        return [r for r, _ in load_accepted(tmp)]


def main(args: argparse.Namespace) -> int:
    overrides = {}
    for item in args.match:
        model, sep, row = item.rpartition("=")  # model ids may contain "="
        if not sep:
            raise SystemExit(f"--match expects MODEL=PAPER_ROW, got {item!r}")
        overrides[model] = row
    text = render_report(_verified_from_args(args), overrides)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0
