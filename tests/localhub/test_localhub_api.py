"""Local Hub contract: huggingface_hub's HfApi and raw HTTP against the ``local_hub`` fixture."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)


def _name(prefix: str) -> str:
    return f"lmolt-test/{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api(local_hub) -> HfApi:
    return HfApi(endpoint=local_hub.url, token=local_hub.token)


def _raw(hub, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One request with an exact path (http.client does not normalise ``..``)."""
    host, port = hub.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_upload_download_roundtrip(api, local_hub, tmp_path):
    repo = _name("rt")
    api.create_repo(repo)
    folder = tmp_path / "up"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\ntags: [molecule]\n---\n# Card\nA tiny model.\n")
    weights = os.urandom(300_000)
    (folder / "weights.bin").write_bytes(weights)
    (folder / "sub" / "notes.txt").write_text("hello")
    info = api.upload_folder(folder_path=folder, repo_id=repo)

    model = api.model_info(repo, files_metadata=True)
    assert model.sha == info.oid
    assert model.card_data.license == "mit" and "molecule" in model.tags
    sib = {s.rfilename: s for s in model.siblings}
    assert set(sib) == {".gitattributes", "README.md", "weights.bin", "sub/notes.txt"}
    assert sib["weights.bin"].lfs.sha256 == hashlib.sha256(weights).hexdigest()
    assert sib["sub/notes.txt"].lfs is None and sib["sub/notes.txt"].size == 5

    assert Path(hf_hub_download(repo, "weights.bin")).read_bytes() == weights
    snap = Path(snapshot_download(repo))
    assert (snap / "sub" / "notes.txt").read_text() == "hello"

    top = {e.path for e in api.list_repo_tree(repo)}
    assert top == {".gitattributes", "README.md", "weights.bin", "sub"}
    deep = {e.path for e in api.list_repo_tree(repo, recursive=True)}
    assert "sub/notes.txt" in deep
    expanded = list(api.list_repo_tree(repo, path_in_repo="sub", expand=True))
    assert expanded[0].last_commit.oid == info.oid
    paths = api.get_paths_info(repo, ["weights.bin", "sub", "missing.txt"])
    assert [p.path for p in paths] == ["weights.bin", "sub"]


def test_headers_and_ranges(api, local_hub):
    repo = _name("range")
    api.create_repo(repo)
    data = bytes(range(256)) * 40
    api.upload_file(path_or_fileobj=data, path_in_repo="d.bin", repo_id=repo)
    api.upload_file(path_or_fileobj=b"plain text", path_in_repo="t.txt", repo_id=repo)
    sha = api.model_info(repo).sha
    resp, _ = _raw(local_hub, "HEAD", f"/{repo}/resolve/main/d.bin")
    assert resp.status == 200 and resp.getheader("X-Repo-Commit") == sha
    assert resp.getheader("X-Linked-Etag").strip('"') == hashlib.sha256(data).hexdigest()
    assert resp.getheader("X-Linked-Size") == str(len(data))
    resp, body = _raw(local_hub, "GET", f"/{repo}/resolve/main/d.bin", headers={"Range": "bytes=10-19"})
    assert resp.status == 206 and body == data[10:20]
    assert resp.getheader("Content-Range") == f"bytes 10-19/{len(data)}"
    resp, body = _raw(local_hub, "GET", f"/{repo}/resolve/{sha}/d.bin", headers={"Range": "bytes=-5"})
    assert body == data[-5:]
    resp, _ = _raw(local_hub, "GET", f"/{repo}/resolve/main/d.bin", headers={"Range": f"bytes={len(data)}-"})
    assert resp.status == 416
    resp, body = _raw(local_hub, "GET", f"/{repo}/resolve/main/t.txt")
    git_oid = hashlib.sha1(b"blob 10\x00plain text").hexdigest()
    assert body == b"plain text" and resp.getheader("ETag") == f'"{git_oid}"'


