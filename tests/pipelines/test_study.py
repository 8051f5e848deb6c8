"""`lmolt-hub study cpu --tiny`: the laptop-scale study's CI version (about a minute) cannot rot.

One tiny run (module fixture) goes through every stage against an in-process local Hub; the
tests check its outputs are there and well-formed, and that a second run resumes (skips every
finished stage). The verdict logic is checked on its own with made-up intervals.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lmolt_hub.pipelines.study import run as study_run

# the module fixture runs two commands (ancestor, then study): a few minutes on 2 free cores, far
# more on a shared machine; the suite's 600 s per-test limit would cut it there
pytestmark = pytest.mark.timeout(1800)

VERDICTS = {"holds", "fails", "undecided", "not measured"}


def _study_cli(*args: str) -> subprocess.CompletedProcess:
    """`lmolt-hub study cpu` in a fresh process, as a user runs it: the study serves its own local Hub
    and points this process's clients at it, which must not depend on what earlier tests left in
    the test process's client modules (they point at the suite's shared Hub)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE")}
    proc = subprocess.run(
        [sys.executable, "-m", "lmolt_hub.cli", "study", "cpu", "--tiny", *args],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    # as the full study runs: the ancestor alone first (pushed), then the study, which reuses it
    first = _study_cli("--ancestor", "--root", str(root / "run"))
    assert not (root / "run" / "study.json").exists() and "[study] bases" not in first.stdout
    out = _study_cli("--root", str(root / "run"), "--docs", str(root / "docs")).stdout
    assert "[study] ancestor: done in a previous run, reusing it" in out
    summary = json.loads((root / "run" / "study.json").read_text())
    return root, summary


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, float):
        yield obj


def test_tiny_study_trains_pushes_and_evaluates_every_model(tiny_run):
    root, summary = tiny_run
    run = root / "run"
    assert json.loads((run / "study.json").read_text()) == json.loads(json.dumps(summary, default=str))
    roles = summary["roles"]
    # bases, SFT, CPO and the four fusion chains (DPO is off in the tiny scale)
    assert set(roles) == {
        "lmolt-cpu/lmolt-cpu-base-caption2smiles", "lmolt-cpu/lmolt-cpu-base-smiles2caption",
        "lmolt-cpu/lmolt-cpu-sft", "lmolt-cpu/lmolt-cpu-cpo",
        "lmolt-cpu/lmolt-cpu-slerp-cpo", "lmolt-cpu/lmolt-cpu-slerp-cpo-authors",
        "lmolt-cpu/lmolt-cpu-ties-cpo", "lmolt-cpu/lmolt-cpu-ties-cpo-exact",
    }  # fmt: skip
    assert {r["model"] for r in summary["results"]} == set(roles)
    for item in summary["results"]:
        doc = json.loads(Path(item["results"]).read_text())
        assert set(doc["directions"]) == {"smiles2caption", "caption2smiles"}
        assert all(n == study_run.TINY.eval_n for n in doc["n_samples"].values())
    # the merges went through the chain, their CPO trained on the merge just pushed
    for name in (
        "lmolt-cpu-slerp-cpo",
        "lmolt-cpu-slerp-cpo-authors",
        "lmolt-cpu-ties-cpo",
        "lmolt-cpu-ties-cpo-exact",
    ):
        chain = summary["trained"][name]
        assert [p["hub_model_id"] for p in chain["parents"]] == [
            "lmolt-cpu/lmolt-cpu-base-caption2smiles",
            "lmolt-cpu/lmolt-cpu-base-smiles2caption",
        ]
        assert chain["train"]["hub_model_id"] == f"lmolt-cpu/{name}"
    # bases: fine-tunes of the ancestor, best epoch by validation loss, recorded
    ancestor_rev = next(r["revision"] for r in summary["repos"] if r["id"] == "lmolt-cpu/lmolt-cpu-ancestor")
    for name in study_run.BASES.values():
        sel = summary["trained"][name]["selection"]
        assert sel["metric"] == "eval_loss" and sel["kept_epoch"] is not None
        info = json.loads((root / "run" / "work" / "train" / name / "run_info.json").read_text())
        assert ancestor_rev in json.dumps(info), "a base was not fine-tuned from the pushed ancestor"
    # the ancestor learnt something of every modality, even in a dozen tiny steps
    anc = summary["ancestor"]
    assert set(anc["assessment"]["perplexity"]) == {"english", "chebi_caption", "chebi_smiles"}
    for modality, ppl in anc["assessment"]["perplexity"].items():
        assert ppl < anc["init_perplexity"][modality], modality
    assert 0 <= anc["assessment"]["smiles_samples"]["validity"] <= 1
    assert summary["max_new_tokens"] <= study_run.TINY.max_new_tokens
    # the ancestor command's own cost is recorded; the cards name every source's licence
    assert summary["ancestor_run"]["wall_s"] > 0 and summary["ancestor_run"]["peak_rss_mb"] > 100
    card = (root / "run" / "work" / "ancestor" / "ancestor" / "README.md").read_text()
    assert "WordNet 3.0 licence" in card and "MIT" in card and "CC BY 4.0" in card
    assert "| english |" in card and "valid by RDKit" in card
    # every float in the summary and results is a real number
    assert all(math.isfinite(x) for x in _numbers(summary))
    assert summary["peak_rss_mb"] > 100 and summary["wall_s_total"] > 0


