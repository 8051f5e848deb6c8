"""On-disk storage of the local Hub: content-addressed blobs, repos, commits and refs.

Layout under ``root``::

    blobs/<sha256[:2]>/<sha256>              file contents (shared by all repos)
    repos/<type>s/<ns>/<name>/repo.json      id, type, private, createdAt
    repos/<type>s/<ns>/<name>/refs.json      {"heads": {...}, "tags": {...}, "pr": {...}}
    repos/<type>s/<ns>/<name>/commits/<sha>.json   parents, message, full file table
    repos/<type>s/<ns>/<name>/discussions/<n>.json  (written by ``discussions``)
    repos/<type>s/<ns>/<name>/likes.json     user -> when they liked it
    repos/<type>s/<ns>/<name>/uploads/<sha256>  an LFS object uploaded (and verified) for this repo
    tmp/                                     partial uploads (never visible; emptied on start)
    server.lock                              held (shared) by every live server; ``gc`` needs it alone
    gc.lock                                  writers hold it shared, ``gc`` exclusively

Why it loses nothing: blobs are written to ``tmp/`` and renamed into place only
after their sha256 is verified; a commit object is written before the ref that
points at it, and every JSON file is replaced atomically (``write_json_atomic``, through
``lmolt_hub.io``: temp file + fsync + ``os.replace``; ``discussions`` and ``repo_ops`` write
through it too).
A crash at any point leaves the previous revision readable. Writers to one repository serialise on an ``flock`` of its
``.lock`` file (which also serialises threads: each operation opens its own file description).

Pull requests, discussions and merges, and the repair of their crash windows (``recover``),
live in ``discussions``, on top of this module; moves, squashes, likes and the LFS listing in
``repo_ops``. The blob methods come from ``blobs.BlobStore``; file-table values from ``entries``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from lmolt_hub import io as atomic_io
from lmolt_hub.localhub.blobs import BlobStore
from lmolt_hub.localhub.entries import FileEntry, check_no_file_folder_clash, initial_files, stored_entry
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.names import (
    SHA1_RE,
    SHORT_SHA_RE,
    validate_branch_name,
    validate_repo_id,
    validate_repo_type,
    validate_revision,
    validate_sha256,
)


def now_iso() -> str:
    """UTC time in the Hub's format (``2024-01-01T00:00:00.000Z``)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


# ---------------------------------------------------------------- helpers


def write_json_atomic(path: Path, obj: Any) -> None:
    """Every JSON file of the store is written here (crash tests inject their faults here)."""
    atomic_io.write_json(path, obj, newline=False, indent=1, sort_keys=True)


def read_json(path: Path) -> Any:
    with open(path) as f:
        return json.load(f)


@dataclass(frozen=True)
class Staged:
    """A commit object written on top of ref ``kind/name`` (at ``head``) that no ref points at yet;
    ``sha == head`` when the operations changed nothing (no commit was written)."""

    kind: str
    name: str
    head: str
    sha: str
    title: str
    message: str


# ---------------------------------------------------------------- storage