def test_revisions_branches_history(api):
    repo = _name("rev")
    api.create_repo(repo)
    first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id=repo).oid
    api.create_branch(repo, branch="dev")
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="f.txt", repo_id=repo)
    api.upload_file(path_or_fileobj=b"dev", path_in_repo="f.txt", repo_id=repo, revision="dev")
    api.create_tag(repo, tag="v1.0", revision=first)

    assert Path(hf_hub_download(repo, "f.txt")).read_text() == "v2"
    assert Path(hf_hub_download(repo, "f.txt", revision=first)).read_text() == "v1"
    assert Path(hf_hub_download(repo, "f.txt", revision="dev")).read_text() == "dev"
    assert Path(hf_hub_download(repo, "f.txt", revision="v1.0")).read_text() == "v1"
    refs = api.list_repo_refs(repo)
    assert {b.name for b in refs.branches} == {"main", "dev"} and refs.tags[0].target_commit == first
    titles = [c.title for c in api.list_repo_commits(repo)]
    assert len(titles) == 3 and titles[-1] == "initial commit"
    api.delete_branch(repo, branch="dev")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, "f.txt", revision="dev", force_download=True)
    with pytest.raises(HfHubHTTPError):
        api.delete_branch(repo, branch="main")


def test_pull_request_flow(api):
    repo = _name("pr")
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"base", path_in_repo="a.txt", repo_id=repo)
    pr = api.upload_file(path_or_fileobj=b"from pr", path_in_repo="b.txt", repo_id=repo, create_pr=True)
    assert pr.pr_revision == f"refs/pr/{pr.pr_num}"
    # main is untouched until the merge; the PR ref serves the new file
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "b.txt")
    assert Path(hf_hub_download(repo, "b.txt", revision=pr.pr_revision)).read_text() == "from pr"
    # main moves on meanwhile: the merge must keep both changes
    api.upload_file(path_or_fileobj=b"main moved", path_in_repo="c.txt", repo_id=repo)
    prs = list(api.get_repo_discussions(repo, discussion_type="pull_request"))
    assert [(d.num, d.status, d.is_pull_request) for d in prs] == [(pr.pr_num, "open", True)]
    api.comment_discussion(repo, pr.pr_num, "score: 0.5")
    api.merge_pull_request(repo, pr.pr_num)
    details = api.get_discussion_details(repo, pr.pr_num)
    assert details.status == "merged" and details.merge_commit_oid == api.model_info(repo).sha
    assert [e.content for e in details.events if e.type == "comment"][-1] == "score: 0.5"
    files = {s.rfilename for s in api.model_info(repo).siblings}
    assert {"a.txt", "b.txt", "c.txt"} <= files

    disc = api.create_discussion(repo, title="A question")
    api.change_discussion_status(repo, disc.num, new_status="closed", comment="done")
    assert api.get_discussion_details(repo, disc.num).status == "closed"

    # a conflicting PR is refused and main stays as it was
    conflict = api.upload_file(path_or_fileobj=b"pr side", path_in_repo="a.txt", repo_id=repo, create_pr=True)
    api.upload_file(path_or_fileobj=b"main side", path_in_repo="a.txt", repo_id=repo)
    head = api.model_info(repo).sha
    with pytest.raises(HfHubHTTPError) as err:
        api.merge_pull_request(repo, conflict.pr_num)
    assert err.value.response.status_code == 409 and api.model_info(repo).sha == head


def test_stale_parent_commit_refused(api):
    repo = _name("stale")
    api.create_repo(repo)
    old = api.model_info(repo).sha
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    head = api.model_info(repo).sha
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id=repo, parent_commit=old)
    assert err.value.response.status_code == 412
    assert api.model_info(repo).sha == head
    api.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id=repo, parent_commit=head)


def test_concurrent_commits_lose_nothing(api):
    repo = _name("conc")
    api.create_repo(repo)
    errors: list[Exception] = []

    def push(i: int) -> None:
        try:
            api.upload_file(path_or_fileobj=f"{i}".encode(), path_in_repo=f"f{i}.txt", repo_id=repo)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files = {s.rfilename for s in api.model_info(repo).siblings}
    assert {f"f{i}.txt" for i in range(8)} <= files
    assert len(api.list_repo_commits(repo)) == 9


def test_writes_need_token_reads_do_not(local_hub):
    repo = _name("auth")
    HfApi(endpoint=local_hub.url, token=local_hub.token).create_repo(repo)
    anon = HfApi(endpoint=local_hub.url, token=False)
    assert anon.model_info(repo).sha  # public read
    for token in (False, "hf_wrong"):
        client = HfApi(endpoint=local_hub.url, token=token)
        with pytest.raises(HfHubHTTPError) as err:
            client.create_repo(_name("noauth"))
        assert err.value.response.status_code == 401
        with pytest.raises(HfHubHTTPError):
            client.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    resp, _ = _raw(local_hub, "POST", "/api/repos/create", body=json.dumps({"name": "x"}).encode())
    assert resp.status == 401


