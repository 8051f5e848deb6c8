"""On-disk storage of the local Hub: content-addressed blobs, commits, refs, discussions.

Layout under ``root``::

    blobs/<sha256[:2]>/<sha256>              file contents (shared by all repos)
    repos/<type>s/<ns>/<name>/repo.json      id, type, private, createdAt
    repos/<type>s/<ns>/<name>/refs.json      {"heads": {...}, "tags": {...}, "pr": {...}}
    repos/<type>s/<ns>/<name>/commits/<sha>.json   parents, message, full file table
    repos/<type>s/<ns>/<name>/discussions/<n>.json
    tmp/                                     partial uploads (never visible; emptied on start)
    server.lock                              held (shared) by every live server; ``gc`` needs it alone
    gc.lock                                  writers hold it shared, ``gc`` exclusively

Why it loses nothing: blobs are written to ``tmp/`` and renamed into place only
after their sha256 is verified; a commit object is written before the ref that
points at it, and every JSON file is replaced atomically (temp file +
``os.replace``). A crash at any point leaves the previous revision readable.
Writers to one repository serialise on an ``flock`` of its ``.lock`` file (which
also serialises threads: each operation opens its own file description).

Multi-file updates are ordered so a crash leaves no visible half-state, and ``recover``
(run by the first server to open a root) repairs what an older version could leave:
a pull request's ref is written before its discussion file (an orphan ref is dropped on
start), and a merge commit records the PR it merges (``mergedPr``), so a PR whose merge
moved the branch but was not yet marked merged is recognised as merged and never merged twice.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lmolt_hub.localhub.cardmeta import CardError, load_front_matter

CHUNK = 1 << 20
UPLOAD_CHUNK = 4 << 20
REPO_TYPES = ("model", "dataset", "space")
# First path segments that are routes of the server, not model namespaces.
RESERVED_NAMESPACES = {"api", "site", "datasets", "spaces", "models", "lfs-upload", "static"}
MAX_PATH_LEN = 1000
MAX_REVISION_LEN = 255
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REV_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$")
GITATTRIBUTES = (
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.pt filter=lfs diff=lfs merge=lfs -text\n"
    "*.arrow filter=lfs diff=lfs merge=lfs -text\n"
)


class HubError(Exception):
    """An error with the HTTP status and ``X-Error-Code`` the Hub clients understand."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra or {}


