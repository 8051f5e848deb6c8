"""Forged-results suite: a second user attacks the REAL leaderboard review on the local Hub.

The reviewer is the session's admin token; the attackers are other accounts of the same local Hub
(``mallory``, ``spoofer``), the honest team is ``lbx-team``. A tiny model is evaluated by the real
harness; every attack is a pull request opened with the real client, and ``review()`` runs exactly
as a maintainer would run it (spot check on by default). Each attack must end "rejected" with a
reason, and the honest submission must still end verified ("re-scored" and "reproduced").
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import lmolt_hub.leaderboard as S
from lmolt_hub.naming import EVAL_DATASET

from helpers.hub_submissions import eval_rows, model_repo, open_pr, pr_comments, rescore, submission_files

pytestmark = pytest.mark.adversarial

ORG = "lbx"
REPO = f"{ORG}/lmolt-leaderboard"
MODEL = f"{ORG}/lmolt-sft"
NLI = f"{ORG}/tiny-nli"
N_PAIRS = 6
BOOT = 20
USERS = {"hf_mallory_token": "mallory", "hf_spoofer_token": "spoofer", "hf_lbxteam_token": "lbx-team"}


def _eval_rows() -> list[dict[str, str]]:
    return eval_rows(N_PAIRS)


_model_repo = model_repo


@pytest.fixture(scope="module")
def board(local_hub, tiny_llama_dir, tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi

    from lmolt_hub.evaluation import evaluate_model
    from lmolt_hub.generation.backends import GenerationParams
    from lmolt_hub.localhub.auth import User
    from lmolt_hub.tiny import save_tiny_nli

    for token, name in USERS.items():  # second (and third) users of the same local Hub
        # lbx-team is a member of the org lbx (the models' namespace); mallory and spoofer are not
        local_hub.httpd.config.auth.users[token] = User(name, orgs=("lbx",) if name == "lbx-team" else ())
    api = HfApi()  # the reviewer (the session's admin token)
    tmp = tmp_path_factory.mktemp("attacks")
    licence = b"---\nlicense: apache-2.0\n---\n# tiny\n"
    weights = {p.name: p for p in Path(tiny_llama_dir).iterdir() if p.is_file()}
    shas = {MODEL: _model_repo(api, MODEL, {**weights, "README.md": licence})}
    # the same weights under another name (a second, honest-looking model for the TOCTOU attack)
    for name in ("lmolt-cpo", "lmolt-kto"):
        shas[f"{ORG}/{name}"] = _model_repo(api, f"{ORG}/{name}", {**weights, "README.md": licence})
    # a config.json that is not JSON; a model with pickle weights only
    shas[f"{ORG}/lmolt-badcfg"] = _model_repo(
        api, f"{ORG}/lmolt-badcfg", {"config.json": b"{not json", "README.md": licence}
    )
    shas[f"{ORG}/lmolt-pickle"] = _model_repo(
        api,
        f"{ORG}/lmolt-pickle",
        {"config.json": weights["config.json"], "pytorch_model.bin": b"\x80\x04N.", "README.md": licence},
    )
    eval_repo = f"{ORG}/{EVAL_DATASET}"
    pq.write_table(pa.Table.from_pylist(_eval_rows()), tmp / "test.parquet")
    api.create_repo(eval_repo, repo_type="dataset", exist_ok=True)
    api.upload_file(path_or_fileobj=tmp / "test.parquet", path_in_repo="data/test-00000-of-00001.parquet",
                    repo_id=eval_repo, repo_type="dataset")  # fmt: skip
    config = {"nli_model": NLI, "bootstrap_resamples": BOOT}
    api.upload_file(path_or_fileobj=json.dumps(config).encode(), path_in_repo="metric_config.json",
                    repo_id=eval_repo, repo_type="dataset")  # fmt: skip
    api.create_repo(NLI, exist_ok=True)
    api.upload_folder(folder_path=save_tiny_nli(tmp / "nli"), repo_id=NLI)
    S.create_leaderboard_repo(REPO, api=api)
    doc = evaluate_model(
        MODEL, eval_dataset=eval_repo, output_dir=str(tmp / "results"),
        generation=GenerationParams(max_new_tokens=12), show_progress=False, use_cache=False,
    )  # fmt: skip
    return {"api": api, "hub": local_hub, "results_path": Path(doc["results_path"]), "tmp": tmp, "shas": shas}


def _user(name: str):
    from huggingface_hub import HfApi

    return HfApi(token=next(t for t, n in USERS.items() if n == name))


def _pr(api, files: dict[str, bytes], title: str = f"Results: {MODEL}@attack") -> int:
    """A PR as a second user opens it with the real client."""
    return open_pr(api, REPO, files, title)


def _honest(board) -> tuple[dict, dict[str, list[dict]]]:
    path = board["results_path"]
    results = json.loads(path.read_text())
    samples = {
        d: [json.loads(line) for line in (path.parent / name).read_text().splitlines() if line.strip()]
        for d, name in results["samples"].items()
    }
    return results, samples


_files = submission_files


def _rescore(results: dict, samples: dict[str, list[dict]]) -> dict:
    return rescore(results, samples, nli=NLI, boot=BOOT)


def _planted_pickle_dir(board, references: list[str]) -> tuple[Path, Path]:
    """A cache dir holding ``references_<hash>.pkl`` at the name the old reviewer loaded; loading it
    creates ``marker``."""
    import rdkit

    h = hashlib.sha256(f"rdkit {rdkit.__version__}\n".encode())
    for r in sorted(set(references)):
        h.update(r.encode("utf-8", "surrogatepass") + b"\n")
    plant = board["tmp"] / "planted"
    plant.mkdir(exist_ok=True)
    marker = board["tmp"] / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (plant / f"references_{h.hexdigest()[:20]}.pkl").write_bytes(pickle.dumps(Payload()))
    return plant, marker


def _comments(api, num: int) -> list[str]:
    return pr_comments(api, REPO, num)


def _main_files(api) -> dict[str, str]:
    return {
        f.path: f.blob_id
        for f in api.list_repo_tree(REPO, recursive=True, repo_type="dataset")
        if hasattr(f, "blob_id")
    }


def test_forged_results_are_rejected_and_the_honest_one_is_verified(board):
    api, mallory, shas = board["api"], _user("mallory"), board["shas"]
    honest, samples = _honest(board)
    refs_c2s = [r["reference"] for r in samples["caption2smiles"]]
    plant, marker = _planted_pickle_dir(board, refs_c2s)
    attacks = {}

    def attack(name: str, results: dict, rows=None, expected: str = "") -> None:
        attacks[name] = (
            _pr(mallory, _files(f"submissions/{ORG}/{name}", results, rows or samples)),
            expected,
        )

    r = copy.deepcopy(honest)
    r["results"]["caption2smiles"]["bleu"] = 0.99
    attack("forged-points", r, expected="recomputing it")
    r = copy.deepcopy(honest)
    r["confidence_intervals"]["smiles2caption"]["bleu2"] = [0.9, 1.0]
    attack("forged-ci", r, expected="confidence_intervals.smiles2caption.bleu2")
    r = copy.deepcopy(honest)
    r["metric_options"]["hallucination"] = False
    r["hallucination"]["smiles2caption"]["win_rate"] = 1.0
    attack("forged-hallucination", r, expected="hallucination = False")
    r = copy.deepcopy(honest)
    r["metric_options"]["by_direction"]["caption2smiles"]["fcd"] = False
    r["results"]["caption2smiles"].pop("fcd")
    attack("no-fcd", r, expected="fcd = False")
    r = copy.deepcopy(honest)
    r["metric_options"]["by_direction"]["caption2smiles"]["reference_cache_dir"] = str(plant)
    attack("pickle-cache", r, expected="never takes paths")
    sliced = {d: rows[:2] for d, rows in samples.items()}
    r = _rescore(honest, sliced)
    r["eval_dataset"].update(split="test[:2]", n_samples=2)
    attack("sliced-split", r, sliced, expected="whole split")
    copied = {d: [{**row, "output": row["reference"], "raw_output": row["reference"]} for row in rows]
              for d, rows in samples.items()}  # fmt: skip
    attack("copied-references", _rescore(honest, copied), copied, expected="spot check failed")
    r = copy.deepcopy(honest)  # what the harness writes when the NLI model cannot be had
    r["hallucination"]["smiles2caption"] = {k: v for k, v in r["hallucination"]["smiles2caption"].items()
                                            if k not in ("win_rate", "mean_entailment")}  # fmt: skip
    r["not_computed"] = {"smiles2caption": {"win_rate": "not computed: NLI model x unavailable"}}
    attack("nli-not-computed", r, expected="incomplete results")
    for name, words in (("badcfg", "config.json is not valid JSON"), ("pickle", "only pickle weights")):
        r = copy.deepcopy(honest)
        r["model"].update(id=f"{ORG}/lmolt-{name}", sha=shas[f"{ORG}/lmolt-{name}"])
        attack(f"model-{name}", r, expected=words)
    honest_num = _pr(_user("lbx-team"), _files(f"submissions/{ORG}/honest", honest, samples))

    outcomes = {o.pr_num: o for o in S.review(REPO, org=ORG, api=api, rate_limit=100)}

    assert not marker.exists(), "the planted pickle was loaded: code ran in the reviewer"
    for name, (num, expected) in attacks.items():
        assert outcomes[num].state == "rejected", (name, outcomes[num].reason)
        assert expected in outcomes[num].reason, (name, outcomes[num].reason)
        assert any(expected in c for c in _comments(api, num)), name
    good = outcomes[honest_num]
    assert good.state == "verified", good.reason
    assert "re-scored" in good.reason and "reproduced" in good.reason
    files = _main_files(api)
    assert not any("/forged" in p or "/copied" in p or "/sliced" in p for p in files)
    ver_path = api.hf_hub_download(REPO, f"{good.folder}/verification.json", repo_type="dataset")
    ver = json.loads(Path(ver_path).read_text())
    raw = Path(api.hf_hub_download(REPO, f"{good.folder}/results.json", repo_type="dataset")).read_bytes()
    assert ver["results_sha256"] == hashlib.sha256(raw).hexdigest()
    assert ver["statuses"] == ["re-scored", "reproduced"] and ver["model_sha"] == shas[MODEL]
    assert ver["metric_config"]["nli_model"] == NLI and ver["spot_check"]["matched"]


def test_push_during_review_is_never_merged(board):
    """TOCTOU: the author pushes to refs/pr/N while the reviewer is busy (here: during the spot
    check). The pushed commit forges a number and overwrites another team's accepted results.
    (The attacker is a member of the org: a non-member's PR is refused before the merge anyway.)"""
    from huggingface_hub import CommitOperationAdd

    from lmolt_hub.leaderboard.validate import regenerator

    api, mallory = board["api"], _user("lbx-team")
    before = _main_files(api)
    victim = next(p for p in sorted(before) if p.endswith("/results.json"))  # another team's row
    honest, samples = _honest(board)
    r = copy.deepcopy(honest)
    r["model"].update(id=f"{ORG}/lmolt-cpo", sha=board["shas"][f"{ORG}/lmolt-cpo"])
    folder = f"submissions/{ORG}/toctou"
    num = _pr(mallory, _files(folder, r, samples))
    forged = copy.deepcopy(r)
    forged["results"]["smiles2caption"]["bleu2"] = 0.99
    real, pushed = regenerator(device="cpu"), []

    def regenerate_while_attacker_pushes(results, rows):
        if not pushed:
            ops = [CommitOperationAdd(f"{folder}/results.json", json.dumps(forged).encode()),
                   CommitOperationAdd(victim, b'{"results": "gone"}')]  # fmt: skip
            pushed.append(mallory.create_commit(REPO, ops, commit_message="late change", repo_type="dataset",
                                                revision=f"refs/pr/{num}").oid)  # fmt: skip
        return real(results, rows)

    (outcome,) = S.review(REPO, org=ORG, api=api, rate_limit=100, regenerate=regenerate_while_attacker_pushes)
    assert pushed, "the attack did not run"
    assert outcome.state == "rejected" and "changed during review" in outcome.reason, outcome.reason
    assert _main_files(api) == before  # nothing merged: the victim's row is intact
    assert api.get_discussion_details(REPO, num, repo_type="dataset").status == "closed"


def test_rate_limit_counts_authors_and_only_reviewer_comments_count(board):
    """Junk PRs titled (and foldered) with another team's namespace do not use up its limit; a
    comment that imitates the reviewer carries no status."""
    spoofer, team = _user("spoofer"), _user("lbx-team")
    junk = [
        _pr(
            spoofer,
            {f"submissions/{ORG}/junk{i}/request.json": b'{"model": "lbx/none"}'},
            f"Evaluation request: {ORG}/lmolt-sft@main",
        )  # fmt: skip
        for i in range(4)  # the 4th is over the limit of 3
    ]
    mine = _pr(team, {f"submissions/{ORG}/req/request.json": b'{"model": "lbx/does-not-exist"}'},
               f"Evaluation request: {ORG}/does-not-exist@main")  # fmt: skip
    fake = f"{S.REVIEW_MARK} running**\n\nReason: forged by spoofer\n"
    spoofer.comment_discussion(REPO, mine, fake, repo_type="dataset")
    row = next(s for s in S.status(REPO, api=board["api"]) if s["pr"] == mine)
    assert row["state"] == "pending" and "forged" not in row["reason"]

    outcomes = {o.pr_num: o for o in S.review(REPO, org=ORG, api=board["api"], rate_limit=3)}
    assert "rate limit" in outcomes[junk[-1]].reason and "'spoofer'" in outcomes[junk[-1]].reason
    assert outcomes[mine].state == "rejected" and "not found" in outcomes[mine].reason
    assert "rate limit" not in outcomes[mine].reason


_REVIEW = """
import sys
import lmolt_hub.leaderboard as S
for o in S.review(sys.argv[1], org=sys.argv[2], rate_limit=100, spot_check_n=0):
    print(f"PR#{o.pr_num} {o.state} {o.reason}", flush=True)
"""


def test_20k_character_smiles_neither_crashes_nor_blocks_the_queue(board):
    """RDKit segfaulted inside FCD canonicalisation on a 20,000-character SMILES: the reviewer died
    and every later PR stayed pending. The review runs in a child process so that a crash shows as
    a failed test, not a dead test session."""
    honest, samples = _honest(board)
    rows = copy.deepcopy(samples)
    rows["caption2smiles"][0]["output"] = "C" * 20_000
    bomb = _pr(_user("mallory"), _files(f"submissions/{ORG}/smiles-bomb", honest, rows))
    after = _pr(_user("lbx-team"), {f"submissions/{ORG}/after/request.json": b'{"model": "lbx/nope"}'})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _REVIEW, REPO, ORG], capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    lines = {int(line.split()[0][3:]): line for line in proc.stdout.splitlines() if line.startswith("PR#")}
    assert "rejected" in lines[bomb] and "recomputing it" in lines[bomb], lines[bomb]
    assert "rejected" in lines[after] and "not found" in lines[after], lines[after]


