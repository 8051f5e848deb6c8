"""`lmolt-hub quickstart` end to end, offline: the README's main job.

One fresh run (small settings), then a second run that must reuse every stage.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SHA = re.compile(r"^[0-9a-f]{40}$")


def _quickstart(root: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lmolt_hub.cli", "quickstart", "--root", str(root), "--limit", "8",
           "--max-new-tokens", "24", *extra]  # fmt: skip
    env = dict(os.environ)
    env.pop("HF_ENDPOINT", None)  # the quickstart starts its own Hub
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("quickstart")
    proc = _quickstart(root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc


def test_quickstart_pushes_every_artefact(first_run):
    root, proc = first_run
    summary = json.loads((root / "quickstart.json").read_text())
    repos = {r["id"]: r for r in summary["repos"]}
    expected = {
        "lmolt/lmolt-triples": "dataset",
        "lmolt/lmolt-eval-3k": "dataset",
        "lmolt/lmolt-sft-caption2smiles": "model",
        "lmolt/lmolt-sft-smiles2caption": "model",
        "lmolt/lmolt-slerp": "model",
        "lmolt/lmolt-slerp-cpo": "model",
        "lmolt/lmolt-leaderboard": "dataset",
    }
    for repo_id, repo_type in expected.items():
        assert repos[repo_id]["type"] == repo_type
        assert SHA.match(repos[repo_id]["revision"]), repos[repo_id]
        assert repos[repo_id]["role"]
    # The store is a real local Hub root: every pushed revision is on disk.
    assert (root / "hub").is_dir()
    assert "lmolt-hub serve --root" in proc.stdout


def test_quickstart_evaluates_and_builds_the_leaderboard(first_run):
    from lmolt_hub.formats.results import read_results, validate_results

    root, _ = first_run
    summary = json.loads((root / "quickstart.json").read_text())
    models = {r["model"] for r in summary["results"]}
    assert models == {"lmolt/lmolt-slerp-cpo", "lmolt/lmolt-sft-caption2smiles", "lmolt/lmolt-sft-smiles2caption"}
    for r in summary["results"]:
        doc = read_results(r["results"])
        validate_results(doc)
        assert doc["eval_dataset"]["id"] == "lmolt/lmolt-eval-3k"
        assert set(doc["results"]) == {"smiles2caption", "caption2smiles"}
    assert [rv["state"] for rv in summary["leaderboard"]["reviews"]] == ["verified"] * 3, summary["leaderboard"]
    board = json.loads((Path(summary["leaderboard"]["site"]) / "leaderboard.json").read_text())
    verified = {row["model"] for row in board["rows"] if row["kind"] == "verified"}
    assert models <= verified
    assert (Path(summary["leaderboard"]["site"]) / "index.html").is_file()
    report = Path(summary["report"]).read_text()
    assert "lmolt/lmolt-slerp-cpo" in report


def test_quickstart_leaderboard_aggregate_is_bounded_and_ranks_validity(first_run):
    """Issue 14, point 3: no value above 1e6 (the unbounded aggregate gave 1e+152), and a model with
    no valid molecule ranks below one with some."""
    root, _ = first_run
    summary = json.loads((root / "quickstart.json").read_text())
    board = json.loads((Path(summary["leaderboard"]["site"]) / "leaderboard.json").read_text())
    rows = [r for r in board["rows"] if r["kind"] == "verified"]
    for row in board["rows"]:
        for agg in row["aggregate"].values():
            if agg is not None:
                assert max(abs(agg["value"]), *map(abs, agg["ci"])) <= 1e6, (row["model"], agg)
    assert all(r["rank"]["overall"] is not None for r in rows), [(r["model"], r["missing"]) for r in rows]
    valid = [r for r in rows if r["results"]["caption2smiles"]["validity"] > 0]
    invalid = [r for r in rows if r["results"]["caption2smiles"]["validity"] == 0]
    for bad in invalid:
        for good in valid:
            assert bad["rank"]["overall"] > good["rank"]["overall"], (bad["model"], good["model"])


def test_quickstart_reports_stage_times(first_run):
    root, proc = first_run
    summary = json.loads((root / "quickstart.json").read_text())
    assert set(summary["timings_s"]) == {"hub", "datasets", "chain", "evaluate", "leaderboard", "report"}
    assert all(t >= 0 for t in summary["timings_s"].values())
    assert min(summary["timings_s"][s] for s in ("datasets", "chain", "evaluate")) > 0
    assert summary["peak_rss_mb"] > 0


def test_second_run_reuses_everything(first_run):
    root, _ = first_run
    before = json.loads((root / "quickstart.json").read_text())
    proc = _quickstart(root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = json.loads((root / "quickstart.json").read_text())
    assert all(t == 0 for t in after["timings_s"].values()), after["timings_s"]
    assert after["repos"] == before["repos"]
    assert proc.stdout.count("reusing it") == 6


def test_bad_arguments_are_refused(tmp_path):
    proc = _quickstart(tmp_path, "--limit", "0")
    assert proc.returncode == 2 and "--limit" in proc.stderr


# A tqdm bar: "... [00:01<00:02, 3.1it/s]" or "... [00:00, 19669.32 examples/s]".
PROGRESS_BAR = re.compile(r"\[\d+:\d+(:\d+)?(<|,)")


def _stderr_lines_without_bars(stderr: str) -> list[str]:
    return [x for x in re.split(r"[\r\n]", stderr) if x.strip() and not PROGRESS_BAR.search(x)]


def test_quickstart_stderr_is_short(first_run):
    """Issue 14, point 9: a successful quickstart writes under 20 lines to stderr, progress bars aside
    (it wrote 133: bitsandbytes, transformers FutureWarnings, local Hub telemetry routes, trl)."""
    _, proc = first_run
    assert _stderr_lines_without_bars("x [00:01<00:02, 3.1it/s]\rok\n y: 5 examples [00:00, 9.1 examples/s]") == ["ok"]
    lines = _stderr_lines_without_bars(proc.stderr)
    assert len(lines) < 20, "\n".join(lines)
    assert not [x for x in lines if "unsupported route" in x or "kernels-community" in x], lines