def now_iso() -> str:
    """UTC time in the Hub's format (``2024-01-01T00:00:00.000Z``)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


# ---------------------------------------------------------------- validation


def validate_repo_type(repo_type: str | None) -> str:
    repo_type = repo_type or "model"
    if repo_type not in REPO_TYPES:
        raise HubError(400, f"Invalid repo type {repo_type!r}; expected one of {REPO_TYPES}")
    return repo_type


def validate_repo_id(repo_id: str) -> str:
    """``namespace/name`` with Hub-like name rules; rejects traversal, NUL, over-long ids."""
    if not isinstance(repo_id, str) or len(repo_id) > 200:
        raise HubError(400, "Invalid repo id: must be a string of at most 200 characters")
    parts = repo_id.split("/")
    if len(parts) != 2:
        raise HubError(400, f"Invalid repo id {repo_id!r}: expected 'namespace/name'")
    for part in parts:
        if not _NAME_RE.match(part) or ".." in part or "--" in part or part.endswith(".git"):
            raise HubError(
                400,
                f"Invalid repo id {repo_id!r}: each part must be 1-96 characters of [A-Za-z0-9._-], "
                "start with a letter or digit, and contain no '..' or '--'",
            )
    if parts[0] in RESERVED_NAMESPACES:
        raise HubError(400, f"Invalid repo id {repo_id!r}: namespace {parts[0]!r} is reserved")
    return repo_id


def validate_path(path: str) -> str:
    """A relative file path inside a repo: no empty/``.``/``..`` parts, NUL, backslash or abs path."""
    if not isinstance(path, str) or not path:
        raise HubError(400, "Invalid path: empty")
    if len(path.encode()) > MAX_PATH_LEN:
        raise HubError(400, f"Invalid path: longer than {MAX_PATH_LEN} bytes")
    if "\x00" in path or "\\" in path or path.startswith("/"):
        raise HubError(400, f"Invalid path {path!r}: NUL, backslash and absolute paths are not allowed")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise HubError(400, f"Invalid path {path!r}: empty, '.' or '..' component")
    if path == ".git" or path.startswith(".git/"):
        raise HubError(400, f"Invalid path {path!r}: '.git' is reserved")
    return path


def validate_revision(revision: str) -> str:
    if not revision or len(revision) > MAX_REVISION_LEN or not _REV_RE.match(revision):
        raise HubError(400, f"Invalid revision {revision[:80]!r}", "RevisionNotFound")
    if ".." in revision or "//" in revision or revision.endswith("/") or revision.endswith(".lock"):
        raise HubError(400, f"Invalid revision {revision[:80]!r}", "RevisionNotFound")
    return revision


def validate_branch_name(name: str) -> str:
    validate_revision(name)
    if name.startswith("refs/") or _SHA1_RE.match(name):
        raise HubError(400, f"Invalid branch or tag name {name!r}")
    return name


def validate_sha256(oid: str) -> str:
    if not isinstance(oid, str) or not _SHA256_RE.match(oid):
        raise HubError(400, f"Invalid LFS oid {str(oid)[:80]!r}: expected 64 lowercase hex characters")
    return oid


# ---------------------------------------------------------------- helpers


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


@dataclass
class FileEntry:
    """One file of a commit: content sha256, git oid (blob sha1, or of the LFS pointer), size."""

    sha256: str
    oid: str
    size: int
    lfs: bool

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "oid": self.oid, "size": self.size, "lfs": self.lfs}

    def lfs_info(self) -> dict | None:
        if not self.lfs:
            return None
        return {
            "oid": self.sha256,
            "size": self.size,
            "pointerSize": len(lfs_pointer(self.sha256, self.size)),
        }


class _Pipeline:
    """Feeds each chunk, in order, to every consumer, each consumer in its own thread."""

    def __init__(self, consumers: list, depth: int = 4):
        self.queues = [queue.Queue(maxsize=depth) for _ in consumers]
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(q, fn), daemon=True)
            for q, fn in zip(self.queues, consumers, strict=True)
        ]

    def _run(self, q: queue.Queue, fn) -> None:
        while (chunk := q.get()) is not None:
            if not self.errors:
                try:
                    fn(chunk)
                except BaseException as e:  # re-raised in the receiving thread
                    self.errors.append(e)

    def put(self, chunk: bytes) -> None:
        if self.errors:
            raise self.errors[0]
        for q in self.queues:
            q.put(chunk)

    def __enter__(self) -> _Pipeline:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for q in self.queues:
            q.put(None)
        for t in self.threads:
            t.join()
        if self.errors and exc[0] is None:
            raise self.errors[0]


# ---------------------------------------------------------------- storage


class Storage:
    """Repositories on disk. All public methods are safe to call from many threads."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        for sub in ("blobs", "repos", "tmp", "site"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._server_lock: BinaryIO | None = None

    # ---- process-level locks: live servers vs. gc
    def hold_server_lock(self) -> bool:
        """Mark this root as served by this process (released by ``release_server_lock``).

        The first server to open a root (nobody else holds the lock) empties ``tmp/`` and
        runs ``recover``; returns whether it did. ``gc`` refuses while any server holds it.
        """
        f = open(self.root / "server.lock", "a+b")  # noqa: SIM115 - held for the server's lifetime
        alone = True
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alone = False
        if alone:
            self.clean_tmp()
            self.recover()
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # downgrade: other servers may share the root
        (self.root / "server.pid").write_text(f"{os.getpid()}\n")
        self._server_lock = f
        return alone

    def release_server_lock(self) -> None:
        if self._server_lock is not None:
            self._server_lock.close()
            self._server_lock = None

    @contextlib.contextmanager
    def _gc_lock(self, exclusive: bool) -> Iterator[None]:
        """Writers share it; gc holds it alone, so no commit can reference a blob gc is deleting."""
        with open(self.root / "gc.lock", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield

    def clean_tmp(self) -> int:
        """Remove partial uploads and trash left in ``tmp/`` by a crash; returns how many entries."""
        n = 0
        for p in (self.root / "tmp").iterdir():
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            n += 1
        return n

    # ---- blobs
    def blob_path(self, sha256: str) -> Path:
        validate_sha256(sha256)
        return self.root / "blobs" / sha256[:2] / sha256

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        p = self.blob_path(sha256)
        return p.is_file() and (size is None or p.stat().st_size == size)

    def touch_blob(self, sha256: str) -> None:
        """Restart gc's grace period: an existing blob is about to be referenced again."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.blob_path(sha256))

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if self.has_blob(sha, len(data)):
            self.touch_blob(sha)
        else:
            self._install(sha, lambda f: f.write(data))
        return sha

    def put_stream(self, read_chunk, size: int, expected_sha256: str) -> None:
        """Stream ``size`` bytes from ``read_chunk(n)`` into a blob, verifying the sha256.

        Raises HubError on a short body (client died) or a hash mismatch; the
        partial temp file is removed and nothing becomes visible.
        """
        validate_sha256(expected_sha256)

        def fill(f: BinaryIO) -> None:
            h = hashlib.sha256()
            # Hashing and writing run in their own threads (both release the GIL) while
            # this one receives: the three stages overlap instead of adding up.
            with _Pipeline([h.update, f.write]) as pipe:
                left = size
                while left > 0:
                    chunk = read_chunk(min(UPLOAD_CHUNK, left))
                    if not chunk:
                        raise HubError(400, f"Upload body ended after {size - left} of {size} bytes")
                    pipe.put(chunk)
                    left -= len(chunk)
            if h.hexdigest() != expected_sha256:
                raise HubError(400, f"sha256 mismatch: got {h.hexdigest()}, expected {expected_sha256}")

        self._install(expected_sha256, fill)

    def _install(self, sha: str, fill) -> None:
        target = self.blob_path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def open_blob(self, sha256: str) -> BinaryIO:
        return open(self.blob_path(sha256), "rb")

    # ---- repos
    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        validate_repo_type(repo_type)
        validate_repo_id(repo_id)
        return self.root / "repos" / f"{repo_type}s" / repo_id

    def repo_exists(self, repo_type: str, repo_id: str) -> bool:
        return (self.repo_dir(repo_type, repo_id) / "repo.json").is_file()

    def repo_meta(self, repo_type: str, repo_id: str) -> dict:
        d = self.repo_dir(repo_type, repo_id)
        try:
            return read_json(d / "repo.json")
        except FileNotFoundError:
            raise HubError(404, f"Repository {repo_type} {repo_id!r} not found", "RepoNotFound") from None

    @contextlib.contextmanager
    def lock(self, repo_type: str, repo_id: str) -> Iterator[None]:
        d = self.repo_dir(repo_type, repo_id)
        d.parent.mkdir(parents=True, exist_ok=True)
        lock_path = d.parent / f".{d.name}.lock"
        with open(lock_path, "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def create_repo(self, repo_type: str, repo_id: str, private: bool, author: str) -> bool:
        """Create a repo with an initial ``.gitattributes`` commit; False if it already exists."""
        d = self.repo_dir(repo_type, repo_id)
        with self._gc_lock(False), self.lock(repo_type, repo_id):
            if (d / "repo.json").is_file():
                return False
            (d / "commits").mkdir(parents=True, exist_ok=True)
            (d / "discussions").mkdir(exist_ok=True)
            data = GITATTRIBUTES.encode()
            files = {".gitattributes": FileEntry(self.put_bytes(data), git_blob_sha1(data), len(data), False)}
            sha = self._write_commit(d, [], files, "initial commit", "", author)
            write_json_atomic(d / "refs.json", {"heads": {"main": sha}, "tags": {}, "pr": {}})
            meta = {
                "id": repo_id,
                "type": repo_type,
                "private": bool(private),
                "createdAt": now_iso(),
                "createdBy": author,
            }
            write_json_atomic(d / "repo.json", meta)  # last: the repo exists once this file does
            return True

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        d = self.repo_dir(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            if not (d / "repo.json").is_file():
                raise HubError(404, f"Repository {repo_type} {repo_id!r} not found", "RepoNotFound")
            # Rename first so readers never see a half-deleted repo.
            trash = self.root / "tmp" / f"deleted-{uuid.uuid4().hex}"
            os.replace(d, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def update_settings(self, repo_type: str, repo_id: str, private: bool | None) -> None:
        d = self.repo_dir(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            meta = self.repo_meta(repo_type, repo_id)
            if private is not None:
                meta["private"] = bool(private)
            write_json_atomic(d / "repo.json", meta)

    def list_repos(self, repo_type: str) -> list[dict]:
        base = self.root / "repos" / f"{repo_type}s"
        out = []
        for meta_path in sorted(base.glob("*/*/repo.json")):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                out.append(read_json(meta_path))
        return out

    def gc(self, grace_s: float = 3600.0) -> tuple[int, int]:
        """Delete blobs no commit of any repo references; returns (files, bytes) removed.

        Blobs younger than ``grace_s`` are kept: they may belong to an upload whose
        commit has not arrived yet.
        """
        with open(self.root / "server.lock", "a+b") as server_lock:
            try:
                fcntl.flock(server_lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = (
                    (self.root / "server.pid").read_text().strip()
                    if (self.root / "server.pid").exists()
                    else "?"
                )
                raise HubError(
                    409,
                    f"a live lmolt-hub server (pid {pid}) holds {self.root}: stop it before running --gc",
                ) from None
            with self._gc_lock(True):
                self.clean_tmp()
                referenced = self._referenced_blobs()
                return self._delete_unreferenced(referenced, time.time() - grace_s)

    def _referenced_blobs(self) -> set[str]:
        referenced: set[str] = set()
        for commit_path in (self.root / "repos").glob("*/*/*/commits/*.json"):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                referenced.update(e["sha256"] for e in read_json(commit_path)["files"].values())
        return referenced

    def _delete_unreferenced(self, referenced: set[str], cutoff: float) -> tuple[int, int]:
        removed = freed = 0
        for blob in (self.root / "blobs").glob("*/*"):
            with contextlib.suppress(FileNotFoundError):
                stat = blob.stat()  # fresh: a re-upload or a dedup touch restarts the grace period
                if blob.name not in referenced and stat.st_mtime < cutoff:
                    blob.unlink()
                    removed, freed = removed + 1, freed + stat.st_size
        return removed, freed

    # ---- refs and commits
    def refs(self, repo_type: str, repo_id: str) -> dict:
        self.repo_meta(repo_type, repo_id)
        return read_json(self.repo_dir(repo_type, repo_id) / "refs.json")

    def commit(self, repo_type: str, repo_id: str, sha: str) -> dict:
        try:
            return read_json(self.repo_dir(repo_type, repo_id) / "commits" / f"{sha}.json")
        except FileNotFoundError:
            raise HubError(404, f"Revision {sha!r} not found", "RevisionNotFound") from None

    def resolve(self, repo_type: str, repo_id: str, revision: str | None) -> str:
        """Commit sha of a branch, tag, ``refs/pr/N``, ``refs/heads/x``, ``refs/tags/x`` or sha."""
        revision = revision or "main"
        validate_revision(revision)
        refs = self.refs(repo_type, repo_id)
        ref = _lookup_ref(refs, revision)
        if ref is not None:
            return ref
        if _SHA1_RE.match(revision):
            if (self.repo_dir(repo_type, repo_id) / "commits" / f"{revision}.json").is_file():
                return revision
        raise HubError(404, f"Revision {revision!r} not found in {repo_id}", "RevisionNotFound")

    def files(self, repo_type: str, repo_id: str, sha: str) -> dict[str, FileEntry]:
        return {p: FileEntry(**e) for p, e in self.commit(repo_type, repo_id, sha)["files"].items()}

    def _write_commit(
        self,
        d: Path,
        parents: list[str],
        files: dict[str, FileEntry],
        title: str,
        message: str,
        author: str,
        merged_pr: int | None = None,
    ) -> str:
        # generation = longest path from the root: sorting by it gives a topological history
        generation = 1 + max(
            (read_json(d / "commits" / f"{p}.json").get("generation", 0) for p in parents), default=0
        )
        body = {
            "parents": parents,
            "generation": generation,
            "title": title,
            "message": message,
            "authors": [author],
            "date": now_iso(),
            "files": {p: e.to_json() for p, e in sorted(files.items())},
        }
        if merged_pr is not None:
            body["mergedPr"] = merged_pr  # lets a crashed merge be recognised (see recover)
        digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode() + uuid.uuid4().bytes).hexdigest()
        body["id"] = digest
        write_json_atomic(d / "commits" / f"{digest}.json", body)
        return digest

    def history(self, repo_type: str, repo_id: str, sha: str) -> list[dict]:
        """Ancestors of ``sha`` (itself first), newest first."""
        seen: dict[str, dict] = {}
        stack = [sha]
        while stack:
            cur = stack.pop()
            if cur in seen:
                continue
            c = self.commit(repo_type, repo_id, cur)
            seen[cur] = c
            stack.extend(c["parents"])
        return sorted(seen.values(), key=lambda c: (c.get("generation", 0), c["date"]), reverse=True)

    def apply_commit(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        header: dict,
        operations: list[tuple[str, str, FileEntry | None]],
        author: str,
        create_pr: bool = False,
    ) -> tuple[str, int | None]:
        """Apply parsed operations atomically; returns (commit sha, PR number or None).

        ``operations`` are (kind, path, entry) with kind in file/lfsFile/deletedFile/deletedFolder;
        blobs must already be stored. A stale ``parentCommit`` in ``header`` gives 412.
        """
        d = self.repo_dir(repo_type, repo_id)
        with self._gc_lock(False), self.lock(repo_type, repo_id):
            refs = self.refs(repo_type, repo_id)
            kind, name = _ref_slot(refs, revision)
            head = refs[kind][name]
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != head:
                raise HubError(
                    412,
                    f"A commit has happened since {parent_commit} on {revision!r} (head is now {head}). "
                    "Please refresh and try again.",
                    "PreconditionFailed",
                )
            files = self.files(repo_type, repo_id, head)
            for op, path, entry in operations:
                if op in ("file", "lfsFile"):
                    assert entry is not None
                    if not self.has_blob(entry.sha256, entry.size):
                        raise HubError(400, f"LFS object {entry.sha256} for {path!r} was not uploaded")
                    files[path] = entry
                elif op == "deletedFile":
                    if path not in files:
                        raise HubError(404, f"File {path!r} not found at {revision!r}", "EntryNotFound")
                    del files[path]
                elif op == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    doomed = [p for p in files if p.startswith(prefix)]
                    if not doomed:
                        raise HubError(404, f"Folder {path!r} not found at {revision!r}", "EntryNotFound")
                    for p in doomed:
                        del files[p]
            _check_no_file_folder_clash(files)
            title = str(header.get("summary") or "Upload files")[:1000]
            message = str(header.get("description") or "")
            sha = self._write_commit(d, [head], files, title, message, author)
            pr_num = None
            if create_pr:
                pr_num = self._next_discussion_num(d, refs)
                refs["pr"][str(pr_num)] = sha
                base = name if kind == "heads" else "main"
                disc = _new_discussion(pr_num, title, message, author, True, repo_type, repo_id)
                disc["changes"] = {"base": f"refs/heads/{base}"}
                disc["baseCommit"] = head
                disc["events"].append(_event("commit", author, {"subject": title, "oid": sha}))
                # Ref first, discussion last: a crash in between leaves an orphan ref (dropped by
                # recover), never a listed PR without a ref.
                write_json_atomic(d / "refs.json", refs)
                write_json_atomic(d / "discussions" / f"{pr_num}.json", disc)
            else:
                refs[kind][name] = sha
                write_json_atomic(d / "refs.json", refs)  # the commit becomes visible here
            if kind == "pr" and not create_pr:
                self._append_event(d, int(name), _event("commit", author, {"subject": title, "oid": sha}))
            return sha, pr_num

    # ---- branches and tags
    def create_ref(self, repo_type: str, repo_id: str, kind: str, name: str, start: str | None) -> str:
        validate_branch_name(name)
        d = self.repo_dir(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            refs = self.refs(repo_type, repo_id)
            if name in refs[kind]:
                what = "Branch" if kind == "heads" else "Tag"
                raise HubError(409, f"{what} {name!r} already exists")
            sha = self.resolve(repo_type, repo_id, start or "main")
            refs[kind][name] = sha
            write_json_atomic(d / "refs.json", refs)
            return sha

    def delete_ref(self, repo_type: str, repo_id: str, kind: str, name: str) -> None:
        d = self.repo_dir(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            refs = self.refs(repo_type, repo_id)
            if name not in refs[kind]:
                raise HubError(404, f"Reference {name!r} not found", "RevisionNotFound")
            if kind == "heads" and name == "main":
                raise HubError(403, "Cannot delete the default branch 'main'")
            del refs[kind][name]
            write_json_atomic(d / "refs.json", refs)

    # ---- discussions and pull requests
    def _next_discussion_num(self, d: Path, refs: dict) -> int:
        nums = [int(p.stem) for p in (d / "discussions").glob("*.json") if p.stem.isdigit()]
        nums += [int(n) for n in refs["pr"] if n.isdigit()]  # an orphan ref's number is not reused
        return max(nums, default=0) + 1

    def discussion(self, repo_type: str, repo_id: str, num: int) -> dict:
        self.repo_meta(repo_type, repo_id)
        try:
            return read_json(self.repo_dir(repo_type, repo_id) / "discussions" / f"{int(num)}.json")
        except FileNotFoundError:
            raise HubError(404, f"Discussion #{num} not found in {repo_id}") from None

    def list_discussions(self, repo_type: str, repo_id: str) -> list[dict]:
        self.repo_meta(repo_type, repo_id)
        d = self.repo_dir(repo_type, repo_id) / "discussions"
        items = [read_json(p) for p in d.glob("*.json")]
        return sorted(items, key=lambda x: x["num"], reverse=True)

    def create_discussion(
        self, repo_type: str, repo_id: str, title: str, description: str, pull_request: bool, author: str
    ) -> dict:
        d = self.repo_dir(repo_type, repo_id)
        title = (title or "").strip()
        if not 3 <= len(title) <= 200:
            raise HubError(400, "Discussion title must be 3-200 characters")
        with self.lock(repo_type, repo_id):
            refs = self.refs(repo_type, repo_id)
            num = self._next_discussion_num(d, refs)
            disc = _new_discussion(num, title, description, author, pull_request, repo_type, repo_id)
            if pull_request:
                disc["status"] = "draft"
                disc["changes"] = {"base": "refs/heads/main"}
                disc["baseCommit"] = refs["heads"]["main"]
                refs["pr"][str(num)] = refs["heads"]["main"]
                write_json_atomic(d / "refs.json", refs)  # ref first (see apply_commit)
                write_json_atomic(d / "discussions" / f"{num}.json", disc)
            else:
                write_json_atomic(d / "discussions" / f"{num}.json", disc)
            return disc

    def _append_event(self, d: Path, num: int, event: dict, **updates: Any) -> dict:
        """Add an event to a discussion; the caller holds the repo lock."""
        path = d / "discussions" / f"{num}.json"
        try:
            disc = read_json(path)
        except FileNotFoundError:
            raise HubError(404, f"Discussion #{num} not found") from None
        disc["events"].append(event)
        disc.update(updates)
        write_json_atomic(path, disc)
        return disc

    def comment(self, repo_type: str, repo_id: str, num: int, text: str, author: str) -> dict:
        if not text or not text.strip():
            raise HubError(400, "Comment must not be empty")
        d = self.repo_dir(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            self.discussion(repo_type, repo_id, num)
            event = _comment_event(author, text)
            self._append_event(d, num, event)
            return event

    def change_status(
        self, repo_type: str, repo_id: str, num: int, status: str, comment: str | None, author: str
    ) -> dict:
        if status not in ("open", "closed"):
            raise HubError(400, "status must be 'open' or 'closed'")
        d = self.repo_dir(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            disc = self.discussion(repo_type, repo_id, num)
            if disc["status"] == "merged":
                raise HubError(400, f"Pull request #{num} is already merged")
            event = _event("status-change", author, {"status": status})
            if comment:
                self._append_event(d, num, _comment_event(author, comment))
            self._append_event(d, num, event, status=status)
            return event

    def rename(self, repo_type: str, repo_id: str, num: int, title: str, author: str) -> dict:
        d = self.repo_dir(repo_type, repo_id)
        with self.lock(repo_type, repo_id):
            disc = self.discussion(repo_type, repo_id, num)
            event = _event("title-change", author, {"from": disc["title"], "to": title})
            self._append_event(d, num, event, title=title)
            return event

    def merge_pr(
        self,
        repo_type: str,
        repo_id: str,
        num: int,
        comment: str | None,
        author: str,
        expected_head: str | None = None,
    ) -> str:
        """Merge PR ``num`` into its base branch (fast-forward or a conflict-checked 3-way merge).

        ``expected_head``: refuse (409) unless the PR's head is still this commit (merge only
        what was reviewed). Order: merge commit, branch ref, then the discussion's "merged"
        record; a crash before the last step is recognised by the merge commit's ``mergedPr``.
        """
        d = self.repo_dir(repo_type, repo_id)
        with self._gc_lock(False), self.lock(repo_type, repo_id):
            disc = self.discussion(repo_type, repo_id, num)
            if not disc["isPullRequest"]:
                raise HubError(400, f"#{num} is a discussion, not a pull request")
            if disc["status"] not in ("open", "draft"):
                raise HubError(400, f"Pull request #{num} is {disc['status']}; only open PRs can be merged")
            refs = self.refs(repo_type, repo_id)
            base_branch = disc["changes"]["base"].removeprefix("refs/heads/")
            if base_branch not in refs["heads"]:
                raise HubError(404, f"Base branch {base_branch!r} no longer exists", "RevisionNotFound")
            if str(num) not in refs["pr"]:
                raise HubError(409, f"Pull request #{num} has no head ref; it cannot be merged")
            pr_head = refs["pr"][str(num)]
            if expected_head is not None and expected_head != pr_head:
                raise HubError(
                    409,
                    f"Pull request #{num} head moved to {pr_head} (expected {expected_head}); "
                    "review the new head before merging",
                )
            base_head = refs["heads"][base_branch]
            done = self._find_merge(d, disc, base_head)
            if done is not None:  # merged before a crash: record it, never merge twice
                self._record_merged(d, disc, done, author)
                raise HubError(400, f"Pull request #{num} is already merged (commit {done})")
            fork = disc.get("baseCommit", base_head)
            title = f"Merge pull request #{num}: {disc['title']}"
            if base_head == fork:
                files = self.files(repo_type, repo_id, pr_head)
            else:
                files = self._three_way(repo_type, repo_id, fork, base_head, pr_head, num)
            sha = self._write_commit(d, [base_head, pr_head], files, title, comment or "", author, num)
            refs["heads"][base_branch] = sha
            write_json_atomic(d / "refs.json", refs)
            if comment:
                self._append_event(d, num, _comment_event(author, comment))
            self._record_merged(d, disc, sha, author)
            return sha

    def _record_merged(self, d: Path, disc: dict, sha: str, author: str) -> None:
        changes = {**disc["changes"], "mergeCommitId": sha}
        self._append_event(
            d,
            disc["num"],
            _event("status-change", author, {"status": "merged"}),
            status="merged",
            changes=changes,
        )

    def _find_merge(self, d: Path, disc: dict, base_head: str) -> str | None:
        """The merge commit of this PR on the base branch's first-parent line, if there is one."""
        stop = 0
        with contextlib.suppress(FileNotFoundError, KeyError):
            stop = read_json(d / "commits" / f"{disc['baseCommit']}.json").get("generation", 0)
        cur: str | None = base_head
        while cur:
            c = read_json(d / "commits" / f"{cur}.json")
            if c.get("mergedPr") == disc["num"]:
                return cur
            if c.get("generation", 0) <= stop:
                return None
            cur = c["parents"][0] if c["parents"] else None
        return None

    # ---- crash recovery (run with no other server on the root)
    def recover(self) -> list[str]:
        """Repair half-states a crash can leave; returns one line per repair.

        - a PR ref without a discussion file (crash while opening a PR): the ref is dropped;
        - a PR discussion without a ref (older versions wrote the discussion first): the ref is
          restored to its last pushed commit (or its base);
        - a merge that moved the branch but was not recorded: the PR is marked merged.
        """
        fixes: list[str] = []
        for meta_path in sorted((self.root / "repos").glob("*/*/*/repo.json")):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError, HubError):
                meta = read_json(meta_path)
                fixes += self._recover_repo(meta["type"], meta["id"])
        return fixes

    def _recover_repo(self, repo_type: str, repo_id: str) -> list[str]:
        d = self.repo_dir(repo_type, repo_id)
        fixes = []
        with self.lock(repo_type, repo_id):
            refs = self.refs(repo_type, repo_id)
            discs = {
                int(p.stem): read_json(p) for p in (d / "discussions").glob("*.json") if p.stem.isdigit()
            }
            prs = {n: x for n, x in discs.items() if x.get("isPullRequest")}
            changed = False
            for n in [n for n in refs["pr"] if not n.isdigit() or int(n) not in prs]:
                del refs["pr"][n]
                changed = True
                fixes.append(f"{repo_id}: dropped orphan ref refs/pr/{n}")
            for n, disc in prs.items():
                if str(n) not in refs["pr"]:
                    pushed = [e["data"]["oid"] for e in disc["events"] if e.get("type") == "commit"]
                    refs["pr"][str(n)] = (pushed or [disc.get("baseCommit") or refs["heads"]["main"]])[-1]
                    changed = True
                    fixes.append(f"{repo_id}: restored ref refs/pr/{n}")
            if changed:
                write_json_atomic(d / "refs.json", refs)
            for n, disc in prs.items():
                branch = disc.get("changes", {}).get("base", "refs/heads/main").removeprefix("refs/heads/")
                if disc["status"] in ("open", "draft") and branch in refs["heads"]:
                    done = self._find_merge(d, disc, refs["heads"][branch])
                    if done is not None:
                        self._record_merged(d, disc, done, "lmolt-hub")
                        fixes.append(f"{repo_id}: PR #{n} recorded as merged ({done})")
        return fixes

    def _three_way(self, repo_type: str, repo_id: str, fork: str, ours: str, theirs: str, num: int) -> dict:
        base_f = self.files(repo_type, repo_id, fork)
        ours_f = self.files(repo_type, repo_id, ours)
        theirs_f = self.files(repo_type, repo_id, theirs)
        merged = dict(ours_f)
        conflicts = []
        for path in set(base_f) | set(theirs_f):
            b, t, o = base_f.get(path), theirs_f.get(path), ours_f.get(path)
            if b == t:
                continue  # unchanged in the PR
            if o == b or o == t:
                if t is None:
                    merged.pop(path, None)
                else:
                    merged[path] = t
            else:
                conflicts.append(path)
        if conflicts:
            raise HubError(
                409, f"Pull request #{num} conflicts with its base on: {', '.join(sorted(conflicts))}"
            )
        return merged


