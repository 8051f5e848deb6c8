"""Local Hub namespaces, played by two users (and a third) with the real huggingface_hub client.

Before this, any known token was a full admin: bob could push to, and delete, alice's repos.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

pytestmark = pytest.mark.adversarial

ALICE, BOB, CAROL, ADMIN = "hf_alice_secret", "hf_bob_secret", "hf_carol_secret", "hf_admin_secret"
USERS = {
    ALICE: {"user": "alice"},
    BOB: {"user": "bob"},
    CAROL: {"user": "carol", "orgs": ["lab"]},
    ADMIN: {"user": "root", "admin": True},
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from lmolt_hub.localhub import start_in_thread

    server = start_in_thread(tmp_path_factory.mktemp("ns") / "hub", tokens=USERS)
    yield server
    server.stop()


def _api(hub, token) -> HfApi:
    return HfApi(endpoint=hub.url, token=token)


def _status(call) -> tuple[int, str]:
    with pytest.raises(HfHubHTTPError) as err:
        call()
    resp = err.value.response
    return resp.status_code, resp.headers.get("X-Error-Message", "")


def _file(api: HfApi, repo: str, path: str, data: bytes, **kw):
    return api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo, **kw)


def test_tokens_map_to_users(hub):
    assert _api(hub, ALICE).whoami()["name"] == "alice"
    assert _api(hub, BOB).whoami()["name"] == "bob"
    carol = _api(hub, CAROL).whoami()
    assert carol["name"] == "carol" and [o["name"] for o in carol["orgs"]] == ["lab"]
    assert hub.token == ADMIN  # the handle's token is the admin's


def test_a_user_writes_only_its_own_namespace(hub):
    alice, bob = _api(hub, ALICE), _api(hub, BOB)
    alice.create_repo("alice/model")
    _file(alice, "alice/model", "a.txt", b"alice's")
    assert alice.list_repo_commits("alice/model")[0].authors == ["alice"]

    status, msg = _status(lambda: bob.create_repo("alice/bobs-squat"))
    assert status == 403 and "namespace 'alice'" in msg
    status, msg = _status(lambda: _file(bob, "alice/model", "a.txt", b"bob was here"))
    assert status == 403 and "open a pull request" in msg
    assert _status(lambda: bob.create_branch("alice/model", branch="bob"))[0] == 403
    assert _status(lambda: bob.create_tag("alice/model", tag="v-bob"))[0] == 403
    assert _status(lambda: bob.update_repo_settings("alice/model", private=True))[0] == 403
    status, msg = _status(lambda: bob.delete_repo("alice/model"))
    assert status == 403 and "may not delete" in msg and "alice" in msg
    # nothing of alice's changed
    assert hf_hub_download(
        "alice/model", "a.txt", endpoint=hub.url, token=ALICE, cache_dir=str(hub.root.parent / "c1")
    )
    assert (
        Path(
            hf_hub_download("alice/model", "a.txt", endpoint=hub.url, cache_dir=str(hub.root.parent / "c2"))
        ).read_bytes()
        == b"alice's"
    )
    assert alice.model_info("alice/model").private is False
    # existing public repo elsewhere: create_repo(exist_ok=True) still works (409 -> no error)
    assert bob.create_repo("alice/model", exist_ok=True)
    bob.create_repo("bob/model")
    _file(bob, "bob/model", "b.txt", b"bob's")


def test_orgs_and_admin(hub):
    carol, admin, bob = _api(hub, CAROL), _api(hub, ADMIN), _api(hub, BOB)
    carol.create_repo("lab/shared", repo_type="dataset")
    _file(carol, "lab/shared", "d.txt", b"lab data", repo_type="dataset")
    assert _status(lambda: bob.create_repo("lab/bob", repo_type="dataset"))[0] == 403
    admin.create_repo("alice/made-by-admin")
    _file(admin, "alice/made-by-admin", "x.txt", b"admin")
    admin.delete_repo("alice/made-by-admin")
    assert not admin.repo_exists("alice/made-by-admin")


def test_pr_authors_push_only_to_their_own_pr(hub):
    alice, bob, carol = _api(hub, ALICE), _api(hub, BOB), _api(hub, CAROL)
    repo = "alice/prs"
    alice.create_repo(repo)
    pr = _file(bob, repo, "bob.txt", b"v1", create_pr=True)
    num = pr.pr_num
    assert alice.get_discussion_details(repo, num).author == "bob"
    # bob updates his own PR
    _file(bob, repo, "bob.txt", b"v2", revision=f"refs/pr/{num}")
    # carol may not push to bob's PR, nor close or rename it, nor merge anything
    status, msg = _status(lambda: _file(carol, repo, "bob.txt", b"evil", revision=f"refs/pr/{num}"))
    assert status == 403 and f"#{num}" in msg
    assert _status(lambda: carol.change_discussion_status(repo, num, "closed"))[0] == 403
    assert _status(lambda: carol.rename_discussion(repo, num, "hijacked"))[0] == 403
    # carol may open her own PR and comment on bob's
    carol_pr = _file(carol, repo, "carol.txt", b"c", create_pr=True).pr_num
    carol.comment_discussion(repo, num, "looks good")
    assert _status(lambda: bob.merge_pull_request(repo, num))[0] == 403  # authors do not merge
    assert _status(lambda: bob.merge_pull_request(repo, carol_pr))[0] == 403
    # the owner merges; the merged content is bob's own v2, not carol's push
    alice.merge_pull_request(repo, num)
    got = hf_hub_download(repo, "bob.txt", endpoint=hub.url, cache_dir=str(hub.root.parent / "c3"))
    assert Path(got).read_bytes() == b"v2"
    # bob closes his own (other) PR: allowed
    second = _file(bob, repo, "more.txt", b"m", create_pr=True).pr_num
    bob.change_discussion_status(repo, second, "closed")


def test_merge_only_the_reviewed_head(hub):
    """Local extension for the leaderboard reviewer: merge refuses if the PR head moved."""
    import requests

    alice, bob = _api(hub, ALICE), _api(hub, BOB)
    repo = "alice/toctou"
    alice.create_repo(repo)
    num = _file(bob, repo, "r.json", b"{}", create_pr=True).pr_num
    reviewed = alice.list_repo_refs(repo, include_pull_requests=True).pull_requests[0].target_commit
    _file(bob, repo, "r.json", b'{"forged": 1}', revision=f"refs/pr/{num}")
    resp = requests.post(
        f"{hub.url}/api/models/{repo}/discussions/{num}/merge",
        json={"expectedHeadOid": reviewed},
        headers={"Authorization": f"Bearer {ALICE}"},
        timeout=30,
    )
    assert resp.status_code == 409 and "moved" in resp.json()["error"]
    assert alice.get_discussion_details(repo, num).status == "open"


def test_private_repos_are_owner_only(hub):
    alice, bob, admin = _api(hub, ALICE), _api(hub, BOB), _api(hub, ADMIN)
    repo = "alice/secret"
    alice.create_repo(repo, private=True)
    _file(alice, repo, "s.txt", b"secret")
    assert alice.model_info(repo).private is True
    assert admin.model_info(repo).private is True
    with pytest.raises(RepositoryNotFoundError):
        bob.model_info(repo)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo, "s.txt", endpoint=hub.url, token=BOB, cache_dir=str(hub.root.parent / "c4"))
    with pytest.raises(RepositoryNotFoundError):
        bob.list_repo_files(repo)
    assert repo not in {m.id for m in bob.list_models(author="alice")}
    assert repo in {m.id for m in alice.list_models(author="alice")}
    # bob cannot even learn it exists by squatting or opening a PR on it
    assert _status(lambda: bob.create_repo(repo))[0] == 403
    with pytest.raises(RepositoryNotFoundError):
        _file(bob, repo, "x.txt", b"x", create_pr=True)


def test_serve_takes_tokens_from_a_file_and_never_prints_them(tmp_path):
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text("hf_file_alice_1: {user: alice}\nhf_file_admin_1: {user: ops, admin: true}\n")
    env = {**os.environ, "LMOLT_HUB_TOKEN": "hf_env_admin_1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lmolt_hub.cli",
            "serve",
            "--root",
            str(tmp_path / "hub"),
            "--port",
            "0",
            "--tokens-file",
            str(tokens_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = [proc.stdout.readline() for _ in range(3)]
        url = banner[0].split(" at ")[1].strip()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        for secret in ("hf_file_alice_1", "hf_file_admin_1", "hf_env_admin_1"):
            assert secret not in "".join(banner) and secret not in cmdline
        assert "export HF_TOKEN=<your token>" in "".join(banner)
        alice = HfApi(endpoint=url, token="hf_file_alice_1")
        assert alice.whoami()["name"] == "alice"
        alice.create_repo("alice/m")
        assert _status(lambda: alice.create_repo("ops/m"))[0] == 403
        assert HfApi(endpoint=url, token="hf_env_admin_1").create_repo("anyone/m")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_without_tokens_writes_the_admin_token_to_a_file(tmp_path):
    root = tmp_path / "hub"
    env = {k: v for k, v in os.environ.items() if k not in ("LMOLT_HUB_TOKEN", "LMOLT_HUB_TOKENS_FILE")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmolt_hub.cli", "serve", "--root", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = "".join(proc.stdout.readline() for _ in range(3))
        token = (root / "admin-token").read_text().strip()
        assert token not in banner and f"$(cat {root / 'admin-token'})" in banner
        assert (root / "admin-token").stat().st_mode & 0o077 == 0  # owner-only
        url = banner.split(" at ")[1].split()[0]
        assert HfApi(endpoint=url, token=token).whoami()["name"] == "lmolt-user"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_tokens_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "tokens.json"
    bad.write_text(json.dumps({"hf_short": {"user": "a", "role": "x"}}))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmolt_hub.cli",
            "serve",
            "--root",
            str(tmp_path / "h"),
            "--tokens-file",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "unknown field" in proc.stderr and "hf_short" not in proc.stderr