class Storage(BlobStore):
    """Repositories on disk. All public methods are safe to call from many threads."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        for sub in ("blobs", "repos", "tmp", "site"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._server_lock: BinaryIO | None = None

    # ---- process-level locks: live servers vs. gc
    def hold_server_lock(self, recover: Callable[[], object] | None = None) -> bool:
        """Mark this root as served by this process (released by ``release_server_lock``).

        The first server to open a root (nobody else holds the lock) empties ``tmp/`` and
        runs ``recover`` (``Discussions.recover``) while still alone; returns whether it did.
        ``gc`` refuses while any server holds the lock.
        """
        f = open(self.root / "server.lock", "a+b")  # noqa: SIM115 - held for the server's lifetime
        alone = True
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alone = False
        if alone:
            self.clean_tmp()
            self.clean_leftovers()
            if recover is not None:
                recover()
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

    @contextlib.contextmanager
    def committing(self, repo_type: str, repo_id: str) -> Iterator[Path]:
        """Hold what writing a commit needs (gc's shared lock, the repo's lock); yields the repo dir."""
        with self._gc_lock(False), self.lock(repo_type, repo_id):
            yield self.repo_dir(repo_type, repo_id)

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

    def clean_leftovers(self) -> int:
        """Remove ``.tmp-*`` files that a crash left beside the JSON files of repos (an atomic write
        that never reached its rename); returns how many. Run while no server writes (on start, gc)."""
        n = 0
        for p in (self.root / "repos").glob("*/*/*/**/.tmp-*"):
            if p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                n += 1
        return n

    # ---- repos
    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        validate_repo_type(repo_type)
        validate_repo_id(repo_id)
        return self.root / "repos" / f"{repo_type}s" / repo_id

    def canonical_id(self, repo_type: str, repo_id: str) -> str:
        """The stored id whose case-insensitive spelling is ``repo_id`` (ids are case-insensitive on
        the Hub, which answers with the canonical case); ``repo_id`` itself when none is stored."""
        if (self.repo_dir(repo_type, repo_id) / "repo.json").is_file():
            return repo_id
        ns, name = repo_id.lower().split("/")
        base = self.root / "repos" / f"{repo_type}s"
        with contextlib.suppress(FileNotFoundError):
            for ns_dir in base.iterdir():
                if ns_dir.name.lower() != ns or not ns_dir.is_dir():
                    continue
                for d in ns_dir.iterdir():
                    if d.name.lower() == name and (d / "repo.json").is_file():
                        return f"{ns_dir.name}/{d.name}"
        return repo_id

    def canonical_namespace(self, repo_type: str, namespace: str) -> str:
        """An existing namespace folder spelled like ``namespace`` but for case, else ``namespace``."""
        base = self.root / "repos" / f"{repo_type}s"
        with contextlib.suppress(FileNotFoundError):
            for ns_dir in base.iterdir():
                if ns_dir.name.lower() == namespace.lower() and any(ns_dir.glob("*/repo.json")):
                    return ns_dir.name
        return namespace

    def repo_exists(self, repo_type: str, repo_id: str) -> bool:
        return (self.repo_dir(repo_type, repo_id) / "repo.json").is_file()

    def repo_meta(self, repo_type: str, repo_id: str) -> dict:
        d = self.repo_dir(repo_type, repo_id)
        try:
            meta = read_json(d / "repo.json")
        except FileNotFoundError:
            raise HubError(404, f"Repository {repo_type} {repo_id!r} not found", "RepoNotFound") from None
        meta["id"] = repo_id  # where it lives is what it is called (also right after a crashed move)
        return meta

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

    def create_repo(
        self, repo_type: str, repo_id: str, private: bool, author: str, sdk: str | None = None
    ) -> bool:
        """Create a repo with the Hub's initial commit (``.gitattributes``; a Space also gets its
        README and, for ``static``, a page); False if it already exists."""
        with self.committing(repo_type, repo_id) as d:
            if (d / "repo.json").is_file():
                return False
            (d / "commits").mkdir(parents=True, exist_ok=True)
            initial = initial_files(repo_type, repo_id, sdk)
            files = {path: stored_entry(self, data) for path, data in initial.items()}
            sha = self.write_commit(d, [], files, "initial commit", "", author)
            self.save_refs(d, {"heads": {"main": sha}, "tags": {}, "pr": {}})
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
                self.clean_leftovers()
                cutoff = time.time() - grace_s
                for marker in (self.root / "repos").glob("*/*/*/uploads/*"):
                    with contextlib.suppress(FileNotFoundError):
                        if marker.stat().st_mtime < cutoff:  # an upload whose commit never came
                            marker.unlink()
                referenced = self._referenced_blobs()
                return self._delete_unreferenced(referenced, time.time() - grace_s)

    def _referenced_blobs(self) -> set[str]:
        referenced: set[str] = set()
        for commit_path in (self.root / "repos").glob("*/*/*/commits/*.json"):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                referenced.update(e["sha256"] for e in read_json(commit_path)["files"].values())
        return referenced

    # ---- which LFS objects a repo may reference
    def mark_upload(self, repo_type: str, repo_id: str, sha256: str) -> None:
        """Record that ``sha256`` was uploaded (and verified) for this repo: its commits may use it."""
        d = self.repo_dir(repo_type, repo_id) / "uploads"
        with contextlib.suppress(FileNotFoundError):  # the repo was deleted meanwhile: nothing to record
            d.mkdir(exist_ok=True)
            p = d / validate_sha256(sha256)
            p.touch()
            os.utime(p)

    def repo_blobs(self, repo_type: str, repo_id: str) -> set[str]:
        """sha256 of every file in any commit of the repo, plus the objects uploaded for it."""
        d = self.repo_dir(repo_type, repo_id)
        found = {p.name for p in (d / "uploads").glob("*")}
        for commit_path in (d / "commits").glob("*.json"):
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                found.update(e["sha256"] for e in read_json(commit_path)["files"].values())
        return found

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
        ref = lookup_ref(refs, revision)
        if ref is not None:
            return ref
        if SHA1_RE.fullmatch(revision):
            if (self.repo_dir(repo_type, repo_id) / "commits" / f"{revision}.json").is_file():
                return revision
        elif SHORT_SHA_RE.fullmatch(revision):  # an abbreviated sha, if it names one commit
            found = list((self.repo_dir(repo_type, repo_id) / "commits").glob(f"{revision}*.json"))
            if len(found) == 1:
                return found[0].stem
        raise HubError(404, f"Revision {revision!r} not found in {repo_id}", "RevisionNotFound")

    def files(self, repo_type: str, repo_id: str, sha: str) -> dict[str, FileEntry]:
        return {p: FileEntry(**e) for p, e in self.commit(repo_type, repo_id, sha)["files"].items()}

    def save_refs(self, d: Path, refs: dict) -> None:
        """Replace the repo's refs (the caller holds its lock): what a commit makes visible."""
        write_json_atomic(d / "refs.json", refs)

    def write_commit(
        self,
        d: Path,
        parents: list[str],
        files: dict[str, FileEntry],
        title: str,
        message: str,
        author: str,
        merged_pr: int | None = None,
    ) -> str:
        """Write a commit object (invisible until a ref points at it); returns its sha."""
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
    ) -> str:
        """Commit parsed operations to a branch atomically; returns the commit sha.

        Commits to pull requests (``create_pr``, ``refs/pr/N``) go through ``Discussions.commit``.
        """
        with self.committing(repo_type, repo_id) as d:
            refs = self.refs(repo_type, repo_id)
            staged = self.stage_commit(repo_type, repo_id, refs, revision, header, operations, author, False)
            refs["heads"][staged.name] = staged.sha
            self.save_refs(d, refs)  # the commit becomes visible here
            return staged.sha

    def stage_commit(
        self,
        repo_type: str,
        repo_id: str,
        refs: dict,
        revision: str,
        header: dict,
        operations: list[tuple[str, str, FileEntry | None]],
        author: str,
        prs: bool = True,
    ) -> Staged:
        """Write the commit object for ``operations`` on top of ``revision``; moves no ref.

        The caller holds ``committing``. ``operations`` are (kind, path, entry) with kind in
        file/lfsFile/deletedFile/deletedFolder; blobs must already be stored. A stale
        ``parentCommit`` in ``header`` gives 412. ``prs``: whether ``refs/pr/N`` may be the target.
        """
        d = self.repo_dir(repo_type, repo_id)
        kind, name = ref_slot(refs, revision, prs)
        head = refs[kind][name]
        parent_commit = header.get("parentCommit")
        if parent_commit and parent_commit != head:
            raise HubError(
                412,
                "A commit has happened since. Please refresh and try again. "  # the Hub's words
                f"({revision!r} moved from {parent_commit} to {head})",
                "PreconditionFailed",
            )
        files = self.files(repo_type, repo_id, head)
        known = _LazyBlobs(self, repo_type, repo_id, files)
        for op, path, entry in operations:
            if op in ("file", "lfsFile"):
                assert entry is not None
                # An LFS pointer must name an object uploaded for this repo or already in it: a
                # sha256 learnt elsewhere never unlocks another repo's (private) file.
                usable = op == "file" or entry.sha256 in known
                if not usable or not self.has_blob(entry.sha256, entry.size):
                    raise HubError(400, f"LFS object {entry.sha256} for {path!r} was not uploaded")
                files[path] = entry
            elif op == "deletedFile" and path in files:
                del files[path]
            elif op in ("deletedFile", "deletedFolder"):  # a folder, with or without its trailing '/'
                prefix = path.rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(prefix)]
                if not doomed:
                    what = "File" if op == "deletedFile" else "Folder"
                    raise HubError(404, f"{what} {path!r} not found at {revision!r}", "EntryNotFound")
                for p in doomed:
                    del files[p]
        check_no_file_folder_clash(files)
        title = str(header.get("summary") or "Upload files")[:1000]
        message = str(header.get("description") or "")
        if files == self.files(repo_type, repo_id, head):
            return Staged(kind, name, head, head, title, message)  # nothing changed: no empty commit
        sha = self.write_commit(d, [head], files, title, message, author)
        return Staged(kind, name, head, sha, title, message)

    # ---- deleting LFS objects (blobs too: gc's lock alone)
    def delete_lfs_files(self, repo_type: str, repo_id: str, shas: set[str]) -> int:
        """Drop the files with these LFS objects from every commit of the repo (history rewritten in
        place: commit ids stay), and delete each object no other repo references. Returns how many
        objects were deleted from disk."""
        with self._gc_lock(True), self.lock(repo_type, repo_id):
            d = self.repo_dir(repo_type, repo_id)
            for p in (d / "commits").glob("*.json"):
                c = read_json(p)
                kept = {k: e for k, e in c["files"].items() if not (e["lfs"] and e["sha256"] in shas)}
                if len(kept) != len(c["files"]):
                    c["files"] = kept
                    write_json_atomic(p, c)
            for sha in shas:
                (d / "uploads" / sha).unlink(missing_ok=True)
            doomed = shas - self._referenced_blobs()
            for sha in doomed:
                self.blob_path(sha).unlink(missing_ok=True)
            return len(doomed)

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
            self.save_refs(d, refs)
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
            self.save_refs(d, refs)

    def readme_text(self, files: dict[str, FileEntry]) -> str:
        """README.md of a file table (empty when missing or over 1 MiB): the card, for listings."""
        entry = files.get("README.md")
        if entry is None or entry.size > 1 << 20:
            return ""
        with self.open_blob(entry.sha256) as f:
            return f.read().decode("utf-8", errors="replace")