# ---------------------------------------------------------------- module helpers


def _lookup_ref(refs: dict, revision: str) -> str | None:
    if revision in refs["heads"]:
        return refs["heads"][revision]
    if revision in refs["tags"]:
        return refs["tags"][revision]
    for prefix, kind in (("refs/heads/", "heads"), ("refs/tags/", "tags"), ("refs/pr/", "pr")):
        if revision.startswith(prefix):
            return refs[kind].get(revision[len(prefix) :])
    return None


def _ref_slot(refs: dict, revision: str) -> tuple[str, str]:
    """(kind, name) of the ref a commit to ``revision`` moves; only branches and PRs accept commits."""
    if revision in refs["heads"]:
        return "heads", revision
    if revision.startswith("refs/heads/") and revision[11:] in refs["heads"]:
        return "heads", revision[11:]
    if revision.startswith("refs/pr/") and revision[8:] in refs["pr"]:
        return "pr", revision[8:]
    raise HubError(
        404, f"Revision {revision!r} is not a branch or pull request of this repo", "RevisionNotFound"
    )


def _new_discussion(
    num: int, title: str, description: str, author: str, pr: bool, repo_type: str, repo_id: str
) -> dict:
    return {
        "num": num,
        "title": title,
        "status": "open",
        "isPullRequest": pr,
        "author": {"name": author},
        "createdAt": now_iso(),
        "repo": {"name": repo_id, "type": repo_type},
        "events": [_comment_event(author, description or "")],
        "filesWithConflicts": [],
    }


