"""Leaderboard submissions end to end against the local Hub.

A tiny model and an 8-pair eval set (real ChEBI-20 pairs) are pushed to the
local Hub; the harness evaluates the model (real generation and scoring), the
results arrive as a PR next to malformed ones, ``review`` merges the good one
(after recomputing its metrics and a spot check that regenerates outputs) and
closes the bad ones with a reason comment; ``build`` regenerates the page.
"""

from __future__ import annotations

import csv
import json
import shutil
import urllib.request
from pathlib import Path

import pytest

import lmolt_hub.leaderboard as S
from lmolt_hub.naming import EVAL_DATASET

ORG = "lbtest"
REPO = f"{ORG}/lmolt-leaderboard"
MODEL = f"{ORG}/lmolt-sft"
NLI = f"{ORG}/tiny-nli"  # stands in for cross-encoder/nli-deberta-v3-base
N_PAIRS = 8


def _eval_rows() -> list[dict[str, str]]:
    from lmolt_hub.resources import chebi20_split

    with open(chebi20_split("test"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:N_PAIRS]
    return [{"id": r["CID"], "molecule": r["SMILES"], "caption": r["description"]} for r in rows]


@pytest.fixture(scope="module")
def board(local_hub, tiny_llama_dir, tmp_path_factory):
    """Model, eval set and leaderboard repo on the local Hub, and one harness run of the model."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi

    from lmolt_hub.evaluation import evaluate_model
    from lmolt_hub.generation.backends import GenerationParams

    api = HfApi()
    tmp = tmp_path_factory.mktemp("board")
    model_dir = tmp / "model"
    shutil.copytree(tiny_llama_dir, model_dir)
    (model_dir / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny test model\n")
    api.create_repo(MODEL, exist_ok=True)
    api.upload_folder(folder_path=model_dir, repo_id=MODEL)
    # A second model whose card has no licence (a config is enough to get that far).
    api.create_repo(f"{ORG}/lmolt-cpo", exist_ok=True)
    api.upload_file(
        path_or_fileobj=(model_dir / "config.json"), path_in_repo="config.json", repo_id=f"{ORG}/lmolt-cpo"
    )
    api.upload_file(path_or_fileobj=b"# no licence\n", path_in_repo="README.md", repo_id=f"{ORG}/lmolt-cpo")

    # A third whose architecture transformers does not know (it would need remote code).
    api.create_repo(f"{ORG}/lmolt-kto", exist_ok=True)
    api.upload_file(
        path_or_fileobj=b'{"model_type": "mystery-net"}',
        path_in_repo="config.json",
        repo_id=f"{ORG}/lmolt-kto",
    )
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id=f"{ORG}/lmolt-kto"
    )

    # An adapter whose base is a local path (nobody else could load it).
    api.create_repo(f"{ORG}/lmolt-dpo", exist_ok=True)
    adapter_cfg = json.dumps({"peft_type": "LORA", "base_model_name_or_path": str(model_dir)}).encode()
    api.upload_file(
        path_or_fileobj=adapter_cfg, path_in_repo="adapter_config.json", repo_id=f"{ORG}/lmolt-dpo"
    )
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id=f"{ORG}/lmolt-dpo"
    )

    eval_repo = f"{ORG}/{EVAL_DATASET}"
    pq.write_table(pa.Table.from_pylist(_eval_rows()), tmp / "test.parquet")
    api.create_repo(eval_repo, repo_type="dataset", exist_ok=True)
    api.upload_file(
        path_or_fileobj=tmp / "test.parquet",
        path_in_repo="data/test-00000-of-00001.parquet",
        repo_id=eval_repo,
        repo_type="dataset",
    )
    # the eval set pins how it is scored (the reviewer reads this, never the submission's options)
    api.upload_file(
        path_or_fileobj=json.dumps({"nli_model": NLI, "bootstrap_resamples": 20}).encode(),
        path_in_repo="metric_config.json",
        repo_id=eval_repo,
        repo_type="dataset",
    )
    from lmolt_hub.tiny import save_tiny_nli

    api.create_repo(NLI, exist_ok=True)
    api.upload_folder(folder_path=save_tiny_nli(tmp / "nli"), repo_id=NLI)
    S.create_leaderboard_repo(REPO, api=api)
    doc = evaluate_model(
        MODEL,
        eval_dataset=eval_repo,
        output_dir=str(tmp / "results"),
        generation=GenerationParams(max_new_tokens=16),
        nli_model=NLI,
        bootstrap_resamples=20,
        show_progress=False,
        use_cache=False,
    )
    return {"api": api, "hub": local_hub, "results_path": Path(doc["results_path"]), "tmp": tmp}


def _raw_pr(api, files: dict[str, bytes], title: str) -> int:
    """Open a PR the way a hostile or careless client could (no local checks)."""
    from huggingface_hub import CommitOperationAdd

    info = api.create_commit(
        REPO,
        [CommitOperationAdd(p, data) for p, data in files.items()],
        commit_message=title,
        repo_type="dataset",
        create_pr=True,
    )
    return info.pr_num


def _submission_files(results_path: Path, folder: str, edit=None, edit_samples=None) -> dict[str, bytes]:
    results = json.loads(results_path.read_text())
    if edit:
        edit(results)
    files = {f"{folder}/results.json": json.dumps(results).encode()}
    for name in results["samples"].values():
        lines = (results_path.parent / name).read_text().splitlines()
        if edit_samples:
            lines = edit_samples(lines)
        files[f"{folder}/{name}"] = ("\n".join(lines) + "\n").encode()
    return files


def _comments(api, num: int) -> list[str]:
    details = api.get_discussion_details(REPO, num, repo_type="dataset")
    return [e.content for e in details.events if e.type == "comment"]


def test_good_and_malformed_submissions_review_build(board, tmp_path):
    from lmolt_hub.cli import main
    from lmolt_hub.leaderboard.validate import regenerator

    api, hub = board["api"], board["hub"]
    # The good one goes through the CLI, exactly as a user would submit it.
    assert main(["leaderboard", "submit", "--repo", REPO, "--results", str(board["results_path"])]) == 0
    # The malformed one: a NaN metric (json.dumps writes NaN; strict parsing must refuse it).
    bad_num = _raw_pr(
        api,
        _submission_files(
            board["results_path"],
            f"submissions/{ORG}/nan",
            edit=lambda r: r["results"]["smiles2caption"].update(bleu2=float("nan")),
        ),
        f"Results: {MODEL}@nan",
    )
    assert {s["state"] for s in S.status(REPO, api=api)} == {"pending"}

    outcomes = S.review(REPO, org=ORG, api=api, spot_check_n=2, regenerate=regenerator(device="cpu"))
    by_state = {o.state: o for o in outcomes}
    assert set(by_state) == {"verified", "rejected"}, [(o.state, o.reason) for o in outcomes]
    assert by_state["rejected"].pr_num == bad_num and "NaN" in by_state["rejected"].reason
    good = by_state["verified"]
    assert {"schema", "model", "eval_set", "samples", "metrics", "spot_check"} <= set(good.checks)

    # The reasons are on the PRs, and status reads them back.
    assert any("rejected" in c and "NaN" in c for c in _comments(api, bad_num))
    states = {s["pr"]: (s["state"], s["reason"]) for s in S.status(REPO, api=api)}
    assert states[good.pr_num][0] == "verified" and states[bad_num][0] == "rejected"
    assert "NaN" in states[bad_num][1]

    # main holds the accepted submission only, with its verification record.
    files = set(api.list_repo_files(REPO, repo_type="dataset"))
    assert f"{good.folder}/results.json" in files and f"{good.folder}/verification.json" in files
    assert not any(f.startswith(f"submissions/{ORG}/nan/") for f in files)

    # build from the Hub into the local Hub's site folder; the server publishes it under /site/.
    out = Path(hub.root) / "site" / "leaderboard"
    assert main(["leaderboard", "build", "--repo", REPO, "--output-dir", str(out)]) == 0
    doc = json.loads((out / "leaderboard.json").read_text())
    (row,) = [r for r in doc["rows"] if r["kind"] == "verified"]
    assert row["model"] == MODEL and row["verification"]["spot_check"]["matched"]
    assert row["results"] == json.loads(board["results_path"].read_text())["results"]
    for name in doc["plots"].values():
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    with urllib.request.urlopen(f"{hub.url}/site/leaderboard/leaderboard.json") as resp:
        assert json.loads(resp.read())["rows"] == doc["rows"]
    with urllib.request.urlopen(f"{hub.url}/site/leaderboard/index.html") as resp:
        assert b"app.js" in resp.read()


BAD_CASES = {
    # name: (how the submission is made, expected words in the reason)
    "missing-rows": (dict(edit_samples=lambda lines: lines[:-1]), "missing row"),
    "extra-rows": (
        dict(edit_samples=lambda lines: lines + [json.dumps({**json.loads(lines[0]), "id": "123456789"})]),
        "extra row",
    ),
    "other-eval-set": (
        dict(edit=lambda r: r["eval_dataset"].update(id="someone/other-eval")),
        "this leaderboard scores",
    ),
    "tampered-metric": (
        dict(
            edit=lambda r: r["results"]["caption2smiles"].update(
                levenshtein=r["results"]["caption2smiles"]["levenshtein"] - 5
            )
        ),
        "recomputing it",
    ),
    "wrong-type": (dict(edit=lambda r: r.update(wall_time_s="fast")), "schema"),
    "negative-count": (dict(edit=lambda r: r["n_samples"].update(smiles2caption=-16)), "schema"),
    "no-licence": (
        dict(edit=lambda r: r["model"].update(id=f"{ORG}/lmolt-cpo", sha=None, revision="main")),
        "licence",
    ),
    "duplicate": ({}, "duplicate"),
    "local-base": (
        dict(edit=lambda r: r["model"].update(id=f"{ORG}/lmolt-dpo", sha=None, revision="main")),
        "is not a model on the Hub",
    ),
    "remote-code": (
        dict(edit=lambda r: r["model"].update(id=f"{ORG}/lmolt-kto", sha=None, revision="main")),
        "does not load without remote code",
    ),
}


def test_bad_submissions_are_rejected_and_accepted_data_is_kept(board):
    api = board["api"]
    main_before = {
        f.path: f.blob_id
        for f in api.list_repo_tree(REPO, recursive=True, repo_type="dataset")
        if hasattr(f, "blob_id")
    }
    accepted = sorted(p for p in main_before if p.endswith("/results.json"))
    assert accepted, "run after the good submission was accepted"
    nums = {}
    for name, (kwargs, _) in BAD_CASES.items():
        nums[name] = _raw_pr(
            api,
            _submission_files(board["results_path"], f"submissions/{ORG}/{name}", **kwargs),
            f"Results: {MODEL}@{name}",
        )
    # Not JSON at all.
    nums["not-json"] = _raw_pr(
        api, {f"submissions/{ORG}/not-json/results.json": b"{'model': oops"}, f"Results: {MODEL}@x"
    )
    # An oversize upload (the limit is lowered for the test: the check reads sizes from the repo tree).
    nums["oversize"] = _raw_pr(
        api,
        {
            f"submissions/{ORG}/big/results.json": b"{}",
            f"submissions/{ORG}/big/samples.jsonl": b"x" * 300_000,
        },
        f"Results: {MODEL}@big",
    )
    # A title that hides the namespace from the rate limit.
    nums["title"] = _raw_pr(
        api, _submission_files(board["results_path"], f"submissions/{ORG}/title"), "Results: someone-else/m@x"
    )
    # An attempt to overwrite accepted data.
    nums["overwrite"] = _raw_pr(api, {accepted[0]: b'{"results": "gone"}'}, f"Results: {MODEL}@overwrite")
    # A PR title is not trusted (the rate limit counts PR authors): the "title" PR is judged on its
    # content, which is already on the board.
    expected = {**{k: v[1] for k, v in BAD_CASES.items()}, "not-json": "not valid JSON", "oversize": "byte limit",
                "overwrite": "modifies or deletes", "title": "duplicate"}  # fmt: skip

    outcomes = {o.pr_num: o for o in S.review(REPO, org=ORG, api=api, max_bytes=250_000, rate_limit=50)}
    for name, num in nums.items():
        assert outcomes[num].state == "rejected", (name, outcomes[num].reason)
        assert expected[name] in outcomes[num].reason, (name, outcomes[num].reason)
        assert any(expected[name] in c for c in _comments(api, num)), name
    main_after = {
        f.path: f.blob_id
        for f in api.list_repo_tree(REPO, recursive=True, repo_type="dataset")
        if hasattr(f, "blob_id")
    }
    assert main_after == main_before


def test_rate_limit_per_author(board, capsys):
    from huggingface_hub import HfApi

    from lmolt_hub.localhub.auth import User

    # the rate limit counts PRs by their author: the spammer is its own account
    board["hub"].httpd.config.auth.users["hf_spammer_token"] = User("spammer")
    api = HfApi(token="hf_spammer_token")
    nums = [
        _raw_pr(
            api,
            {f"submissions/spammer/s{i}/request.json": b'{"model": "spammer/m"}'},
            "Evaluation request: spammer/m@main",
        )
        for i in range(3)
    ]
    # Through the CLI this time: review, then status as JSON.
    from lmolt_hub.cli import main

    assert main(["leaderboard", "review", "--repo", REPO, "--org", ORG, "--rate-limit", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"PR #{nums[2]}: rejected - rate limit" in printed
    assert main(["leaderboard", "status", "--repo", REPO, "--json"]) == 0
    states = {s["pr"]: s for s in json.loads(capsys.readouterr().out)}
    assert all(states[n]["state"] == "rejected" for n in nums)
    assert "not found" in states[nums[0]]["reason"] and "not found" in states[nums[1]]["reason"]
    assert "rate limit" in states[nums[2]]["reason"]


def test_evaluation_request_runs_the_harness(board):
    from lmolt_hub.pipelines.requests import evaluator

    api = board["api"]
    done = S.submit_request(MODEL, repo_id=REPO, api=api)
    for _ in range(2):  # a queued request stays running across reviews, announced once
        (outcome,) = S.review(REPO, org=ORG, api=api, rate_limit=50)
        assert outcome.state == "running"
    assert sum("running" in c for c in _comments(api, done.pr_num)) == 1
    assert {s["pr"]: s["state"] for s in S.status(REPO, api=api)}[done.pr_num] == "running"
    # A maintainer runs the requested evaluation: results land on the PR and are validated like any
    # submission; this model's results are already on the board, so the request ends as a duplicate.
    from lmolt_hub.generation.backends import GenerationParams

    run = evaluator(
        org=ORG,
        generation=GenerationParams(max_new_tokens=16),
        nli_model=NLI,
        bootstrap_resamples=20,
        show_progress=False,
    )
    (outcome,) = S.review(REPO, org=ORG, api=api, evaluate=run, rate_limit=50)
    assert outcome.state == "rejected" and "duplicate" in outcome.reason
    pr_files = api.list_repo_files(REPO, repo_type="dataset", revision=f"refs/pr/{done.pr_num}")
    assert f"{done.folder}/results.json" in pr_files
