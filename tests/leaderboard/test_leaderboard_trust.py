"""Issue 21: "verified" must mean verified. A second user attacks the REAL review on the local Hub.

Accounts: ``trust-team`` (a member of the org ``trust``, which owns ``trust/lmolt-sft``) and ``eve``
(her own namespace only). Hostile model repos are eve's: a tokenizer whose pre-tokenizer regex
backtracks until the Rust tokenizer panics, a chat template of nested loops, and a config.json with
70B shapes. All PRs are reviewed by ONE ``review()`` run (module fixture ``reviewed``), as a
maintainer runs it, with the default spot check and child-process isolation; each test then checks
what happened to one attack. Unit-level attacks (the spot check's draw, versions, row keys, the
build) need no Hub and follow.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lmolt_hub.leaderboard as S
from lmolt_hub.naming import EVAL_DATASET

from helpers.hub_submissions import eval_rows, model_repo, open_pr, pr_comments, rescore, submission_files

# one review run of ten PRs, each model step in a child process: minutes on a busy 2-core machine
pytestmark = [pytest.mark.timeout(1800), pytest.mark.adversarial]

ORG = "trust"
REPO = f"{ORG}/lmolt-leaderboard"
MODEL = f"{ORG}/lmolt-sft"
NLI = f"{ORG}/tiny-nli"
N_PAIRS = 6
BOOT = 20
USERS = {"hf_eve_token": "eve", "hf_trustteam_token": "trust-team", "hf_reopener_token": "reopener"}
# A pre-tokenizer regex that backtracks exponentially on a run of word characters followed by a
# non-word one: Oniguruma gives up ("retry-limit-in-match over") and the Rust tokenizer panics.
BACKTRACKING = r"(\w+\s?)*$"
NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


def _eval_rows() -> list[dict[str, str]]:
    return eval_rows(N_PAIRS)


_model_repo = model_repo


def hostile_tokenizer_dir(tiny_llama_dir: Path, out: Path) -> Path:
    """The tiny model with a tokenizer.json whose Split pre-tokenizer backtracks catastrophically."""
    import shutil

    shutil.copytree(tiny_llama_dir, out, dirs_exist_ok=True)
    tok = json.loads((out / "tokenizer.json").read_text())
    tok["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": BACKTRACKING}, "behavior": "Isolated",
                            "invert": False}  # fmt: skip
    (out / "tokenizer.json").write_text(json.dumps(tok))
    return out


def _user(name: str):
    from huggingface_hub import HfApi

    return HfApi(token=next(t for t, n in USERS.items() if n == name))


def _pr(api, files: dict[str, bytes], title: str = "Results") -> int:
    """A PR as a second user opens it with the real client."""
    return open_pr(api, REPO, files, title)


_files = submission_files


def _comments(api, num: int) -> list[str]:
    return pr_comments(api, REPO, num)


def _rescore(results: dict, samples: dict[str, list[dict]]) -> dict:
    return rescore(results, samples, nli=NLI, boot=BOOT)


@pytest.fixture(scope="module")
def board(local_hub, tiny_llama_dir, tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi

    from lmolt_hub.evaluation import evaluate_model
    from lmolt_hub.generation.backends import GenerationParams
    from lmolt_hub.localhub.auth import User
    from lmolt_hub.tiny import save_tiny_nli

    for token, name in USERS.items():
        local_hub.httpd.config.auth.users[token] = User(name, orgs=(ORG,) if name == "trust-team" else ())
    api = HfApi()
    tmp = tmp_path_factory.mktemp("trust")
    licence = b"---\nlicense: apache-2.0\n---\n# tiny\n"
    weights = {p.name: p for p in Path(tiny_llama_dir).iterdir() if p.is_file()}
    shas = {}
    for repo in (MODEL, f"{ORG}/lmolt-kto", f"{ORG}/lmolt-cpo", "eve/stolen"):  # same weights, 4 ids
        shas[repo] = _model_repo(api, repo, {**weights, "README.md": licence})
    hostile = hostile_tokenizer_dir(Path(tiny_llama_dir), tmp / "tok-bomb")
    shas["eve/tok-bomb"] = _model_repo(api, "eve/tok-bomb", {**{p.name: p for p in hostile.iterdir()},
                                                             "README.md": licence})  # fmt: skip
    tok_cfg = json.loads(weights["tokenizer_config.json"].read_text())
    shas["eve/template-bomb"] = _model_repo(api, "eve/template-bomb", {
        **weights, "README.md": licence,
        "tokenizer_config.json": json.dumps({**tok_cfg, "chat_template": NESTED_LOOPS}).encode()})  # fmt: skip
    bomb_cfg = {**json.loads(weights["config.json"].read_text()), "hidden_size": 8192, "intermediate_size": 28672,
                "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 32000}  # fmt: skip
    shas["eve/config-bomb"] = _model_repo(api, "eve/config-bomb", {
        **weights, "config.json": json.dumps(bomb_cfg).encode(), "README.md": licence})  # fmt: skip
    eval_repo = f"{ORG}/{EVAL_DATASET}"
    pq.write_table(pa.Table.from_pylist(_eval_rows()), tmp / "test.parquet")
    api.create_repo(eval_repo, repo_type="dataset", exist_ok=True)
    api.upload_file(path_or_fileobj=tmp / "test.parquet", path_in_repo="data/test-00000-of-00001.parquet",
                    repo_id=eval_repo, repo_type="dataset")  # fmt: skip
    api.upload_file(path_or_fileobj=json.dumps({"nli_model": NLI, "bootstrap_resamples": BOOT}).encode(),
                    path_in_repo="metric_config.json", repo_id=eval_repo, repo_type="dataset")  # fmt: skip
    api.create_repo(NLI, exist_ok=True)
    api.upload_folder(folder_path=save_tiny_nli(tmp / "nli"), repo_id=NLI)
    S.create_leaderboard_repo(REPO, api=api)
    doc = evaluate_model(
        MODEL, eval_dataset=eval_repo, output_dir=str(tmp / "results"),
        generation=GenerationParams(max_new_tokens=12), show_progress=False, use_cache=False,
    )  # fmt: skip
    path = Path(doc["results_path"])
    results = json.loads(path.read_text())
    samples = {d: [json.loads(x) for x in (path.parent / n).read_text().splitlines() if x.strip()]
               for d, n in results["samples"].items()}  # fmt: skip
    return {"api": api, "shas": shas, "results": results, "samples": samples, "tmp": tmp}


def _as(board, model: str, **changes) -> dict:
    r = copy.deepcopy(board["results"])
    r["model"].update(id=model, sha=board["shas"][model])
    r.update(changes)
    return r


def _old_main_draw(samples: dict[str, list[dict]], pr_num: int, n: int = 3) -> dict[str, set[int]]:
    """The rows today's main regenerates: random.Random(PR number), directions sorted, n per direction."""
    rng = random.Random(pr_num)
    return {d: set(rng.sample(range(len(rows)), min(n, len(rows)))) for d, rows in sorted(samples.items())}


