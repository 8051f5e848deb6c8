"""The local Hub answers the unmodified ``huggingface_hub`` client as huggingface.co does.

Each test calls the client as a user would (``HfApi``, ``hf_hub_download``, ``RepoCard``) and checks
what the client library expects from the Hub: the typed errors it maps from status codes and
``X-Error-Code`` headers, the endpoints it calls, and the pre-upload answers it relies on.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    RepoCard,
    hf_hub_download,
)
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

ALICE, BOB = "hf_alice_parity", "hf_bob_parity"
USERS = {ALICE: {"user": "alice"}, BOB: {"user": "bob"}}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from lmolt_hub.localhub import start_in_thread

    server = start_in_thread(tmp_path_factory.mktemp("parity") / "hub", tokens=USERS)
    yield server
    server.stop()


@pytest.fixture()
def alice(hub) -> HfApi:
    return HfApi(endpoint=hub.url, token=ALICE)


@pytest.fixture()
def bob(hub) -> HfApi:
    return HfApi(endpoint=hub.url, token=BOB)


def _repo(api: HfApi, prefix: str, **kw) -> str:
    repo = f"alice/{prefix}-{uuid.uuid4().hex[:6]}"
    api.create_repo(repo, **kw)
    return repo


def _put(api: HfApi, repo: str, path: str, data: bytes, **kw):
    return api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo, **kw)


def _download(hub, repo: str, path: str, tmp_path: Path, **kw) -> bytes:
    cache = tmp_path / f"cache-{uuid.uuid4().hex[:6]}"
    return Path(hf_hub_download(repo, path, endpoint=hub.url, cache_dir=str(cache), **kw)).read_bytes()


def _raw(hub, method: str, path: str, body: dict | bytes | None = None, token: str | None = ALICE):
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(hub.url + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# ---------------------------------------------------------------- 1. endpoints the client calls


def test_move_repo_keeps_files_and_discussions(hub, alice, bob):
    repo = _repo(alice, "move")
    _put(alice, repo, "a.txt", b"moved")
    alice.create_discussion(repo, title="before the move")
    new = repo + "-renamed"
    with pytest.raises(HfHubHTTPError) as err:
        bob.move_repo(repo, "bob/stolen")
    assert err.value.response.status_code == 403
    alice.move_repo(repo, new)
    assert alice.model_info(new).id == new
    assert alice.list_repo_files(new) == [".gitattributes", "a.txt"]
    assert [d.title for d in alice.get_repo_discussions(new)] == ["before the move"]
    assert not alice.repo_exists(repo)
    with pytest.raises(RepositoryNotFoundError):
        alice.model_info(repo)


def test_super_squash_history(alice):
    repo = _repo(alice, "squash")
    for i in range(3):
        _put(alice, repo, f"f{i}.txt", str(i).encode())
    assert len(alice.list_repo_commits(repo)) == 4
    alice.super_squash_history(repo, commit_message="one commit")
    commits = alice.list_repo_commits(repo)
    assert [c.title for c in commits] == ["one commit"]
    assert sorted(alice.list_repo_files(repo)) == [".gitattributes", "f0.txt", "f1.txt", "f2.txt"]


def test_auth_check(hub, alice, bob):
    repo = _repo(alice, "auth")
    private = _repo(alice, "auth-private", private=True)
    alice.auth_check(repo, write=True)
    bob.auth_check(repo)  # reading a public repo: fine
    with pytest.raises(HfHubHTTPError) as err:
        bob.auth_check(repo, write=True)
    assert err.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):
        bob.auth_check(private)


def test_likes(hub, alice, bob):
    repo = _repo(alice, "liked")
    kind = "models"
    # huggingface_hub 2.4 has no `like` (the Hub keeps liking out of scripts); the route exists
    assert _raw(hub, "POST", f"/api/{kind}/{repo}/like", {}, token=BOB)[0] == 200
    assert [u.username for u in alice.list_repo_likers(repo)] == ["bob"]
    assert repo in bob.list_liked_repos("bob").models
    assert alice.model_info(repo).likes == 1
    bob.unlike(repo)
    assert list(alice.list_repo_likers(repo)) == []
    assert repo not in bob.list_liked_repos().models  # default: the token's user


def test_list_and_permanently_delete_lfs_files(hub, alice, bob, tmp_path):
    repo = _repo(alice, "lfs")
    weights = os.urandom(3000)
    _put(alice, repo, "w.bin", weights)
    _put(alice, repo, "readme.txt", b"keep")
    old = alice.model_info(repo).sha
    with pytest.raises(HfHubHTTPError):
        list(bob.list_lfs_files(repo))  # writers only
    files = list(alice.list_lfs_files(repo))
    assert [(f.filename, f.size) for f in files] == [("w.bin", 3000)]
    alice.permanently_delete_lfs_files(repo, files)
    assert list(alice.list_lfs_files(repo)) == []
    assert alice.list_repo_files(repo) == [".gitattributes", "readme.txt"]
    assert "w.bin" not in alice.list_repo_files(repo, revision=old)  # history rewritten too
    blob = hub.root / "blobs" / files[0].file_oid[:2] / files[0].file_oid
    assert not blob.exists()


def test_edit_and_hide_discussion_comments(alice, bob):
    repo = _repo(alice, "comments")
    disc = bob.create_discussion(repo, title="a question", description="first words")
    comment = bob.comment_discussion(repo, disc.num, "typo hre")
    edited = bob.edit_discussion_comment(repo, disc.num, comment.id, "typo here")
    assert edited.content == "typo here" and edited.edited
    with pytest.raises(HfHubHTTPError) as err:
        alice.edit_discussion_comment(repo, disc.num, comment.id, "alice rewrites bob")
    assert err.value.response.status_code == 403
    events = bob.get_discussion_details(repo, disc.num).events
    assert [e.content for e in events if e.type == "comment"] == ["first words", "typo here"]
    hidden = alice.hide_discussion_comment(repo, disc.num, comment.id)  # the owner moderates
    assert hidden.hidden


# ---------------------------------------------------------------- 2. error shape


def test_tree_of_a_file_is_entry_not_found(alice):
    repo = _repo(alice, "tree")
    _put(alice, repo, "dir/a.txt", b"a")
    with pytest.raises(EntryNotFoundError):
        list(alice.list_repo_tree(repo, path_in_repo="dir/a.txt"))
    assert [e.path for e in alice.list_repo_tree(repo, path_in_repo="dir")] == ["dir/a.txt"]


def test_every_answer_has_a_request_id(hub, alice):
    status, headers, _ = _raw(hub, "GET", "/api/models")
    assert status == 200 and re.fullmatch(r"[0-9a-f]{24}", headers["X-Request-Id"])
    status, headers2, _ = _raw(hub, "GET", "/api/models/alice/missing-repo")
    assert status == 404 and headers2["X-Request-Id"] != headers["X-Request-Id"]
    with pytest.raises(RepositoryNotFoundError) as err:
        alice.model_info("alice/missing-repo")
    assert "(Request ID: None)" not in str(err.value)
    assert re.search(r"Request ID: [0-9a-f]{24}", str(err.value))


def test_branch_errors(alice):
    repo = _repo(alice, "branches")
    alice.create_branch(repo, branch="dev")
    with pytest.raises(HfHubHTTPError) as err:
        alice.create_branch(repo, branch="dev")
    assert err.value.response.status_code == 409
    alice.create_branch(repo, branch="dev", exist_ok=True)
    with pytest.raises(BadRequestError) as bad:  # a bad name is a bad request, not a missing revision
        alice.create_branch(repo, branch="a..b")
    assert not isinstance(bad.value, RevisionNotFoundError)
    with pytest.raises(RevisionNotFoundError):
        alice.delete_branch(repo, branch="never-made")
    with pytest.raises(RevisionNotFoundError):
        alice.create_branch(repo, branch="x", revision="no-such-start")


def test_stale_parent_commit_is_412(alice):
    repo = _repo(alice, "stale")
    parent = alice.model_info(repo).sha
    _put(alice, repo, "a.txt", b"first")
    with pytest.raises(HfHubHTTPError) as err:
        _put(alice, repo, "b.txt", b"second", parent_commit=parent)
    assert err.value.response.status_code == 412
    assert "A commit has happened since. Please refresh and try again." in str(err.value)


def test_invalid_paths_are_422(hub, alice):
    repo = _repo(alice, "paths")
    header = {"key": "header", "value": {"summary": "x"}}
    for path in ("../evil.txt", "a//b", ".git/config"):
        line = {"key": "file", "value": {"path": path, "content": "eA==", "encoding": "base64"}}
        body = (json.dumps(header) + "\n" + json.dumps(line)).encode()
        status, _, data = _raw(hub, "POST", f"/api/models/{repo}/commit/main", body)
        assert status == 422 and "Invalid path" in json.loads(data)["error"], (path, status)
    assert alice.list_repo_files(repo) == [".gitattributes"]


# ---------------------------------------------------------------- 3. repo ids


def test_namespace_less_ids_are_repository_not_found(hub, alice, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        alice.model_info("gpt2")
    assert alice.repo_exists("gpt2") is False
    assert alice.repo_exists("gpt2", repo_type="dataset") is False
    with pytest.raises(RepositoryNotFoundError):
        alice.list_repo_files("gpt2")
    with pytest.raises(RepositoryNotFoundError):
        _download(hub, "gpt2", "config.json", tmp_path)


def test_ids_are_case_insensitive_and_answered_in_canonical_case(hub, alice, tmp_path):
    repo = _repo(alice, "CaseRepo")
    _put(alice, repo, "x.txt", b"case")
    shouted = repo.upper()
    assert alice.model_info(shouted).id == repo
    assert alice.repo_exists(shouted)
    assert _download(hub, shouted, "x.txt", tmp_path) == b"case"
    _put(alice, shouted, "y.txt", b"via another case")  # writes land in the one repo
    assert alice.list_repo_files(repo) == [".gitattributes", "x.txt", "y.txt"]
    assert alice.create_repo(shouted, exist_ok=True).repo_id == repo
    with pytest.raises(HfHubHTTPError) as err:
        alice.create_repo(shouted)
    assert err.value.response.status_code == 409
    assert alice.create_repo("ALICE/new-" + uuid.uuid4().hex[:6]).repo_id.startswith("alice/")


# ---------------------------------------------------------------- 4. pre-upload


def test_unchanged_files_are_not_committed_again(alice, tmp_path):
    repo = _repo(alice, "preupload")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("A")
    (folder / "w.bin").write_bytes(os.urandom(2048))  # LFS
    alice.upload_folder(folder_path=folder, repo_id=repo)
    head = alice.model_info(repo).sha
    info = alice.upload_folder(folder_path=folder, repo_id=repo)  # nothing changed
    assert alice.model_info(repo).sha == head == info.oid
    (folder / "a.txt").write_text("A2")
    alice.upload_folder(folder_path=folder, repo_id=repo, commit_message="only a.txt")
    commits = alice.list_repo_commits(repo)
    assert [c.title for c in commits][:2] == ["only a.txt", "Upload folder using huggingface_hub"]
    assert len(commits) == 3
    # an empty commit is never created, even when asked for one with identical content
    alice.create_commit(repo, [CommitOperationAdd("a.txt", b"A2")], commit_message="no change")
    assert len(alice.list_repo_commits(repo)) == 3


def test_the_repos_gitignore_applies_to_uploads(alice, tmp_path):
    repo = _repo(alice, "gitignore")
    _put(alice, repo, ".gitignore", b"*.log\n/build/\n!keep.log\n")
    folder = tmp_path / "run"
    (folder / "build").mkdir(parents=True)
    (folder / "sub" / "build").mkdir(parents=True)
    for rel in ("model.txt", "train.log", "keep.log", "build/out.o", "sub/build/kept.o"):
        (folder / rel).write_text(rel)
    alice.upload_folder(folder_path=folder, repo_id=repo)
    assert sorted(alice.list_repo_files(repo)) == [
        ".gitattributes",
        ".gitignore",
        "keep.log",
        "model.txt",
        "sub/build/kept.o",
    ]


# ---------------------------------------------------------------- 5. revisions and paths


def test_short_sha_revisions(hub, alice, tmp_path):
    repo = _repo(alice, "shortsha")
    _put(alice, repo, "v.txt", b"one")
    sha = alice.model_info(repo).sha
    _put(alice, repo, "v.txt", b"two")
    assert alice.model_info(repo, revision=sha[:7]).sha == sha
    assert _download(hub, repo, "v.txt", tmp_path, revision=sha[:7]) == b"one"
    assert alice.list_repo_files(repo, revision=sha[:10]) == [".gitattributes", "v.txt"]
    with pytest.raises(RevisionNotFoundError):
        alice.model_info(repo, revision="0000000")


def test_delete_a_folder_without_trailing_slash(alice):
    repo = _repo(alice, "delfolder")
    alice.create_commit(
        repo,
        [CommitOperationAdd(f"ckpt/{i}.txt", b"x") for i in range(2)] + [CommitOperationAdd("k.txt", b"k")],
        commit_message="add",
    )
    alice.create_commit(repo, [CommitOperationDelete("ckpt")], commit_message="delete")  # is_folder auto
    assert alice.list_repo_files(repo) == [".gitattributes", "k.txt"]
    _put(alice, repo, "ckpt2/a.txt", b"a")
    alice.delete_file("ckpt2", repo)
    assert alice.list_repo_files(repo) == [".gitattributes", "k.txt"]
    with pytest.raises(EntryNotFoundError):
        alice.delete_file("nothing-here", repo)


def test_backslashes_are_ordinary_characters(hub, alice, tmp_path):
    repo = _repo(alice, "backslash")
    _put(alice, repo, "a\\b.txt", b"one name")
    assert _download(hub, repo, "a\\b.txt", tmp_path) == b"one name"
    _put(alice, repo, "..\\..\\outside.txt", b"still one name")
    assert sorted(alice.list_repo_files(repo)) == ["..\\..\\outside.txt", ".gitattributes", "a\\b.txt"]
    # (the client refuses to download a '..' between backslashes, for Windows; the server serves it)
    quoted = urllib.request.quote("..\\..\\outside.txt", safe="")
    status, _, data = _raw(hub, "GET", f"/{repo}/resolve/main/{quoted}")
    assert status == 200 and data == b"still one name"
    assert not list(hub.root.parent.glob("*outside*")) and not list(hub.root.rglob("*outside*"))


# ---------------------------------------------------------------- 6. cards


def test_validate_yaml_checks_what_the_hub_checks(hub, monkeypatch):
    monkeypatch.setattr(hf_constants, "ENDPOINT", hub.url)  # RepoCard.validate reads the constant
    RepoCard("---\nlicense: mit\ntags: [chemistry]\nlmolt: {kind: sft}\n---\nA card").validate()
    for front, problem in (
        ("license: 3", '"license" must be'),
        ("tags: {a: 1}", '"tags" must be'),
        ("model-index: not-a-list", '"model-index" must be'),
        ("model-index:\n- name: m\n  results:\n  - task: {name: x}\n    metrics: []", "task.type"),
        ("model-index:\n- name: m\n  results:\n  - task: {type: t}\n    dataset: {type: d, name: n}\n"
         "    metrics: [{type: bleu}]", '"value"'),
    ):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(problem)):
            RepoCard(f"---\n{front}\n---\nA card").validate()
    index = (
        "model-index:\n- name: m\n  results:\n  - task: {type: translation}\n"
        "    dataset: {type: d, name: n}\n    metrics: [{type: bleu, value: 0.5}]"
    )
    RepoCard(f"---\n{index}\n---\n").validate()
    status, _, body = _raw(hub, "POST", "/api/validate-yaml", {"content": "---\nlicense: my-own\n---\n"})
    warnings = json.loads(body)["warnings"]
    assert status == 200 and "not a known license" in warnings[0]["message"]


# ---------------------------------------------------------------- 7. details


def test_commit_history_formatted_only_when_asked(alice):
    repo = _repo(alice, "history")
    _put(alice, repo, "a.txt", b"a", commit_message="add <a>")
    plain = alice.list_repo_commits(repo)[0]
    assert plain.title == "add <a>" and plain.formatted_title is None
    formatted = alice.list_repo_commits(repo, formatted=True)[0]
    assert formatted.formatted_title == "<p>add &lt;a&gt;</p>"


def test_a_new_space_gets_the_hubs_initial_files(hub, alice, tmp_path):
    static = _repo(alice, "space-static", repo_type="space", space_sdk="static")
    assert alice.list_repo_files(static, repo_type="space") == [
        ".gitattributes",
        "README.md",
        "index.html",
        "style.css",
    ]
    gradio = _repo(alice, "space-gradio", repo_type="space", space_sdk="gradio")
    assert alice.list_repo_files(gradio, repo_type="space") == [".gitattributes", "README.md"]
    assert alice.space_info(gradio).sdk == "gradio"
    readme = _download(hub, gradio, "README.md", tmp_path, repo_type="space").decode()
    assert "sdk: gradio" in readme and "title: " in readme


def test_underscore_user_names_are_refused_with_a_clear_error():
    """Decided: ``__DUMMY_USER__``-style names (the Hub's own test accounts) are refused; see
    docs/localhub.md, deliberate differences."""
    from lmolt_hub.localhub.auth import Auth, AuthConfigError

    with pytest.raises(AuthConfigError, match="starting with a letter or digit"):
        Auth.from_tokens({"hf_dummy_token": {"user": "__DUMMY_USER__"}})
