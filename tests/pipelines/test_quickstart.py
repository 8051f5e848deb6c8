"""`lmolt-hub quickstart` end to end, offline: the README's main job.

One fresh run (small settings), then a second run that must reuse every stage.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
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
    repos = {(r["type"], r["id"]): r for r in summary["repos"]}  # the leaderboard is a dataset and a Space
    expected = [
        ("model", "lmolt/tiny-nli-deberta"),
        ("dataset", "lmolt/lmolt-triples"),
        ("dataset", "lmolt/lmolt-eval-3k"),
        ("model", "lmolt/lmolt-sft-caption2smiles"),
        ("model", "lmolt/lmolt-sft-smiles2caption"),
        ("model", "lmolt/lmolt-slerp"),
        ("model", "lmolt/lmolt-slerp-cpo"),
        ("dataset", "lmolt/lmolt-leaderboard"),
        ("space", "lmolt/lmolt-leaderboard"),
    ]
    for key in expected:
        assert SHA.match(repos[key]["revision"]), repos[key]
        assert repos[key]["role"]
    # The store is a real local Hub root: every pushed revision is on disk.
    assert (root / "hub").is_dir()
    assert "lmolt-hub serve --root" in proc.stdout


def test_quickstart_evaluates_and_builds_the_leaderboard(first_run):
    from lmolt_hub.formats.results import read_results, validate_results

    root, _ = first_run
    summary = json.loads((root / "quickstart.json").read_text())
    models = {r["model"] for r in summary["results"]}
    assert models == {
        "lmolt/lmolt-slerp-cpo",
        "lmolt/lmolt-sft-caption2smiles",
        "lmolt/lmolt-sft-smiles2caption",
    }
    # the metric modules are Spaces on its Hub, pinned by the eval set: the results name them
    spaces = {r["id"]: r["revision"] for r in summary["repos"] if r["type"] == "space"}
    assert spaces.pop("lmolt/lmolt-leaderboard")  # the board's static Space (checked below)
    assert set(spaces) == {f"lmolt/{n}" for n in ("lmolt_caption", "lmolt_molecule", "lmolt_hallucination")}
    for r in summary["results"]:
        doc = read_results(r["results"])
        validate_results(doc)
        assert doc["eval_dataset"]["id"] == "lmolt/lmolt-eval-3k"
        assert set(doc["results"]) == {"smiles2caption", "caption2smiles"}
        assert {m["id"]: m["revision"] for m in doc["metric_modules"].values()} == spaces
    assert [rv["state"] for rv in summary["leaderboard"]["reviews"]] == ["verified"] * 3, summary[
        "leaderboard"
    ]
    board = json.loads((Path(summary["leaderboard"]["site"]) / "leaderboard.json").read_text())
    verified = {row["model"] for row in board["rows"] if row["kind"] == "verified"}
    assert models <= verified
    assert (Path(summary["leaderboard"]["site"]) / "index.html").is_file()
    report = Path(summary["report"]).read_text()
    assert "lmolt/lmolt-slerp-cpo" in report


def test_quickstart_zoo_shows_complete_summaries_and_the_leaderboard_space(first_run):
    """Issue 22: every repo's summary is its card's complete first sentence (the NLI stand-in has a
    card too), and the zoo lists and links the leaderboard Space, which holds the built page."""
    from lmolt_hub.localhub.storage import Storage
    from lmolt_hub.localhub.zoo import render_index

    root, _ = first_run
    summary = json.loads((root / "quickstart.json").read_text())
    store = Storage(root / "hub")
    page = render_index(store)
    # zoo rows: (link, summary); the link carries the type prefix (datasets/, spaces/)
    summaries = dict(
        re.findall(
            r'<tr><td><a href="/([^"]+)">[^<]*</a>[^<]*(?:<a [^>]*>open</a>\))?</td><td>([^<]*)</td>', page
        )
    )
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}
    for repo in summary["repos"]:
        text = summaries[prefix[repo["type"]] + repo["id"]]
        assert text.endswith("."), (repo["id"], text)  # complete: never cut mid-sentence
    assert summaries["lmolt/tiny-nli-deberta"].startswith("A tiny, randomly initialised DeBERTa-v2")
    assert summaries["lmolt/lmolt-slerp-cpo"].endswith("(arXiv:2405.13984).")
    assert 'href="/spaces/lmolt/lmolt-leaderboard/"' in page
    space = "lmolt/lmolt-leaderboard"
    files = store.files("space", space, store.resolve("space", space, "main"))
    assert {"README.md", "index.html", "app.js", "leaderboard.json"} <= set(files)
    assert "sdk: static" in store.readme_text(files)


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
    assert _stderr_lines_without_bars(
        "x [00:01<00:02, 3.1it/s]\rok\n y: 5 examples [00:00, 9.1 examples/s]"
    ) == ["ok"]
    lines = _stderr_lines_without_bars(proc.stderr)
    assert len(lines) < 20, "\n".join(lines)
    assert not [x for x in lines if "unsupported route" in x or "kernels-community" in x], lines


@pytest.fixture
def community_hub(first_run, tmp_path):
    """`lmolt-hub serve --root DIR/hub` on the quickstart's store (docs/localhub.md), with a tokens file:
    a maintainer (admin) and a community member, alice, who may write only alice/*."""
    root, _ = first_run
    tokens = {"hf_test_maintainer": {"user": "ops", "admin": True}, "hf_test_alice": {"user": "alice"}}
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(json.dumps(tokens))  # JSON is YAML; the docs accept both
    tokens_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "LMOLT_ORG"))}
    log = tmp_path / "serve.log"  # a file, not a pipe: a full pipe would block the server
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "lmolt_hub.cli", "serve", "--root", str(root / "hub"), "--port", "0",
             "--tokens-file", str(tokens_file)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        for _ in range(600):  # the banner prints the endpoint once the server listens
            endpoint = re.search(r"export HF_ENDPOINT=(\S+)", log.read_text())
            if endpoint or server.poll() is not None:
                break
            time.sleep(0.1)
        assert endpoint, log.read_text()
        # what the banner tells every shell to export (HF_HOME fresh: downloads really come from the server)
        env.update({"HF_ENDPOINT": endpoint.group(1), "HF_HUB_DISABLE_XET": "1",
                    "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"})  # fmt: skip
        yield env, {"maintainer": "hf_test_maintainer", "alice": "hf_test_alice"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_community_flow_from_the_docs(first_run, community_hub, tmp_path):
    """Issue 14 (done when, first bullet): a community member follows the docs against the quickstart's
    Hub, each command exactly as written with only <org> filled in: train a model (docs/training.md, the
    tiny CPU command), evaluate it by Hub id (README step 4), submit (README step 5); the maintainer
    reviews and builds the page (docs/leaderboard.md). Every command exits 0, the review verifies it,
    and the community row is on the built leaderboard."""
    env, tokens = community_hub
    # a user's working directory with the checkout's recipes and harness, as in the docs' relative paths
    work = tmp_path / "work"
    work.mkdir()
    checkout = Path(__file__).resolve().parents[2]
    for name in ("recipes", "eval_harness"):
        (work / name).symlink_to(checkout / name)

    def sh(*cmd: str, token: str) -> subprocess.CompletedProcess:
        exe = {"lmolt-hub": [sys.executable, "-m", "lmolt_hub.cli"], "python": [sys.executable]}[cmd[0]]
        proc = subprocess.run([*exe, *cmd[1:]], cwd=work, env={**env, "HF_TOKEN": token},
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, (cmd, proc.stdout[-3000:], proc.stderr[-3000:])
        return proc

    model = "alice/lmolt-tiny-sft-caption2smiles"
    alice, maintainer = tokens["alice"], tokens["maintainer"]
    sh("lmolt-hub", "train", "sft", "--config", "recipes/tiny/sft/qlora.yaml", "--dataset_name", "lmolt/lmolt-triples",
       "--directions", "caption2smiles", "--hub_model_id", model, "--push_to_hub", "true", token=alice)  # fmt: skip
    sh(
        "python",
        "eval_harness/run.py",
        "--model",
        model,
        "--eval-dataset",
        "lmolt/lmolt-eval-3k",
        token=alice,
    )
    (results,) = (work / "results" / "alice__lmolt-tiny-sft-caption2smiles" / "main").glob("results_*.json")
    submitted = sh(
        "lmolt-hub", "leaderboard", "submit", "--results", str(results.relative_to(work)), token=alice
    )
    pr = re.search(r"opened PR #(\d+) on lmolt/lmolt-leaderboard", submitted.stdout)
    assert pr, submitted.stdout

    reviewed = sh("lmolt-hub", "leaderboard", "review", token=maintainer)
    assert re.search(rf"PR #{pr.group(1)}: verified - re-scored and reproduced;", reviewed.stdout), (
        reviewed.stdout
    )
    status = sh("lmolt-hub", "leaderboard", "status", token=alice)
    assert re.search(rf"#{pr.group(1)}\s+verified\s+Results: {model}@", status.stdout), status.stdout

    site = tmp_path / "site"
    built = sh("lmolt-hub", "leaderboard", "build", "--output-dir", str(site), token=maintainer)
    board = json.loads((site / "leaderboard.json").read_text())
    (row,) = [r for r in board["rows"] if r["model"] == model]
    assert row["kind"] == "verified" and row["method"] == "sft", row  # method read from alice's card
    assert set(row["results"]) == {"smiles2caption", "caption2smiles"}
    # the quickstart's Hub has no lmolt/lmolt-sft, the default baseline: build says why nothing is ranked,
    # and the docs' quickstart variant (--baseline) ranks the community row
    assert row["rank"]["overall"] is None and "baseline lmolt/lmolt-sft has no verified row" in built.stdout
    sh("lmolt-hub", "leaderboard", "build", "--baseline", "lmolt/lmolt-sft-caption2smiles",
       "--output-dir", str(tmp_path / "ranked"), token=maintainer)  # fmt: skip
    ranked = json.loads((tmp_path / "ranked" / "leaderboard.json").read_text())
    (row,) = [r for r in ranked["rows"] if r["model"] == model]
    assert row["rank"]["overall"] is not None, row