@pytest.fixture(scope="module")
def reviewed(board):
    """Open every attack (and the honest PRs after them), then review all in one run."""
    from lmolt_hub.leaderboard.sandbox import Limits

    api, eve, team = board["api"], _user("eve"), _user("trust-team")
    honest, samples = board["results"], board["samples"]
    prs: dict[str, int] = {}
    # 1. forged outputs everywhere but at the rows main would regenerate (the PR number is known)
    next_num = len(list(api.get_repo_discussions(REPO, repo_type="dataset"))) + 1
    keep = _old_main_draw(samples, next_num)
    forged = {d: [row if i in keep[d] else {**row, "output": row["reference"], "raw_output": row["reference"]}
                  for i, row in enumerate(rows)] for d, rows in samples.items()}  # fmt: skip
    prs["predicted-draw"] = _pr(
        team, _files(f"submissions/{ORG}/predicted", _rescore(honest, forged), forged)
    )
    assert prs["predicted-draw"] == next_num
    # 2. hostile model repos, then an honest PR right behind them
    prs["tok-bomb"] = _pr(eve, _files("submissions/eve/tok-bomb", _as(board, "eve/tok-bomb"), samples))
    prs["template-bomb"] = _pr(eve, _files("submissions/eve/template-bomb",
                                           _as(board, "eve/template-bomb", prompt_format="chat"), samples))  # fmt: skip
    prs["config-bomb"] = _pr(
        eve, _files("submissions/eve/config-bomb", _as(board, "eve/config-bomb"), samples)
    )
    # 3. squatting: eve submits the owner's model (here: its honest run)
    prs["squat"] = _pr(eve, _files("submissions/trust/squat", honest, samples))
    prs["honest"] = _pr(team, _files(f"submissions/{ORG}/honest", honest, samples))
    # 4. forged per-sample metrics (they feed Figures 1-2): a win everywhere
    won = {
        d: [{**row, "metrics": {**row["metrics"], "win": True}} for row in rows]
        for d, rows in samples.items()
    }
    prs["per-sample"] = _pr(team, _files(f"submissions/{ORG}/wins", _as(board, f"{ORG}/lmolt-cpo"), won))
    # 5. a copy of trust's weights under eve's own id
    prs["copy"] = _pr(eve, _files("submissions/eve/stolen", _as(board, "eve/stolen"), samples))
    # 6. a file the submission does not declare
    extra = _files(f"submissions/{ORG}/extra", _as(board, f"{ORG}/lmolt-kto"), samples)
    extra[f"submissions/{ORG}/extra/notes.html"] = b"<script>alert(1)</script>"
    prs["extra-file"] = _pr(team, extra)
    limits = Limits(timeout_s=300, template_seconds=5)
    outcomes = {o.pr_num: o for o in S.review(REPO, org=ORG, api=api, rate_limit=100, limits=limits)}
    return {**board, "prs": prs, "outcomes": outcomes}


