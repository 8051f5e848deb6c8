"""`lmolt-hub report`: verified rows vs the paper's tables (synthetic verified rows: test data)."""

from __future__ import annotations

import json
import re

import pytest

from lmolt_hub.leaderboard.build import build
from lmolt_hub.leaderboard.records import reported_records
from lmolt_hub.leaderboard.report import write_report
from lmolt_hub.metrics import METRIC_INFO

from helpers.leaderboard_data import INJECTED_NAME, SYNTHETIC_BASELINE, synthetic_leaderboard_root


@pytest.fixture(scope="module")
def leaderboard_json(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    build(base / "site", results_root=synthetic_leaderboard_root(base / "repo"), baseline=SYNTHETIC_BASELINE)
    return base / "site" / "leaderboard.json"


def _section(text: str, model: str, direction: str) -> list[list[str]]:
    """Table rows (cells) of ``model``'s section under the ``direction`` heading."""
    part = text.split(f"({direction};", 1)[1]
    part = part.split(f"#### {model} @", 1)[1].split("####", 1)[0]
    rows = [line for line in part.splitlines() if line.startswith("| ") and not line.startswith("| Metric")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_report_puts_ours_next_to_the_paper(leaderboard_json, tmp_path):
    out = write_report(leaderboard_json, tmp_path / "report.md")
    text = out.read_text()
    doc = json.loads(leaderboard_json.read_text())
    ours = next(r for r in doc["rows"] if r["model"] == "test-org/lmolt-slerp-cpo")
    paper = next(r for r in reported_records() if r.model == "Meditron-7B SLERP+CPO")
    assert "Meditron-7B SLERP+CPO" in text
    for direction in ("smiles2caption", "caption2smiles"):
        rows = _section(text, "test-org/lmolt-slerp-cpo", direction)
        assert len(rows) == len(paper.results[direction])
        for cells, (key, paper_value) in zip(rows, paper.results[direction].items(), strict=True):
            label, value, ci, printed, diff, inside = cells
            assert label.startswith(METRIC_INFO[key]["label"])
            assert float(value) == pytest.approx(ours["results"][direction][key], abs=1e-2)
            assert float(printed) == pytest.approx(paper_value)
            assert float(diff) == pytest.approx(ours["results"][direction][key] - paper_value, abs=1e-4)
            lo, hi = ours["confidence_intervals"][direction][key]
            assert inside == ("yes" if lo <= paper_value <= hi else "no")
    # The injected name is escaped, never raw HTML.
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert write_report(leaderboard_json, tmp_path / "again.md").read_bytes() == out.read_bytes()


def test_report_cli_with_explicit_match(leaderboard_json, tmp_path, capsys):
    from lmolt_hub.cli import main

    out = tmp_path / "r.md"
    args = [
        "report",
        "--leaderboard",
        str(leaderboard_json),
        "-o",
        str(out),
        "--match",
        f"{INJECTED_NAME}=TxtChem-T5",
    ]
    assert main(args) == 0
    text = out.read_text()
    summary = text.split("## Summary", 1)[1].split("##", 1)[0]
    assert "TxtChem-T5" in summary  # the override paired the injected-name row with a baseline row
    with pytest.raises(KeyError, match="no paper row"):
        main(["report", "--leaderboard", str(leaderboard_json), "--match", "test-org/lmolt-sft=Nope"])


def test_report_without_verified_rows(tmp_path):
    build(tmp_path / "site")  # the paper's rows only
    text = write_report(tmp_path / "site" / "leaderboard.json", tmp_path / "r.md").read_text()
    assert text.count("No verified rows for this direction.") == 2
    assert "Meditron-7B" not in text.split("## Summary", 1)[1]  # reported rows are not compared to themselves