def _event(kind: str, author: str, data: dict) -> dict:
    return {
        "id": uuid.uuid4().hex[:24],
        "type": kind,
        "createdAt": now_iso(),
        "author": {"name": author},
        "data": data,
    }


def _comment_event(author: str, text: str) -> dict:
    latest = {"raw": text, "html": _html_escape(text), "updatedAt": now_iso(), "author": {"name": author}}
    return _event(
        "comment",
        author,
        {"edited": False, "hidden": False, "numEdits": 0, "latest": latest, "history": [latest]},
    )


def _html_escape(text: str) -> str:
    import html

    return f"<p>{html.escape(text)}</p>"


def card_data(storage: Storage, repo_type: str, repo_id: str, files: dict[str, FileEntry]) -> dict | None:
    """YAML front matter of README.md as JSON-safe data, or None (a bad card never breaks listing)."""
    text = readme_text(storage, files)
    try:
        return load_front_matter(text) or None
    except CardError:
        return None


def readme_text(storage: Storage, files: dict[str, FileEntry]) -> str:
    entry = files.get("README.md")
    if entry is None or entry.size > 1 << 20:
        return ""
    with storage.open_blob(entry.sha256) as f:
        return f.read().decode("utf-8", errors="replace")


def _check_no_file_folder_clash(files: dict[str, FileEntry]) -> None:
    """A path cannot be both a file and a folder (``a`` and ``a/b``): git and snapshots break."""
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise HubError(
                    409,
                    f"{'/'.join(parts[:i])!r} is a file, so {path!r} cannot be created under it; "
                    "delete one of them in the same commit",
                )


def regular_entry(storage: Storage, content_b64: str) -> FileEntry:
    if not isinstance(content_b64, str):
        raise HubError(400, "A regular file's 'content' must be a base64 string")
    try:
        data = base64.b64decode(content_b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise HubError(400, f"A regular file's 'content' is not valid base64: {e}") from None
    return FileEntry(storage.put_bytes(data), git_blob_sha1(data), len(data), False)


def lfs_entry(sha256: str, size: int) -> FileEntry:
    validate_sha256(sha256)
    return FileEntry(sha256, git_blob_sha1(lfs_pointer(sha256, size)), int(size), True)