def _outcome(reviewed, name: str):
    return reviewed["outcomes"][reviewed["prs"][name]]


def test_outputs_forged_outside_the_predictable_draw_are_caught_without_naming_pairs(reviewed):
    """Issue 21.1: main regenerated 3 rows per direction chosen from the PR number; the forger kept
    the real outputs there. The secret draw of 90 per direction (all 6 rows here) catches it, and
    the rejection names no pair."""
    out = _outcome(reviewed, "predicted-draw")
    assert out.state == "rejected" and "spot check failed" in out.reason, out.reason
    ids = {str(r["id"]) for rows in reviewed["samples"].values() for r in rows}
    assert not any(i in out.reason for i in ids), out.reason
    assert not any(any(i in c for i in ids) for c in _comments(reviewed["api"], out.pr_num))


@pytest.mark.parametrize(("name", "words"), [
    ("tok-bomb", "PanicException"),
    ("template-bomb", "chat template"),
    ("config-bomb", "parameters, over the reviewer's limit"),
])  # fmt: skip
def test_hostile_model_repos_end_as_one_line_rejections_and_the_queue_moves_on(reviewed, name, words):
    """Issue 21.2: a panicking tokenizer, a never-ending chat template and a 70B config each end as a
    one-line rejection; the honest PR behind them is still reviewed (and verified)."""
    out = _outcome(reviewed, name)
    assert out.state == "rejected" and words in out.reason, out.reason
    assert "\n" not in out.reason and "Traceback" not in out.reason
    assert _outcome(reviewed, "honest").state == "verified", _outcome(reviewed, "honest").reason


def test_forged_per_sample_metrics_are_recomputed(reviewed):
    """Issue 21.3: `win: true` everywhere with honest corpus numbers forged the figures on main."""
    out = _outcome(reviewed, "per-sample")
    assert out.state == "rejected" and "'win' values differ from the recomputed" in out.reason, out.reason


def test_only_the_namespace_owner_creates_the_row(reviewed):
    """Issue 21.4: eve's PR with trust's model is refused; the owner's own run is verified."""
    out = _outcome(reviewed, "squat")
    assert out.state == "rejected" and "only the model's owner" in out.reason, out.reason
    assert _outcome(reviewed, "honest").state == "verified"