def test_tiny_study_report_and_figures_are_well_formed(tiny_run):
    root, summary = tiny_run
    text = (root / "docs" / "cpu-study.md").read_text()
    assert text == (root / "run" / "cpu-study.md").read_text()
    for role in (
        "Base",
        "SFT",
        "CPO",
        "TIES+CPO",
        "SLERP+CPO",
        "TIES (exact 19:1)+CPO",
        "SLERP+CPO (authors' schedule)",
    ):
        rows = re.findall(rf"^\| {re.escape(role)} \| (.+) \|$", text, flags=re.M)
        assert len(rows) >= 2, role  # M->L and L->M tables (and more)
    # Table 1 row: 6 metrics, each "ours [lo, hi] / paper arrow"
    t1 = text.split("### Table 1-style")[1].split("###")[0]
    sft = next(line for line in t1.splitlines() if line.startswith("| SFT |"))
    cells = sft.strip("|").split("|")[1:]
    assert len(cells) == 6
    assert all(re.match(r"^ [-\d.e]+ \[[-\d.e]+, [-\d.e]+\] / [\d.]+ [▲▼=] ?$", c) for c in cells), cells
    for claim in summary["report"]["claims"]:
        assert claim["verdict"] in VERDICTS
        assert f"| {claim['claim']} | **{claim['verdict']}**" in text
    assert "last round (from scratch" in text and "## The ancestor" in text
    # the plain-words verdict: one line per claim, generated from the same tests, and the bases question
    plain = text.split("## Verdict in plain words")[1].split("\n## ")[0]
    for claim in summary["report"]["claims"]:
        assert f"- **{claim['claim']}**: " in plain and f"**{claim['verdict']}**" in plain
    assert (
        "Does the L->M base inherit the ancestor's language?** " in plain
        and "What the ancestor changed" in plain
    )
    assert re.search(r"\| CPO − SFT|### CPO − SFT", text)  # the paired-difference tables
    for fig in ("figure1_distributions.png", "figure2_win_rates.png", "structure.png"):
        png = root / "docs" / "cpu-study" / fig
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(cpu-study/{fig})" in text
    track = json.loads((Path(summary["leaderboard"]["site"]) / "track.json").read_text())
    assert track["track"] == study_run.TRACK


def test_tiny_study_results_go_on_their_own_leaderboard_track(tiny_run):
    _, summary = tiny_run
    reviews = summary["leaderboard"]["reviews"]
    assert reviews and all(r["state"] == "verified" for r in reviews), reviews
    board = json.loads((Path(summary["leaderboard"]["site"]) / "leaderboard.json").read_text())
    assert {r["kind"] for r in board["rows"]} == {"verified"}  # no paper (L+M-24) rows in this track
    assert all(r["eval_dataset"] == "lmolt-cpu/lmolt-eval-3k" for r in board["rows"])


def test_tiny_study_resumes_without_redoing_finished_stages(tiny_run):
    root, first = tiny_run
    out = _study_cli("--root", str(root / "run")).stdout
    again = json.loads((root / "run" / "study.json").read_text())
    for stage in (
        "hub",
        "ancestor",
        "datasets",
        "bases",
        "methods",
        "token_cap",
        "evaluate",
        "leaderboard",
        "report",
    ):
        assert f"[study] {stage}: done in a previous run, reusing it" in out
    assert again["trained"] == first["trained"] and again["results"] == first["results"]
    # the cost record survives a re-run
    assert again["timings_s"] == first["timings_s"] and again["peak_rss_mb"] == first["peak_rss_mb"]
    assert again["timings_s"]["ancestor"] == 0.0 and again["timings_s"]["bases"] > 0


def test_study_cli_refuses_bad_input(capsys):
    from lmolt_hub.cli import main

    with pytest.raises(SystemExit):
        main(["study", "gpu"])
    assert "invalid choice" in capsys.readouterr().err
    assert main(["study", "cpu", "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_report_only_rerenders_from_study_json_and_keeps_the_timings(tiny_run, tmp_path):
    root, _ = tiny_run
    report = root / "run" / "cpu-study.md"
    # as it stands now (the resume test may have re-run the study, adding its seconds to the total)
    summary = json.loads((root / "run" / "study.json").read_text())
    _study_cli("--root", str(root / "run"), "--report-only")
    before = report.read_text()
    assert f"Stages: hub {summary['timings_s']['hub']:.0f} s" in before
    report.write_text("stale\n")
    _study_cli("--root", str(root / "run"), "--report-only", "--docs", str(tmp_path / "docs"))
    assert report.read_text() == before == (tmp_path / "docs" / "cpu-study.md").read_text()
    again = json.loads((root / "run" / "study.json").read_text())
    assert again["timings_s"] == summary["timings_s"] and again["wall_s_total"] == summary["wall_s_total"]
    assert "Changed before any claim was computed: ancestor steps 1,000 -> 4,000" in before


def test_report_only_without_a_finished_run_says_so(tmp_path, capsys):
    from lmolt_hub.cli import main

    assert main(["study", "cpu", "--root", str(tmp_path / "empty"), "--report-only"]) == 2
    err = capsys.readouterr().err
    assert "no finished run" in err and "study.json" in err and "Traceback" not in err
