"""Hostile requests to the local Hub over raw sockets: each gets a clear 4xx, a bound, or a safe rendering."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import threading
import time
import uuid

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

pytestmark = pytest.mark.adversarial

ADMIN = "hf_hostile_admin"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from lmolt_hub.localhub import start_in_thread

    server = start_in_thread(tmp_path_factory.mktemp("hostile") / "hub", tokens=[ADMIN])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(hub) -> HfApi:
    return HfApi(endpoint=hub.url, token=ADMIN)


def _repo(api: HfApi, prefix: str) -> str:
    repo = f"eve/{prefix}-{uuid.uuid4().hex[:6]}"
    api.create_repo(repo)
    return repo


def _addr(hub) -> tuple[str, int]:
    host, port = hub.url.removeprefix("http://").split(":")
    return host, int(port)


def _exchange(hub, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes; return everything the server answers until it closes or goes quiet."""
    with socket.create_connection(_addr(hub), timeout=timeout) as s:
        s.sendall(raw)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and len(out) > 10_000_000:
                    break
        except TimeoutError:
            pass
    return out


def _status(resp: bytes) -> int:
    assert resp.startswith(b"HTTP/1.1 "), resp[:200]
    return int(resp[9:12])


def _request(hub, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection(*_addr(hub), timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


AUTH = {"Authorization": f"Bearer {ADMIN}"}


# ---------------------------------------------------------------- bodies


@pytest.mark.parametrize("size", [b"-1", b"-0", b"+5", b"0x10", b"zz", b"1 0", b"ffffffffffffffffff", b""])
def test_invalid_chunk_sizes_are_400(hub, size):
    raw = (
        b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b'\r\n{"name": "x"}'
    )
    t0 = time.monotonic()
    resp = _exchange(hub, raw, timeout=5)
    assert resp, "server never answered (it is reading an unbounded body)"
    assert _status(resp) in (400, 413) and time.monotonic() - t0 < 5
    assert b"chunk" in resp.lower()


def test_announced_bodies_over_the_limit_are_refused_before_reading(hub):
    for path, size in (("/api/validate-yaml", 2 << 20), ("/api/repos/create", 20 << 20)):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        ).encode()
        resp = _exchange(hub, head + b"{", timeout=5)  # the body never comes
        assert resp and _status(resp) == 413, (path, resp[:200])


def test_chunked_bodies_over_the_limit_are_413(hub):
    chunk = b"x" * (1 << 20)
    raw = (
        b"POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 3
        + b"0\r\n\r\n"
    )
    resp = _exchange(hub, raw, timeout=10)
    assert _status(resp) == 413


def test_both_content_length_and_chunked_is_400(hub):
    raw = (
        b"POST /api/validate-yaml HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    resp = _exchange(hub, raw, timeout=5)
    assert _status(resp) == 400 and resp.count(b"HTTP/1.1 ") == 1


def test_validate_yaml_is_small_and_bounded(hub):
    bomb = "---\na: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b]\n---\n"
    resp, data = _request(hub, "POST", "/api/validate-yaml", json.dumps({"content": bomb}), AUTH)
    assert resp.status == 400 and "aliases" in data.decode()
    resp, _ = _request(hub, "POST", "/api/validate-yaml", json.dumps({"content": "---\na: 1\n---\n"}), AUTH)
    assert resp.status == 200


# ---------------------------------------------------------------- cards


def _put_readme(hub, repo: str, text: str) -> None:
    """Commit a README with raw NDJSON (no client-side validation)."""
    content = base64.b64encode(text.encode()).decode()
    status, body = _commit(
        hub,
        repo,
        [
            {"key": "header", "value": {"summary": "card"}},
            {"key": "file", "value": {"path": "README.md", "content": content}},
        ],
    )
    assert status == 200, body


ALIAS_BOMB = (
    "---\n"
    "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "tags: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "---\nA card.\n"
)


def test_alias_bomb_card_is_not_expanded(api, hub):
    assert len(ALIAS_BOMB) < 500
    repo = _repo(api, "bomb")
    with pytest.raises(ValueError, match="aliases"):  # the honest client validates first ...
        api.upload_file(path_or_fileobj=ALIAS_BOMB.encode(), path_in_repo="README.md", repo_id=repo)
    _put_readme(hub, repo, ALIAS_BOMB)  # ... an attacker commits directly
    for path in (f"/api/models/{repo}", "/api/models?full=true&author=eve", "/", f"/{repo}"):
        t0 = time.monotonic()
        resp, data = _request(hub, "GET", path)
        assert resp.status == 200 and len(data) < 200_000, (path, len(data))
        assert time.monotonic() - t0 < 5
    assert api.model_info(repo).card_data is None  # refused card: no metadata, but the repo works


def test_yaml_tags_in_one_card_do_not_break_listing(api, hub):
    good = _repo(api, "good")
    odd = _repo(api, "odd")
    card = (
        "---\ndate: 2024-01-01\nwhen: 2024-01-01 10:00:00\nblob: !!binary aGVsbG8=\n"
        "set: !!set {a, b}\ninf: .inf\n1: numeric key\ntags: [x]\n---\nbody\n"
    )
    _put_readme(hub, odd, card)
    ids = {m.id for m in api.list_models(author="eve", full=True)}
    assert {good, odd} <= ids
    data = api.model_info(odd).card_data.to_dict()
    assert data["date"] == "2024-01-01" and data["set"] == ["a", "b"] and data["1"] == "numeric key"
    assert data["blob"] == base64.b64encode(b"hello").decode()
    # a python-object tag is refused by the safe loader: no metadata, listing intact
    evil = _repo(api, "evil")
    _put_readme(hub, evil, "---\nx: !!python/object/apply:os.system ['true']\n---\n")
    assert api.model_info(evil).card_data is None
    assert {good, odd, evil} <= {m.id for m in api.list_models(author="eve")}


# ---------------------------------------------------------------- connections


def test_idle_connections_are_bounded_and_dropped(tmp_path):
    from lmolt_hub.localhub import start_in_thread

    before = threading.active_count()
    hub = start_in_thread(
        tmp_path / "hub", tokens=[ADMIN], max_connections=4, max_connections_per_client=4, idle_timeout=1.0
    )
    socks = []
    try:
        for _ in range(12):
            socks.append(socket.create_connection(_addr(hub), timeout=5))
        time.sleep(0.3)
        assert threading.active_count() - before <= 4 + 1  # + the accept loop
        refused = 0
        for s in socks[4:]:
            data = s.recv(1024)
            refused += data.startswith(b"HTTP/1.1 503")
        assert refused == 8
        time.sleep(1.5)  # past the idle timeout: the server hangs up on the silent ones
        for s in socks[:4]:
            assert s.recv(1024) == b""
        resp, _ = _request(hub, "GET", "/api/models")
        assert resp.status == 200
    finally:
        for s in socks:
            s.close()
        hub.stop()


# ---------------------------------------------------------------- commits


def _commit(hub, repo: str, lines: list) -> tuple[int, dict]:
    body = b"\n".join(x if isinstance(x, bytes) else json.dumps(x).encode() for x in lines)
    resp, data = _request(
        hub, "POST", f"/api/models/{repo}/commit/main", body, {**AUTH, "Content-Type": "application/x-ndjson"}
    )
    return resp.status, json.loads(data)


def test_malformed_ndjson_values_are_400(api, hub):
    repo = _repo(api, "ndjson")
    header = {"key": "header", "value": {"summary": "x"}}
    bad_lines = [
        [header, {"key": "file", "value": "not an object"}],
        [{"key": "header", "value": [1, 2]}],
        [header, {"key": 5, "value": {}}],
        [header, [1, 2]],
        [header, "a string"],
        [header, {"key": "file", "value": None}],
        [header, {"key": "file", "value": {"path": 5, "content": "eA=="}}],
        [header, {"key": "file", "value": {"path": "a.txt", "content": 12}}],
        [header, {"key": "lfsFile", "value": {"path": "a.bin", "oid": "a" * 64, "size": "big"}}],
        [header, {"key": "lfsFile", "value": {"path": "a.bin", "oid": "a" * 64, "size": [1]}}],
        [header, {"key": "deletedFolder", "value": {"path": ["x"]}}],
        [header, b"\xff\xfe"],
        [header, b"[" * 100_000],
    ]
    for lines in bad_lines:
        status, body = _commit(hub, repo, lines)
        assert status == 400 and body["error"], (lines, status, body)
    assert [c.title for c in api.list_repo_commits(repo)] == ["initial commit"]


def test_deeply_nested_json_bodies_are_400(api, hub):
    repo = _repo(api, "deep")
    deep = b"[" * 50_000 + b"]" * 50_000
    for path in (
        "/api/repos/create",
        f"/api/models/{repo}/paths-info/main",
        f"/api/models/{repo}/discussions",
    ):
        resp, data = _request(hub, "POST", path, deep, {**AUTH, "Content-Type": "application/json"})
        assert resp.status == 400 and json.loads(data)["error"], (path, resp.status)


def test_base64_with_trailing_junk_is_400(api, hub):
    repo = _repo(api, "b64")
    for content in ("eA==junk!", "eA==\n", "e A==", "eA=", "!!!!"):
        status, body = _commit(
            hub,
            repo,
            [
                {"key": "header", "value": {"summary": "x"}},
                {"key": "file", "value": {"path": "a.txt", "content": content}},
            ],
        )
        assert status == 400 and "base64" in body["error"], (content, status)
    assert "a.txt" not in api.list_repo_files(repo)


@pytest.mark.parametrize(
    "body", [{}, {"name": None}, {"name": ""}, {"name": 5}, {"name": "ok", "organization": 7}]
)
def test_missing_repo_name_is_400(api, hub, body):
    resp, data = _request(
        hub, "POST", "/api/repos/create", json.dumps(body), {**AUTH, "Content-Type": "application/json"}
    )
    err = json.loads(data)["error"]
    assert resp.status == 400 and ("name" in err or "organization" in err)
    assert not api.repo_exists("lmolt-user/None") and not api.repo_exists("lmolt-user/5")
    resp, _ = _request(
        hub, "DELETE", "/api/repos/delete", json.dumps(body), {**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status == 400


def test_bytes_after_a_chunked_lfs_body_are_not_a_second_request(api, hub):
    repo = _repo(api, "smuggle")
    data = b"weights" * 100
    oid = hashlib.sha256(data).hexdigest()
    resp, body = _request(
        hub,
        "POST",
        f"/{repo}.git/info/lfs/objects/batch",
        json.dumps({"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}),
        {**AUTH, "Content-Type": "application/vnd.git-lfs+json"},
    )
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    path = href.split(hub.url, 1)[1]
    smuggled = b"DELETE /api/repos/delete HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    payload = data + smuggled
    raw = (
        f"PUT {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + b"%x\r\n" % len(payload)
        + payload
        + b"\r\n0\r\n\r\n"
    )
    resp = _exchange(hub, raw, timeout=5)
    assert resp.count(b"HTTP/1.1 ") == 1, resp
    assert _status(resp) == 400 and b"longer than the announced size" in resp


@pytest.mark.filterwarnings("ignore:About to update multiple times")
def test_file_and_folder_of_the_same_name_cannot_coexist(api, hub):
    repo = _repo(api, "clash")
    api.upload_file(path_or_fileobj=b"file", path_in_repo="a", repo_id=repo)
    with pytest.raises(HfHubHTTPError) as err:
        api.upload_file(path_or_fileobj=b"nested", path_in_repo="a/b.txt", repo_id=repo)
    assert err.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            repo,
            [CommitOperationAdd("d/x.txt", b"1"), CommitOperationAdd("d", b"2")],
            commit_message="clash in one commit",
        )
    assert err.value.response.status_code == 409
    # replacing the file by a folder in one commit is fine
    from huggingface_hub import CommitOperationDelete

    api.create_commit(
        repo, [CommitOperationDelete("a"), CommitOperationAdd("a/b.txt", b"nested")], commit_message="move"
    )
    assert set(api.list_repo_files(repo)) == {".gitattributes", "a/b.txt"}


def test_uploaded_html_and_svg_are_downloads_not_pages(api, hub):
    repo = _repo(api, "xss")
    for name, payload in (("x.html", b"<script>alert(1)</script>"), ("x.svg", b"<svg onload=alert(1)/>")):
        api.upload_file(path_or_fileobj=payload, path_in_repo=name, repo_id=repo)
        for method in ("GET", "HEAD"):
            resp, _ = _request(hub, method, f"/{repo}/resolve/main/{name}")
            assert resp.status == 200
            assert resp.getheader("Content-Disposition", "").startswith("attachment")
            assert resp.getheader("X-Content-Type-Options") == "nosniff"
            assert "sandbox" in resp.getheader("Content-Security-Policy", "")
    # the server's own leaderboard page (not from a repo) stays a page
    site = hub.root / "site" / "leaderboard"
    site.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text("<html><body>board</body></html>")
    resp, data = _request(hub, "GET", "/site/leaderboard/index.html")
    assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/html")
    assert resp.getheader("Content-Disposition") is None and b"board" in data