def test_bad_ids_paths_revisions_touch_nothing(api, local_hub):
    repo = _name("bad")
    api.create_repo(repo)
    for bad in ("a/../b", "../x", "a/b/c", "a/b--c", "a/" + "n" * 200, "api/x", "a/b\x00"):
        with pytest.raises((HfHubHTTPError, ValueError)):
            api.create_repo(bad)
    auth = {"Authorization": f"Bearer {local_hub.token}"}
    cases = [
        ("GET", f"/{repo}/resolve/main/..%2F..%2Fetc%2Fpasswd"),
        ("GET", f"/{repo}/resolve/main/../../repo.json"),
        ("GET", f"/{repo}/resolve/main/a%00b"),
        ("GET", f"/{repo}/resolve/main/" + "p" * 1200),
        ("GET", f"/{repo}/resolve/..%2F..%2F/x.txt"),
        ("GET", "/api/models/..%2F..%2Fetc/passwd"),
        ("GET", "/site/..%2F..%2Frepos%2Fmodels"),
    ]
    for method, path in cases:
        resp, body = _raw(local_hub, method, path, headers=auth)
        assert 400 <= resp.status < 500, (path, resp.status)
        if resp.status == 400:
            assert json.loads(body)["error"]
    line = json.dumps(
        {"key": "file", "value": {"path": "../evil.txt", "content": "eA==", "encoding": "base64"}}
    )
    resp, body = _raw(
        local_hub,
        "POST",
        f"/api/models/{repo}/commit/main",
        body=(json.dumps({"key": "header", "value": {"summary": "x"}}) + "\n" + line).encode(),
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    assert resp.status == 422 and "evil" in json.loads(body)["error"]  # the Hub answers 422
    outside = local_hub.root.parent
    assert not list(outside.glob("evil*")) and not list(local_hub.root.rglob("evil*"))


def test_missing_things_have_typed_errors(api):
    repo = _name("missing")
    api.create_repo(repo)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "nope.txt")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, ".gitattributes", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo, revision="0" * 40)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("lmolt-test/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(repo)  # models and datasets are separate namespaces
    api.delete_repo(repo)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo)
    api.create_repo(repo)  # the name is free again after deletion
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(repo)
    assert err.value.response.status_code == 409


def test_create_existing_repo_gives_409_with_url(local_hub):
    repo = _name("exists")
    auth = {"Authorization": f"Bearer {local_hub.token}", "Content-Type": "application/json"}
    payload = json.dumps({"name": repo.split("/")[1], "organization": repo.split("/")[0], "type": "dataset"})
    first, _ = _raw(local_hub, "POST", "/api/repos/create", payload.encode(), auth)
    second, body = _raw(local_hub, "POST", "/api/repos/create", payload.encode(), auth)
    assert first.status == 200 and second.status == 409
    assert json.loads(body)["url"].endswith(f"/datasets/{repo}")


def _lfs_href(api: HfApi, local_hub, repo: str, oid: str, size: int) -> str:
    auth = {"Authorization": f"Bearer {local_hub.token}", "Content-Type": "application/vnd.git-lfs+json"}
    body = json.dumps({"operation": "upload", "objects": [{"oid": oid, "size": size}], "hash_algo": "sha256"})
    resp, data = _raw(local_hub, "POST", f"/{repo}.git/info/lfs/objects/batch", body.encode(), auth)
    assert resp.status == 200
    return json.loads(data)["objects"][0]["actions"]["upload"]["href"]


