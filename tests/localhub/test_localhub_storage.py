"""Local Hub storage without HTTP: validation, atomic commits, serialised writers."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading

import pytest

from lmolt_hub.localhub import entries, names, wire
from lmolt_hub.localhub import storage as st
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.storage import Storage


@pytest.fixture
def store(tmp_path) -> Storage:
    s = Storage(tmp_path / "hub")
    s.create_repo("model", "org/m", private=False, author="tester")
    return s


def _add(store: Storage, path: str, data: bytes, parent: str | None = None, revision: str = "main"):
    entry = entries.regular_entry(store, base64.b64encode(data).decode())
    header = {"summary": f"add {path}", **({"parentCommit": parent} if parent else {})}
    return store.apply_commit("model", "org/m", revision, header, [("file", path, entry)], "tester")


@pytest.mark.parametrize(
    "repo_id",
    ["../x", "a/..", "a/b/c", "a", "a/b\x00", "a/" + "x" * 97, "-a/b", "a/b--c", "api/x", "a/b.git"],
)
def test_bad_repo_ids(repo_id):
    with pytest.raises(HubError) as err:
        names.validate_repo_id(repo_id)
    assert err.value.status == 400 and "repo id" in err.value.message


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "a/../b", "../x", "a//b", "a\x00b", ".git/config", "p" * 1001, "a\\b/../../x"]
)
def test_bad_paths(path):
    with pytest.raises(HubError) as err:
        names.validate_path(path)
    assert err.value.status == 422  # the Hub's status for an invalid path


@pytest.mark.parametrize("path", ["a\\b", "..\\..\\etc\\passwd", "dir\\", "\\x"])
def test_backslashes_are_ordinary_characters(path):
    """On the Hub only '/' separates; a backslash is part of a name (never a path on disk here)."""
    assert names.validate_path(path) == path


@pytest.mark.parametrize("rev", ["", "../main", "a..b", "x" * 300, "main\x00", "-rf"])
def test_bad_revisions(rev):
    with pytest.raises(HubError):
        names.validate_revision(rev)


def test_good_names_pass():
    assert names.validate_repo_id("lmolt/lmolt-slerp-cpo_v1.2") == "lmolt/lmolt-slerp-cpo_v1.2"
    assert names.validate_path("data/train-00000-of-00001.parquet")
    assert names.validate_revision("refs/pr/12") and names.validate_revision("v1.0")


def test_every_revision_stays_readable(store):
    first = _add(store, "f.txt", b"one")
    second = _add(store, "f.txt", b"two")
    for sha, want in ((first, b"one"), (second, b"two")):
        entry = store.files("model", "org/m", store.resolve("model", "org/m", sha))["f.txt"]
        assert store.open_blob(entry.sha256).read() == want
    assert [c["id"] for c in store.history("model", "org/m", second)][:2] == [second, first]


def test_crash_before_ref_update_keeps_previous_revision(store, monkeypatch):
    head = _add(store, "f.txt", b"safe")
    real_replace = os.replace

    def crash_on_refs(src, dst):
        if str(dst).endswith("refs.json"):
            raise OSError("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(st.os, "replace", crash_on_refs)
    with pytest.raises(OSError):
        _add(store, "f.txt", b"lost")
    monkeypatch.undo()
    assert store.resolve("model", "org/m", "main") == head
    entry = store.files("model", "org/m", head)["f.txt"]
    assert store.open_blob(entry.sha256).read() == b"safe"
    assert not any(p.name.startswith(".tmp-") for p in (store.root / "repos").rglob("*"))


def test_stale_parent_is_refused_and_only_one_racer_wins(store):
    head = store.resolve("model", "org/m", "main")
    results: list[str] = []

    def racer(i: int) -> None:
        try:
            _add(store, f"r{i}.txt", b"x", parent=head)
            results.append("ok")
        except HubError as e:
            results.append(str(e.status))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["412"] * 5 + ["ok"]


def test_short_or_corrupt_stream_installs_nothing(store):
    data = os.urandom(3 * wire.CHUNK + 7)
    oid = hashlib.sha256(data).hexdigest()
    short = io.BytesIO(data[: len(data) // 2])
    with pytest.raises(HubError, match="ended"):
        store.put_stream(short.read, len(data), oid)
    wrong = io.BytesIO(os.urandom(len(data)))
    with pytest.raises(HubError, match="sha256"):
        store.put_stream(wrong.read, len(data), oid)
    assert not store.has_blob(oid) and not list((store.root / "tmp").iterdir())
    store.put_stream(io.BytesIO(data).read, len(data), oid)
    assert store.open_blob(oid).read() == data


def test_commit_to_unknown_revision_and_missing_blob(store):
    with pytest.raises(HubError) as err:
        _add(store, "x.txt", b"x", revision="nope")
    assert err.value.code == "RevisionNotFound"
    ghost = entries.lfs_entry("0" * 64, 10)
    with pytest.raises(HubError, match="not uploaded"):
        store.apply_commit("model", "org/m", "main", {}, [("lfsFile", "w.bin", ghost)], "tester")


def test_git_oids_match_git():
    assert entries.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_gc_removes_only_unreferenced_old_blobs(store):
    _add(store, "keep.txt", b"kept")
    orphan = store.put_bytes(b"orphan")
    fresh = store.put_bytes(b"fresh upload, commit pending")
    old = os.stat(store.blob_path(orphan)).st_mtime - 7200
    os.utime(store.blob_path(orphan), (old, old))
    assert store.gc(grace_s=3600) == (1, len(b"orphan"))
    assert not store.has_blob(orphan) and store.has_blob(fresh)
    entry = store.files("model", "org/m", store.resolve("model", "org/m", "main"))["keep.txt"]
    assert store.open_blob(entry.sha256).read() == b"kept"


def test_history_is_topological_even_within_one_millisecond(store):
    shas = [_add(store, "f.txt", str(i).encode()) for i in range(6)]
    history = [c["id"] for c in store.history("model", "org/m", shas[-1])]
    assert history[:6] == shas[::-1] and len(history) == 7  # + the initial commit
