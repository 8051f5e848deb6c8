"""Crash windows of the local Hub, by fault injection: a write step raises, then the server restarts.

After a restart no half-state may be visible: every listed PR has a ref (and every PR ref a PR), a
PR whose merge moved the branch is never merged twice, ``--gc`` never runs under a live server nor
deletes a blob a concurrent commit references, and partial uploads in ``tmp/`` are cleaned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from lmolt_hub.localhub import storage as st
from lmolt_hub.localhub.entries import FileEntry, git_blob_sha1
from lmolt_hub.localhub.errors import HubError

pytestmark = pytest.mark.adversarial

ADMIN = "hf_crash_admin"


class Crash(Exception):
    """The injected fault (a process dying mid-write, as far as the files on disk can tell)."""


def _crash_on_write(monkeypatch, when) -> list[str]:
    """Make ``write_json_atomic`` raise on the first call for which ``when(path, calls)`` holds."""
    real = st.write_json_atomic
    calls: list[str] = []

    def fake(path, obj):
        calls.append(str(path))
        if when(path, calls):
            raise Crash(f"crash before writing {path.name}")
        return real(path, obj)

    monkeypatch.setattr(st, "write_json_atomic", fake)
    return calls


def _start(root):
    from lmolt_hub.localhub import start_in_thread

    hub = start_in_thread(root, tokens=[ADMIN])
    return hub, HfApi(endpoint=hub.url, token=ADMIN)


def _pr_consistency(api: HfApi, repo: str) -> tuple[set[int], set[int]]:
    prs = {d.num for d in api.get_repo_discussions(repo) if d.is_pull_request}
    refs = {
        int(r.ref.rsplit("/", 1)[1])
        for r in api.list_repo_refs(repo, include_pull_requests=True).pull_requests
    }
    return prs, refs


@pytest.mark.parametrize("crash_at_write", [2, 3])
def test_crash_while_opening_a_pr_leaves_no_pr_without_ref(tmp_path, monkeypatch, crash_at_write):
    root = tmp_path / "hub"
    hub, api = _start(root)
    repo = "org/prs"
    try:
        api.create_repo(repo)
        # writes of a create_pr commit: 1 commit object, then the PR's ref and its discussion file
        calls = _crash_on_write(monkeypatch, lambda p, c: len(c) == crash_at_write)
        with pytest.raises(HfHubHTTPError):
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo, create_pr=True)
        assert len(calls) == crash_at_write
        monkeypatch.undo()
    finally:
        hub.stop()
    hub, api = _start(root)  # restart: recovery runs
    try:
        prs, refs = _pr_consistency(api, repo)
        assert prs == refs  # no PR without a ref, no orphan PR ref
        for num in prs:  # whatever survived is a working PR
            api.merge_pull_request(repo, num)
        num = api.upload_file(path_or_fileobj=b"y", path_in_repo="y.txt", repo_id=repo, create_pr=True).pr_num
        assert num not in prs and _pr_consistency(api, repo)[0] == _pr_consistency(api, repo)[1]
        api.merge_pull_request(repo, num)
        assert "y.txt" in api.list_repo_files(repo)
    finally:
        hub.stop()


def test_crash_while_opening_an_empty_pr(tmp_path, monkeypatch):
    """create_discussion(pull_request=True) writes a ref and a discussion too."""
    root = tmp_path / "hub"
    hub, api = _start(root)
    try:
        api.create_repo("org/empty")
        _crash_on_write(monkeypatch, lambda p, c: len(c) == 2)
        with pytest.raises(HfHubHTTPError):
            api.create_pull_request("org/empty", title="an empty PR")
        monkeypatch.undo()
    finally:
        hub.stop()
    hub, api = _start(root)
    try:
        prs, refs = _pr_consistency(api, "org/empty")
        assert prs == refs
    finally:
        hub.stop()


def test_crash_after_merge_moved_main_allows_no_second_merge(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    hub, api = _start(root)
    repo = "org/merge"
    try:
        api.create_repo(repo)
        num = api.upload_file(
            path_or_fileobj=b"pr", path_in_repo="p.txt", repo_id=repo, create_pr=True
        ).pr_num
        # the merge writes: merge commit, refs.json (main moves), then the discussion ("merged")
        _crash_on_write(monkeypatch, lambda p, c: p.parent.name == "discussions")
        with pytest.raises(HfHubHTTPError):
            api.merge_pull_request(repo, num)
        monkeypatch.undo()
        assert "p.txt" in api.list_repo_files(repo)  # main did move
        with pytest.raises(HfHubHTTPError) as err:  # even before a restart: no second merge
            api.merge_pull_request(repo, num)
        assert "already merged" in err.value.response.headers.get("X-Error-Message", "")
    finally:
        hub.stop()
    hub, api = _start(root)
    try:
        assert api.get_discussion_details(repo, num).status == "merged"
        with pytest.raises(HfHubHTTPError):
            api.merge_pull_request(repo, num)
        merges = [c for c in api.list_repo_commits(repo) if c.title.startswith("Merge pull request")]
        assert len(merges) == 1
    finally:
        hub.stop()


def test_recovery_repairs_a_pr_written_by_the_old_order(tmp_path):
    """Roots written by an older version could hold a PR discussion without its ref: restored on start."""
    root = tmp_path / "hub"
    hub, api = _start(root)
    repo = "org/old"
    try:
        api.create_repo(repo)
        info = api.upload_file(path_or_fileobj=b"o", path_in_repo="o.txt", repo_id=repo, create_pr=True)
        head = api.list_repo_refs(repo, include_pull_requests=True).pull_requests[0].target_commit
    finally:
        hub.stop()
    refs_path = root / "repos" / "models" / repo / "refs.json"
    refs = st.read_json(refs_path)
    del refs["pr"][str(info.pr_num)]
    st.write_json_atomic(refs_path, refs)
    hub, api = _start(root)
    try:
        assert api.list_repo_refs(repo, include_pull_requests=True).pull_requests[0].target_commit == head
        api.merge_pull_request(repo, info.pr_num)
        assert "o.txt" in api.list_repo_files(repo)
    finally:
        hub.stop()


def test_gc_refuses_a_root_a_live_server_holds(tmp_path):
    root = tmp_path / "hub"
    hub, api = _start(root)
    try:
        api.create_repo("org/live")
        with pytest.raises(HubError, match="live lmolt-hub server"):
            st.Storage(root).gc(grace_s=0)
        proc = subprocess.run(
            [sys.executable, "-m", "lmolt_hub.cli", "serve", "--root", str(root), "--gc"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 1 and f"pid {os.getpid()}" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        hub.stop()
    assert st.Storage(root).gc(grace_s=0) == (0, 0)  # stopped: gc runs (nothing to free)


def test_gc_cannot_delete_a_blob_a_concurrent_commit_references(tmp_path, monkeypatch):
    store = st.Storage(tmp_path / "hub")
    store.create_repo("model", "org/gc", private=False, author="t")
    data = b"orphan content from a deleted repo"
    sha = store.put_bytes(data)
    old = time.time() - 7200
    os.utime(store.blob_path(sha), (old, old))  # unreferenced and past the grace period
    scanned, results = threading.Event(), {}
    real_scan = st.Storage._referenced_blobs

    def slow_scan(self):
        out = real_scan(self)
        scanned.set()
        time.sleep(0.5)  # the window in which a commit lands
        return out

    monkeypatch.setattr(st.Storage, "_referenced_blobs", slow_scan)
    gc = threading.Thread(target=lambda: results.setdefault("gc", store.gc()))
    gc.start()
    assert scanned.wait(10)
    entry = FileEntry(sha, git_blob_sha1(data), len(data), False)
    try:
        store.apply_commit("model", "org/gc", "main", {}, [("file", "x.txt", entry)], "t")
        results["commit"] = "ok"
    except HubError as e:
        results["commit"] = e.status
    gc.join(10)
    # either the commit waited for gc and was refused (blob gone), or it kept the blob: never a commit
    # that points at a deleted blob
    files = store.files("model", "org/gc", store.resolve("model", "org/gc", "main"))
    for e in files.values():
        assert store.has_blob(e.sha256, e.size), "a commit references a blob gc deleted"
    assert results["commit"] in ("ok", 400)


def test_partial_uploads_in_tmp_are_cleaned_on_start(tmp_path):
    root = tmp_path / "hub"
    st.Storage(root)
    (root / "tmp" / "blob-partial").write_bytes(b"x" * 1000)
    (root / "tmp" / "deleted-0123").mkdir()
    (root / "tmp" / "deleted-0123" / "repo.json").write_text("{}")
    hub, _ = _start(root)
    try:
        assert list((root / "tmp").iterdir()) == []
        # a second server on a live root does not clean: the first may be mid-upload
        (root / "tmp" / "blob-inflight").write_bytes(b"y")
        second, _ = _start(root)
        second.stop()
        assert (root / "tmp" / "blob-inflight").exists()
    finally:
        hub.stop()