def test_verification_binds_samples_and_records_author_and_draw(reviewed):
    """Issue 21.1/3/4: samples' sha256, the PR author and the draw are in verification.json."""
    api, good = reviewed["api"], _outcome(reviewed, "honest")
    ver = json.loads(Path(api.hf_hub_download(REPO, f"{good.folder}/verification.json",
                                              repo_type="dataset")).read_text())  # fmt: skip
    assert ver["pr_author"] == "trust-team"
    for name, digest in ver["samples_sha256"].items():
        data = Path(api.hf_hub_download(REPO, f"{good.folder}/{name}", repo_type="dataset")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
    spot = ver["spot_check"]
    assert spot["n_per_direction"] == 90 and spot["draw"] == "secrets.SystemRandom"
    assert {d: len(ids) for d, ids in spot["ids"].items()} == {d: N_PAIRS for d in reviewed["samples"]}


def test_a_copy_of_another_teams_weights_shows_as_a_copy(reviewed, tmp_path):
    """Issue 21.4: eve/stolen holds trust/lmolt-sft's weights: verified (eve owns eve/), marked a copy."""
    from lmolt_hub.leaderboard.build import build

    out = _outcome(reviewed, "copy")
    assert out.state == "verified", out.reason
    api = reviewed["api"]
    ver = json.loads(Path(api.hf_hub_download(REPO, f"{out.folder}/verification.json",
                                              repo_type="dataset")).read_text())  # fmt: skip
    assert ver["copy_of"] == MODEL
    root = Path(api.snapshot_download(REPO, repo_type="dataset", local_dir=tmp_path / "repo"))
    doc = build(tmp_path / "site", results_root=root, include_paper=False)
    rows = {r["model"]: r for r in doc["rows"]}
    assert rows["eve/stolen"]["copy_of"] == MODEL and rows[MODEL]["copy_of"] is None


def test_files_beyond_the_declared_ones_are_refused(reviewed):
    out = _outcome(reviewed, "extra-file")
    assert out.state == "rejected" and "notes.html" in out.reason, out.reason


def test_a_stale_second_reviewer_does_not_mark_a_merged_pr_rejected(reviewed):
    """Issue 21.5: a second reviewer whose snapshot predates the merge reviews the same PR."""
    api, num = reviewed["api"], reviewed["prs"]["honest"]
    stale_main = {}  # the snapshot from before anything was merged
    pr = next(d for d in api.get_repo_discussions(REPO, repo_type="dataset") if d.num == num)
    before = _comments(api, num)
    outcome = S.review_one(api, REPO, pr, org=ORG, main=stale_main, accepted=[], history=[pr],
                           spot_check_n=0, rate_limit=100)  # fmt: skip
    assert outcome.state != "rejected", outcome.reason
    assert _comments(api, num) == before
    assert api.get_discussion_details(REPO, num, repo_type="dataset").status == "merged"


def test_reopening_a_pr_does_not_buy_more_reviews(board):
    """Issue 21.5: the rate limit counts reviews: a rejected PR reopened again and again runs out."""
    api, who = board["api"], _user("reopener")
    num = _pr(who, {"submissions/reopener/req/request.json": b'{"model": "reopener/none"}'})
    reasons = []
    for _ in range(3):
        (out,) = [
            o for o in S.review(REPO, org=ORG, api=api, rate_limit=2, spot_check_n=0) if o.pr_num == num
        ]
        reasons.append(out.reason)
        who.change_discussion_status(REPO, num, "open", repo_type="dataset")
    assert "not found" in reasons[0] and "not found" in reasons[1]
    assert "rate limit" in reasons[2], reasons


# --------------------------------------------------------------------------- no Hub needed


def _spot_inputs(n_rows: int) -> tuple[dict, dict[str, list[dict]]]:
    results = {"model": {"id": "o/m", "sha": "a" * 40}, "generation": {"params": {"max_new_tokens": 8}}}
    samples = {d: [{"id": str(i), "output": f"real {i}"} for i in range(n_rows)]
               for d in ("caption2smiles", "smiles2caption")}  # fmt: skip
    return results, samples


def test_spot_check_draw_is_secret_sized_batched_and_silent():
    """Issue 21.1: 90 pairs per direction (ceil(ln 0.01 / ln 0.95)), a fresh secret draw each
    time, one batched regeneration call, and a failure that names no pair."""
    from lmolt_hub.leaderboard.validate import DEFAULT_SPOT_CHECK, SubmissionError, spot_check

    assert DEFAULT_SPOT_CHECK == 90
    results, samples = _spot_inputs(1000)
    calls = []

    def real(results, rows_by_direction):
        calls.append({d: [r["id"] for r in rows] for d, rows in rows_by_direction.items()})
        return {d: [f"real {r['id']}" for r in rows] for d, rows in rows_by_direction.items()}

    first = spot_check(results, samples, real, DEFAULT_SPOT_CHECK)
    second = spot_check(results, samples, real, DEFAULT_SPOT_CHECK)
    assert len(calls) == 2 and all(len(ids) == 90 for c in calls for ids in c.values())
    assert first["ids"] != second["ids"]  # P(equal) ~ C(1000, 90)^-2
    full = spot_check(results, samples, real, DEFAULT_SPOT_CHECK, full=True)
    assert all(len(ids) == 1000 for ids in full["ids"].values())
    # half the outputs forged, never at the rows a PR-number seed would pick: caught, no pair named
    keep = _old_main_draw(samples, 7)
    forged = {d: [r if int(r["id"]) in keep[d] or int(r["id"]) % 2 else {**r, "output": "forged"} for r in rows]
              for d, rows in samples.items()}  # fmt: skip
    with pytest.raises(SubmissionError, match="spot check failed") as err:
        spot_check(results, forged, real, DEFAULT_SPOT_CHECK)
    assert "not disclosed" in str(err.value) and len(re.findall(r"\d+", str(err.value))) == 2, err.value


def test_a_raw_prompt_run_cannot_claim_the_card_template():
    """Issue 21.5: prompt_format "raw" uses no lmolt-hub template; claiming one is refused."""
    from lmolt_hub.leaderboard.validate import SubmissionError, check_versions
    from lmolt_hub.metrics import METRICS_VERSION
    from lmolt_hub.prompts import TEMPLATE_VERSION

    results = {
        "prompt_format": "raw",
        "template_version": TEMPLATE_VERSION,
        "metrics_version": METRICS_VERSION,
    }
    with pytest.raises(SubmissionError, match="prompt_format 'raw'"):
        check_versions(results)
    check_versions({**results, "prompt_format": "card"})


def test_crippled_settings_do_not_take_the_owners_row():
    """Issue 21.4: another run with max_new_tokens=1 is another row, so the owner's honest run is no
    duplicate of it."""
    from lmolt_hub.leaderboard.records import verified_record
    from lmolt_hub.leaderboard.review import check_duplicate

    from helpers.leaderboard_data import synthetic_results

    owner = synthetic_results("o/lmolt-sft", "a" * 40, 0.5, 0)
    owner["generation"]["params"] = {"do_sample": False, "max_new_tokens": 512}
    squatter = copy.deepcopy(owner)
    squatter["generation"]["params"]["max_new_tokens"] = 1
    check_duplicate(verified_record(owner), [verified_record(squatter)])


def test_one_absurd_sample_value_never_aborts_the_build(tmp_path):
    """Issue 21.3: dlen values of +-1e308 (valid JSON) made every build raise ("Too many bins");
    now those rows are skipped with a warning and the build completes."""
    from lmolt_hub.leaderboard.build import build

    from helpers.leaderboard_data import SYNTHETIC_BASELINE, synthetic_leaderboard_root

    root = synthetic_leaderboard_root(tmp_path / "repo")
    path = next(root.glob("submissions/test-org/lmolt-cpo*/samples_caption2smiles*.jsonl"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["metrics"]["dlen"], rows[1]["metrics"]["dlen"] = 1e308, -1e308  # valid JSON, finite
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc = build(tmp_path / "site", results_root=root, baseline=SYNTHETIC_BASELINE)
    assert len([r for r in doc["rows"] if r["kind"] == "verified"]) == 4
    assert any("1e+308" in w for w in doc["inputs"]["sample_warnings"]), doc["inputs"]["sample_warnings"]


def test_the_harness_ends_with_one_line_when_a_tokenizer_panics(tiny_llama_dir, tmp_path):
    """Issue 21.2: eval_harness/run.py on a model whose tokenizer panics: one line, no traceback."""
    from lmolt_hub.resources import chebi20_split

    model = hostile_tokenizer_dir(Path(tiny_llama_dir), tmp_path / "tok-bomb")
    script = Path(__file__).resolve().parents[2] / "eval_harness" / "run.py"
    proc = subprocess.run([sys.executable, str(script), "--model", str(model), "--eval-dataset",
                           str(chebi20_split("test")), "--limit", "2", "--max-new-tokens", "4",
                           "--output-dir", str(tmp_path / "out"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: the model's tokenizer panicked")
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


def _allocate(n: int) -> int:
    return len(bytearray(n))


def _panic() -> None:
    class PanicException(BaseException):  # what pyo3 raises: not an Exception
        pass

    raise PanicException("Onig: retry-limit-in-match over")


def _sleep(s: float) -> None:
    import time

    time.sleep(s)


def test_child_limits_turn_memory_panic_and_time_into_one_line():
    from lmolt_hub.leaderboard.sandbox import GIB, Limits, SandboxError, run_limited

    limits = Limits(timeout_s=60, memory_bytes=2 * GIB)
    with pytest.raises(SandboxError, match="out of memory"):
        run_limited(_allocate, 10 * GIB, limits=limits, what="a 10 GB string")
    with pytest.raises(SandboxError, match="PanicException: Onig"):
        run_limited(_panic, limits=limits, what="tokenizer")
    with pytest.raises(SandboxError, match="no result within 3 s"):
        run_limited(_sleep, 60, limits=Limits(timeout_s=3), what="template")
    assert run_limited(_allocate, 1000, limits=limits, what="small") == 1000