# ---------------------------------------------------------------- module helpers


class _LazyBlobs:
    """``sha in known``: in ``files`` (cheap), else in any commit or upload of the repo (one scan)."""

    def __init__(self, store: Storage, repo_type: str, repo_id: str, files: dict[str, FileEntry]):
        self.store, self.repo_type, self.repo_id = store, repo_type, repo_id
        self.first = {e.sha256 for e in files.values()}
        self.rest: set[str] | None = None

    def __contains__(self, sha256: object) -> bool:
        if sha256 in self.first:
            return True
        if self.rest is None:
            self.rest = self.store.repo_blobs(self.repo_type, self.repo_id)
        return sha256 in self.rest


def lookup_ref(refs: dict, revision: str) -> str | None:
    if revision in refs["heads"]:
        return refs["heads"][revision]
    if revision in refs["tags"]:
        return refs["tags"][revision]
    for prefix, kind in (("refs/heads/", "heads"), ("refs/tags/", "tags"), ("refs/pr/", "pr")):
        if revision.startswith(prefix):
            return refs[kind].get(revision[len(prefix) :])
    return None


def ref_slot(refs: dict, revision: str, prs: bool = True) -> tuple[str, str]:
    """(kind, name) of the ref a commit to ``revision`` moves; only branches and PRs accept commits."""
    if revision in refs["heads"]:
        return "heads", revision
    if revision.startswith("refs/heads/") and revision[11:] in refs["heads"]:
        return "heads", revision[11:]
    if prs and revision.startswith("refs/pr/") and revision[8:] in refs["pr"]:
        return "pr", revision[8:]
    what = "a branch or pull request" if prs else "a branch"
    raise HubError(404, f"Revision {revision!r} is not {what} of this repo", "RevisionNotFound")