def test_duplicate_by_branch_name_and_malformed_main_do_not_pass_or_crash(board):
    """``revision: main`` is the same model as its sha; a damaged results file on main (written
    there directly) neither aborts review() nor counts."""
    from huggingface_hub import CommitOperationAdd

    api = board["api"]
    api.create_commit(
        REPO,
        [CommitOperationAdd(f"submissions/{ORG}/broken/results.json", b"{garbage"),
         CommitOperationAdd(f"submissions/{ORG}/broken/verification.json", b"[1, 2")],
        commit_message="a damaged file on main", repo_type="dataset",
    )  # fmt: skip
    honest, samples = _honest(board)
    r = copy.deepcopy(honest)
    r["model"].update(sha=None, revision="main")
    num = _pr(_user("lbx-team"), _files(f"submissions/{ORG}/by-branch", r, samples))
    (outcome,) = S.review(REPO, org=ORG, api=api, rate_limit=100, spot_check_n=0)
    assert outcome.pr_num == num and outcome.state == "rejected"
    assert "duplicate" in outcome.reason and board["shas"][MODEL][:12] in outcome.reason


def test_push_racing_the_merge_is_reverted_where_the_hub_does_not_pin_the_head(board):
    """On a Hub that ignores ``expectedHeadOid`` (huggingface.co), a push landing between the
    reviewer's last head check and the merge is merged; the audit after the merge restores main.
    (The attacker is a member of the org, as above.)"""
    from huggingface_hub import CommitOperationAdd, HfApi

    api, mallory = board["api"], _user("lbx-team")
    before = _main_files(api)
    victim = next(p for p in sorted(before) if p.endswith("/results.json"))
    honest, samples = _honest(board)
    r = copy.deepcopy(honest)
    r["model"].update(id=f"{ORG}/lmolt-kto", sha=board["shas"][f"{ORG}/lmolt-kto"])
    num = _pr(mallory, _files(f"submissions/{ORG}/race", r, samples))

    class UnpinnedHub(HfApi):  # merges whatever the head is, as huggingface.co does
        def _post_discussion_changes(self, *, resource, body=None, **kw):
            if resource == "merge":
                body = {k: v for k, v in (body or {}).items() if k != "expectedHeadOid"} or None
                ops = [CommitOperationAdd(victim, b'{"results": "gone"}')]
                mallory.create_commit(REPO, ops, commit_message="race", repo_type="dataset",
                                      revision=f"refs/pr/{num}")  # fmt: skip
            return super()._post_discussion_changes(resource=resource, body=body, **kw)

    (outcome,) = S.review(REPO, org=ORG, api=UnpinnedHub(), rate_limit=100, spot_check_n=0)
    assert outcome.state == "rejected" and "not validated" in outcome.reason, outcome.reason
    assert _main_files(api) == before  # the victim's row and everything else restored
    row = next(s for s in S.status(REPO, api=api) if s["pr"] == num)
    assert row["state"] == "rejected" and "not validated" in row["reason"]