def test_interrupted_upload_leaves_previous_revision(api, local_hub):
    repo = _name("interrupt")
    api.create_repo(repo)
    api.upload_file(path_or_fileobj=b"stable", path_in_repo="keep.txt", repo_id=repo)
    head = api.model_info(repo).sha
    payload = os.urandom(2_000_000)
    oid = hashlib.sha256(payload).hexdigest()
    href = _lfs_href(api, local_hub, repo, oid, len(payload))
    path = href.split("127.0.0.1", 1)[1].split("/", 1)[1]
    host, port = local_hub.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:  # the client dies half-way through the body
        s.sendall(f"PUT /{path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(payload)}\r\n\r\n".encode())
        s.sendall(payload[: len(payload) // 2])
    # a commit body cut short at a line boundary is refused as a whole
    lines = [
        {"key": "header", "value": {"summary": "partial"}},
        {"key": "file", "value": {"path": "half.txt", "content": "aGFsZg==", "encoding": "base64"}},
    ]
    body = "".join(json.dumps(x) + "\n" for x in lines).encode()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"POST /api/models/{repo}/commit/main HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body) + 500}\r\n"
            f"Authorization: Bearer {local_hub.token}\r\nContent-Type: application/x-ndjson\r\n\r\n".encode()
            + body
        )
        s.shutdown(socket.SHUT_WR)
        reply = s.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 400") and "ended before" in reply
    # a commit naming the never-completed object is refused, and main is intact
    status, error = _commit_lfs(local_hub, repo, oid, len(payload))
    assert status == 400 and "not uploaded" in error
    assert api.model_info(repo).sha == head
    assert Path(hf_hub_download(repo, "keep.txt", revision=head)).read_text() == "stable"
    blob = local_hub.root / "blobs" / oid[:2] / oid
    assert not blob.exists()
    # a corrupted body (wrong bytes) is refused too
    resp, body = _raw(local_hub, "PUT", "/" + path, body=os.urandom(len(payload)))
    assert resp.status == 400 and "sha256" in json.loads(body)["error"] and not blob.exists()
    # the upload then succeeds normally
    api.upload_file(path_or_fileobj=payload, path_in_repo="big.bin", repo_id=repo)
    assert Path(hf_hub_download(repo, "big.bin")).read_bytes() == payload


def _commit_lfs(local_hub, repo: str, oid: str, size: int) -> tuple[int, str]:
    lines = [
        {"key": "header", "value": {"summary": "add"}},
        {"key": "lfsFile", "value": {"path": "big.bin", "algo": "sha256", "oid": oid, "size": size}},
    ]
    auth = {"Authorization": f"Bearer {local_hub.token}", "Content-Type": "application/x-ndjson"}
    body = "\n".join(json.dumps(x) for x in lines).encode()
    resp, data = _raw(local_hub, "POST", f"/api/models/{repo}/commit/main", body, auth)
    return resp.status, json.loads(data).get("error", "")


def test_body_size_limit(tmp_path):
    from lmolt_hub.localhub import start_in_thread

    hub = start_in_thread(tmp_path / "hub", tokens=["tok"], max_body=10_000)
    try:
        small = HfApi(endpoint=hub.url, token="tok")
        small.create_repo("o/limits")
        with pytest.raises(HfHubHTTPError) as err:
            small.upload_file(path_or_fileobj=b"a" * 50_000, path_in_repo="big.txt", repo_id="o/limits")
        assert err.value.response.status_code == 413
        assert small.upload_file(path_or_fileobj=b"ok", path_in_repo="s.txt", repo_id="o/limits").oid
    finally:
        hub.stop()


def test_list_models_and_datasets(api):
    author = f"lmolt-list-{uuid.uuid4().hex[:6]}"
    for name in ("alpha-sft", "beta-dpo"):
        api.create_repo(f"{author}/{name}")
    api.create_repo(f"{author}/triples", repo_type="dataset")
    assert sorted(m.id for m in api.list_models(author=author)) == [
        f"{author}/alpha-sft",
        f"{author}/beta-dpo",
    ]
    assert [m.id for m in api.list_models(author=author, search="dpo")] == [f"{author}/beta-dpo"]
    assert [d.id for d in api.list_datasets(author=author)] == [f"{author}/triples"]
    assert all(m.sha for m in api.list_models(author=author, full=True))
    card = "---\ntags: [lmolt, slerp]\ndatasets: [lmolt/lmolt-triples]\nlibrary_name: peft\n---\n"
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=f"{author}/beta-dpo")
    assert [m.id for m in api.list_models(author=author, filter=["lmolt", "peft"])] == [f"{author}/beta-dpo"]
    assert [m.id for m in api.list_models(author=author, trained_dataset="lmolt/lmolt-triples")] == [
        f"{author}/beta-dpo"
    ]
    assert list(api.list_models(author=author, filter="no-such-tag")) == []


def test_index_page_escapes_and_site_is_served(api, local_hub):
    repo = _name("zoo")
    api.create_repo(repo)
    card = "---\ntags: ['<b>x</b>']\n---\n<script>alert(1)</script> summary line\n"
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo)
    resp, body = _raw(local_hub, "GET", "/")
    page = body.decode()
    assert resp.status == 200 and repo in page and "/site/leaderboard/index.html" in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>x</b>" not in page
    resp, body = _raw(local_hub, "GET", f"/{repo}")
    page = body.decode()
    assert resp.status == 200 and "README.md" in page and "&lt;script&gt;" in page and "<script>" not in page
    assert _raw(local_hub, "GET", "/lmolt-test/no-such-repo")[0].status == 404
    site = local_hub.root / "site" / "leaderboard"
    site.mkdir(parents=True, exist_ok=True)
    (site / "leaderboard.json").write_text('{"rows": []}')
    resp, body = _raw(local_hub, "GET", "/site/leaderboard/leaderboard.json")
    assert resp.status == 200 and json.loads(body) == {"rows": []}
    assert _raw(local_hub, "GET", "/site/nothing.html")[0].status == 404


def test_use_local_hub_points_clients_and_restores(tmp_path):
    import huggingface_hub.constants as constants

    from lmolt_hub.localhub import use_local_hub

    before = (os.environ.get("HF_ENDPOINT"), constants.ENDPOINT, os.environ.get("HF_TOKEN"))
    with use_local_hub(tmp_path / "hub") as hub:
        assert os.environ["HF_ENDPOINT"] == hub.url == constants.ENDPOINT
        assert os.environ["HF_HUB_DISABLE_XET"] == "1" and os.environ["HF_TOKEN"] == hub.token
        HfApi().create_repo("me/quick")
        assert HfApi().model_info("me/quick").sha
    assert (os.environ.get("HF_ENDPOINT"), constants.ENDPOINT, os.environ.get("HF_TOKEN")) == before


def test_serve_cli(tmp_path):
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
            "--token",
            "alice:hf_alice",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().split(" at ")[1].strip()
        api = HfApi(endpoint=url, token="hf_alice")
        assert api.whoami()["name"] == "alice"
        api.create_repo("alice/m")
        assert api.list_repo_commits("alice/m")[0].authors == ["alice"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_malformed_bodies_get_400(api, local_hub):
    repo = _name("malformed")
    api.create_repo(repo)
    auth = {"Authorization": f"Bearer {local_hub.token}", "Content-Type": "application/json"}
    cases = [
        ("/api/repos/create", b"[1, 2]"),
        ("/api/repos/create", b"{not json"),
        (f"/api/models/{repo}/preupload/main", b'{"files": [{"path": "a.txt", "size": "big"}]}'),
        (f"/api/models/{repo}/commit/main", b'{"key": "header"}\nnot json\n'),
        (
            f"/api/models/{repo}/commit/main",
            b'{"key": "lfsFile", "value": {"path": "w.bin", "oid": "xyz"}}\n',
        ),
    ]
    for path, body in cases:
        resp, data = _raw(local_hub, "POST", path, body, auth)
        assert resp.status == 400, (path, resp.status, data)
        assert json.loads(data)["error"]
    assert api.model_info(repo).sha  # and the server is still fine


def test_private_repos_need_a_token_to_read(api, local_hub):
    repo = _name("private")
    api.create_repo(repo, private=True)
    api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo)
    anon = HfApi(endpoint=local_hub.url, token=False)
    with pytest.raises(RepositoryNotFoundError):
        anon.model_info(repo)
    assert repo not in {m.id for m in anon.list_models(author="lmolt-test")}
    assert repo in {m.id for m in api.list_models(author="lmolt-test")}
    assert _raw(local_hub, "GET", f"/{repo}/resolve/main/s.txt")[0].status == 404
    api.update_repo_settings(repo, private=False)
    assert anon.model_info(repo).private is False


def test_tree_pagination_follows_link_header(api, monkeypatch):
    from huggingface_hub import CommitOperationAdd

    from lmolt_hub.localhub.routes import files

    repo = _name("pages")
    api.create_repo(repo)
    ops = [CommitOperationAdd(f"d/f{i:02d}.txt", f"{i}".encode()) for i in range(7)]
    api.create_commit(repo, operations=ops, commit_message="many files")
    monkeypatch.setattr(files, "TREE_PAGE", 3)  # the server runs in this process
    listed = [e.path for e in api.list_repo_tree(repo, recursive=True)]
    assert listed == sorted({".gitattributes", "d", *(f"d/f{i:02d}.txt" for i in range(7))})