def test_review_evaluate_uses_the_eval_sets_nli_model(board, capsys):
    """Issue 14.2: ``leaderboard review --evaluate`` with no NLI flag scores with the eval set's
    pinned NLI model (here the local stand-in), so the request ends verified, not pending forever."""
    from lmolt_hub.cli import main

    num = _pr(_user("lbx-team"), {f"submissions/{ORG}/eval-req/request.json": b'{"model": "lbx/lmolt-cpo"}'},
              f"Evaluation request: {ORG}/lmolt-cpo@main")  # fmt: skip
    assert (
        main(["leaderboard", "review", "--repo", REPO, "--org", ORG, "--evaluate", "--rate-limit", "100"])
        == 0
    )
    out = capsys.readouterr().out
    assert f"PR #{num}: verified - re-scored and reproduced" in out, out
    ver = json.loads(
        Path(board["api"].hf_hub_download(REPO, f"submissions/{ORG}/eval-req/verification.json",
                                          repo_type="dataset")).read_text()
    )  # fmt: skip
    assert ver["metric_config"]["nli_model"] == NLI and ver["model_sha"] == board["shas"][f"{ORG}/lmolt-cpo"]


def test_deeply_nested_results_json_is_a_rejection_reason():
    from lmolt_hub.leaderboard.validate import SubmissionError, strict_json

    with pytest.raises(SubmissionError, match="nested too deeply"):
        strict_json("[" * 100_000 + "]" * 100_000, "results.json")
