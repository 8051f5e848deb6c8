"""File endpoints: trees, paths-info, downloads (``resolve``), uploads (preupload, LFS batch and
PUT), and commits (NDJSON: header, files, LFS files, deletions)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import mimetypes
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from lmolt_hub.localhub import repo_ops
from lmolt_hub.localhub.auth import Auth, User
from lmolt_hub.localhub.entries import FileEntry, lfs_entry, regular_entry
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.gitignore import GitIgnore
from lmolt_hub.localhub.handler import IO_TIMEOUT, LARGE_COMMIT, HubHandler, release_free_memory
from lmolt_hub.localhub.names import is_commit_sha, validate_path, validate_revision, validate_sha256
from lmolt_hub.localhub.router import Route
from lmolt_hub.localhub.wire import CHUNK, attachment, dict_list, int_field, ndjson_item, parse_range

TREE_PAGE = 1000
MAX_GITIGNORE = 1 << 20  # bytes of a .gitignore read for pre-upload
TREE_PAGE_EXPAND = 50
LFS_THRESHOLD = 10 << 20
# Extensions the Hub stores in LFS even when the sample looks like text.
LFS_EXTENSIONS = {
    ".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack",
    ".npy", ".npz", ".pkl", ".pickle", ".gz", ".zip", ".tar", ".zst", ".xz", ".bz2", ".model", ".gguf",
    ".png", ".jpg", ".jpeg", ".gif", ".pdf", ".wav", ".mp3", ".tflite", ".ot", ".joblib",
}  # fmt: skip


# ------------------------------------------------------------ trees
def _entry_json(path: str, e: FileEntry) -> dict:
    d: dict[str, Any] = {"type": "file", "oid": e.oid, "size": e.size, "path": path}
    if e.lfs:
        d["lfs"] = e.lfs_info()
    return d


def _dir_json(files: dict[str, FileEntry], folder: str) -> dict:
    return {"type": "directory", "oid": _tree_oid(files, folder), "size": 0, "path": folder}


def _tree_oid(files: dict[str, FileEntry], folder: str) -> str:
    prefix = folder + "/"
    h = hashlib.sha1()
    for p in sorted(files):
        if p.startswith(prefix):
            h.update(f"{p}\0{files[p].oid}\n".encode())
    return h.hexdigest()


def _last_commits(
    req: HubHandler, repo_type: str, repo_id: str, sha: str, paths: list[str]
) -> dict[str, dict]:
    """Newest commit (first-parent walk) that changed each path, for ``expand=true``."""

    def under(files: dict, p: str) -> Any:
        return files.get(p) or {k: v for k, v in files.items() if k.startswith(p + "/")}

    wanted, out = set(paths), {}
    cur = req.store.commit(repo_type, repo_id, sha)
    while wanted:
        parent = req.store.commit(repo_type, repo_id, cur["parents"][0]) if cur["parents"] else None
        info = {"id": cur["id"], "title": cur["title"], "date": cur["date"]}
        for p in list(wanted):
            if parent is None or under(cur["files"], p) != under(parent["files"], p):
                out[p] = info
                wanted.discard(p)
        if parent is None:
            break
        cur = parent
    return out


def tree(req: HubHandler, repo_type: str, repo_id: str, revision: str, path: str) -> None:
    path = path.strip("/")
    if path:
        validate_path(path)
    req.check_read(repo_type, repo_id)
    sha = req.store.resolve(repo_type, repo_id, revision)
    files = req.store.files(repo_type, repo_id, sha)
    recursive, expand = req.flag("recursive"), req.flag("expand")
    prefix = f"{path}/" if path else ""
    if path and path in files:  # the Hub's answer for the tree of a file
        raise HubError(404, f"{path!r} is a file, not a folder, at {revision!r}", "EntryNotFound")
    entries: dict[str, dict] = {}
    for p, e in files.items():
        if not p.startswith(prefix):
            continue
        rel = p[len(prefix) :].split("/")
        if recursive:
            for i in range(1, len(rel)):
                d = prefix + "/".join(rel[:i])
                entries.setdefault(d, _dir_json(files, d))
            entries[p] = _entry_json(p, e)
        elif len(rel) == 1:
            entries[p] = _entry_json(p, e)
        else:
            d = prefix + rel[0]
            entries.setdefault(d, _dir_json(files, d))
    if path and not entries:
        raise HubError(404, f"Folder {path!r} not found at {revision!r}", "EntryNotFound")
    items = [entries[k] for k in sorted(entries)]
    page = TREE_PAGE_EXPAND if expand else TREE_PAGE
    start = int(req.query.get("cursor", ["0"])[-1] or 0)
    chunk = items[start : start + page]
    if expand and chunk:
        last = _last_commits(req, repo_type, repo_id, sha, [i["path"] for i in chunk])
        for i in chunk:
            i["lastCommit"] = last.get(i["path"])
    headers = {}
    if start + page < len(items):
        q = {k: v[-1] for k, v in req.query.items()}
        q["cursor"] = str(start + page)
        raw_path = req.path.partition("?")[0]
        headers["Link"] = f'<{req.base_url()}{raw_path}?{urlencode(q)}>; rel="next"'
    req.json(chunk, headers=headers)


def paths_info(req: HubHandler, repo_type: str, repo_id: str, revision: str) -> None:
    form = req.read_form_or_json()
    req.check_read(repo_type, repo_id)
    sha = req.store.resolve(repo_type, repo_id, revision)
    files = req.store.files(repo_type, repo_id, sha)
    expand = (form.get("expand") or ["false"])[-1].lower() in ("1", "true")
    out = []
    for p in form.get("paths", []):
        p = p.strip("/")
        if p in files:
            out.append(_entry_json(p, files[p]))
        elif any(f.startswith(p + "/") for f in files):
            out.append(_dir_json(files, p))
    if expand and out:
        last = _last_commits(req, repo_type, repo_id, sha, [i["path"] for i in out])
        for i in out:
            i["lastCommit"] = last.get(i["path"])
    req.json(out)


# ------------------------------------------------------------ downloads
def resolve(req: HubHandler, repo_type: str, repo_id: str, revision: str, path: str) -> None:
    validate_path(path)
    req.check_read(repo_type, repo_id)
    sha = req.store.resolve(repo_type, repo_id, revision)
    entry = req.store.files(repo_type, repo_id, sha).get(path)
    if entry is None:
        raise HubError(404, f"Entry {path!r} not found in {repo_id} at {revision!r}", "EntryNotFound")
    immutable = is_commit_sha(revision)
    headers = {
        "X-Repo-Commit": sha,
        "Accept-Ranges": "bytes",
        "Cache-Control": "public, max-age=31536000, immutable" if immutable else "private, max-age=0",
        "Access-Control-Expose-Headers": "X-Repo-Commit,X-Linked-Etag,X-Linked-Size,ETag,Content-Range",
        # Uploaded files are never rendered on the zoo's origin (no stored XSS via .html/.svg).
        "Content-Disposition": attachment(path),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if entry.lfs:
        headers["ETag"] = f'"{entry.sha256}"'
        headers["X-Linked-Etag"] = f'"{entry.sha256}"'
        headers["X-Linked-Size"] = str(entry.size)
    else:
        headers["ETag"] = f'"{entry.oid}"'
    start, end = 0, entry.size - 1
    status = 200
    rng = req.headers.get("Range")
    if rng:
        parsed = parse_range(rng, entry.size)
        if parsed is None:
            raise HubError(416, f"Range {rng!r} not satisfiable for a file of {entry.size} bytes")
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
    ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    with req.store.open_blob(entry.sha256) as f:
        req.send_file(f, start, max(0, end - start + 1), status, ctype, headers)


# ------------------------------------------------------------ uploads
def preupload(req: HubHandler, repo_type: str, repo_id: str, revision: str) -> None:
    """Upload mode per file, whether the repo's ``.gitignore`` ignores it, and the oid the file
    has now at ``revision`` (the client skips unchanged files: no re-upload, no empty commit)."""
    req.writer()
    body = req.read_json()
    req.check_read(repo_type, repo_id)
    try:
        files = req.store.files(repo_type, repo_id, req.store.resolve(repo_type, repo_id, revision))
    except HubError:
        if "create_pr" not in req.query:
            raise
        files = {}  # a PR against a revision that does not exist yet
    ignore = _gitignore(req, body, files)
    out = []
    for f in dict_list(body, "files"):
        path = validate_path(f.get("path", ""))
        try:
            sample = base64.b64decode(f.get("sample") or "")
        except (binascii.Error, ValueError):
            sample = b""
        size = int(f.get("size") or 0)
        binary = b"\x00" in sample or os.path.splitext(path)[1].lower() in LFS_EXTENSIONS
        mode = "lfs" if size > 0 and (binary or size >= LFS_THRESHOLD) else "regular"
        out.append(
            {
                "path": path,
                "uploadMode": mode,
                "shouldIgnore": ignore.ignored(path),
                "oid": _remote_oid(files.get(path), mode),
            }
        )
    req.json({"files": out, "commitOid": None})


def _remote_oid(entry: FileEntry | None, mode: str) -> str | None:
    """What the client compares with its own oid: sha256 for LFS uploads, the git blob sha1 else."""
    if entry is None:
        return None
    if mode == "lfs":
        return entry.sha256
    return None if entry.lfs else entry.oid


def _gitignore(req: HubHandler, body: dict, files: dict[str, FileEntry]) -> GitIgnore:
    """The ``gitIgnore`` the client sent (a .gitignore in the same upload), else the repo's own."""
    text = body.get("gitIgnore")
    if not isinstance(text, str):
        entry = files.get(".gitignore")
        text = ""
        if entry is not None and entry.size <= MAX_GITIGNORE:
            with req.store.open_blob(entry.sha256) as f:
                text = f.read().decode("utf-8", errors="replace")
    return GitIgnore(text[:MAX_GITIGNORE])


def lfs_batch(req: HubHandler, repo_type: str, repo_id: str) -> None:
    """Which objects to upload. Only an object already in THIS repo (or uploaded for it) is skipped:
    whether a hash exists elsewhere on the Hub is never revealed, and an upload proves possession."""
    req.writer()
    body = req.read_json()
    req.check_read(repo_type, repo_id)
    if body.get("operation") not in ("upload", "download"):
        raise HubError(400, "LFS batch operation must be 'upload' or 'download'")
    max_lfs = req.cfg.max_lfs
    objects = []
    here: set[str] | None = None
    for obj in dict_list(body, "objects"):
        oid, size = validate_sha256(obj.get("oid", "")), int_field(obj.get("size", -1), "size")
        if size < 0 or size > max_lfs:
            error = {"code": 422, "message": f"Size {size} outside 0..{max_lfs}"}
            objects.append({"oid": oid, "size": size, "error": error})
            continue
        item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
        if here is None:
            here = req.store.repo_blobs(repo_type, repo_id)
        if body["operation"] == "upload" and oid in here and req.store.has_blob(oid, size):
            req.store.touch_blob(oid)  # the commit that follows references it: keep it from gc
        elif body["operation"] == "upload":
            repo = f"{repo_type}/{repo_id}"
            sig = req.cfg.sign(oid, size, repo)
            href = f"{req.base_url()}/lfs-upload/{oid}?{urlencode({'size': size, 'repo': repo, 'sig': sig})}"
            item["actions"] = {"upload": {"href": href, "expires_in": 86400}}
        objects.append(item)
    payload = json.dumps({"transfer": "basic", "objects": objects}).encode()
    req.send(200, payload, "application/vnd.git-lfs+json")


def lfs_upload(req: HubHandler, oid: str) -> None:
    """PUT of one LFS object to the signed URL ``lfs_batch`` handed out (no token needed)."""
    validate_sha256(oid)
    size = int_field(req.query.get("size", ["-1"])[-1], "size")
    sig = req.query.get("sig", [""])[-1]
    repo = req.query.get("repo", [""])[-1]
    if not hmac.compare_digest(sig.encode(), req.cfg.sign(oid, size, repo).encode()):
        raise HubError(403, "Invalid or expired LFS upload signature")
    repo_type, _, repo_id = repo.partition("/")
    body = req.body
    if body.left is not None and not body.chunked and body.left != size:
        raise HubError(400, f"Content-Length {body.left} does not match the announced size {size}")
    try:
        if req.store.has_blob(oid, size):
            _verify_stream(body.read, size, oid)  # stored already: the bytes must still prove it
            req.store.touch_blob(oid)
        else:
            req.store.put_stream(body.read, size, oid)
        req.store.mark_upload(repo_type, repo_id, oid)  # this repo's commits may now use it
        if not body.at_end():  # bytes beyond the announced size are refused, never parsed
            raise HubError(400, f"Upload body is longer than the announced size {size}")
    except (HubError, OSError):
        req.close_connection = True  # OSError: client vanished mid-body; temp file already removed
        raise
    req.send(200, b"", "text/plain")


def _verify_stream(read_chunk, size: int, oid: str) -> None:  # noqa: ANN001
    h, left = hashlib.sha256(), size
    while left > 0 and (chunk := read_chunk(min(CHUNK, left))):
        h.update(chunk)
        left -= len(chunk)
    if left or h.hexdigest() != oid:
        raise HubError(400, f"Upload body does not match sha256 {oid} and size {size}")


def lfs_files(req: HubHandler, repo_type: str, repo_id: str) -> None:
    """``list_lfs_files``: the repo's LFS objects (writers only, as on the Hub's settings page)."""
    req.check_write(repo_type, repo_id, "list the LFS files of")
    req.json(repo_ops.lfs_files(req.store, repo_type, repo_id))


def delete_lfs_files(req: HubHandler, repo_type: str, repo_id: str) -> None:
    """``permanently_delete_lfs_files``: {"deletions": {"sha": [...], "rewriteHistory": bool}}."""
    req.check_write(repo_type, repo_id, "delete LFS files of")
    deletions = req.read_json().get("deletions")
    shas = deletions.get("sha") if isinstance(deletions, dict) else None
    if not isinstance(shas, list) or not all(isinstance(x, str) for x in shas):
        raise HubError(400, "Body must be {'deletions': {'sha': [sha256, ...]}}")
    req.store.delete_lfs_files(repo_type, repo_id, {validate_sha256(x) for x in shas})
    req.json({})


# ------------------------------------------------------------ commits
def _commit_target(req: HubHandler, repo_type: str, repo_id: str, revision: str, create_pr: bool) -> User:
    """Branches need write access; a new PR needs read access; refs/pr/N only its author (or a writer)."""
    user = req.writer()
    meta = req.check_read(repo_type, repo_id)
    if create_pr or Auth.can_write(user, repo_id, meta):
        return user
    num = revision.removeprefix("refs/pr/")
    if revision.startswith("refs/pr/") and num.isdigit():
        disc = req.discussions.get(repo_type, repo_id, int(num))
        if disc["isPullRequest"] and disc["author"]["name"] == user.name:
            return user
        raise HubError(
            403,
            f"User {user.name!r} may not push to {revision!r} of {repo_id!r}: only the author of "
            f"pull request #{num} (or the repo's owner) may",
        )
    raise HubError(
        403,
        f"User {user.name!r} may not push to {revision!r} of {repo_type} {repo_id!r}: only the owner "
        f"of namespace {repo_id.split('/')[0]!r} (or an admin) may; open a pull request (create_pr=True)",
    )


def _operation(req: HubHandler, key: str, value: dict) -> tuple[str, str, FileEntry | None]:
    """One parsed NDJSON line of a commit: (kind, path, entry); blobs of regular files are stored."""
    path = value.get("path", "")
    path = validate_path(path.strip("/") if key == "deletedFolder" and isinstance(path, str) else path)
    if key == "file":
        if value.get("encoding", "base64") != "base64":
            raise HubError(400, "Only base64-encoded regular files are supported")
        return key, path, regular_entry(req.store, value.get("content", ""))
    if key == "lfsFile":
        oid = validate_sha256(value.get("oid", ""))
        size = value.get("size")
        if size is None and req.store.has_blob(oid):
            size = req.store.blob_path(oid).stat().st_size
        return key, path, lfs_entry(oid, int_field(size if size is not None else -1, "size"))
    if key in ("deletedFile", "deletedFolder"):
        return key, path, None
    raise HubError(400, f"Unknown commit operation {str(key)[:40]!r}")


@contextlib.contextmanager
def _large_commit_slot(req: HubHandler) -> Iterator[None]:
    """A commit line is decoded whole (text, JSON, base64: ~2x its size in memory at any moment),
    so large commit bodies (and chunked ones, whose size is unknown) are decoded one at a time."""
    body = req.body
    if not body.chunked and (body.left or 0) < LARGE_COMMIT:
        yield
        return
    if not req.cfg.large_commits.acquire(timeout=IO_TIMEOUT):
        raise HubError(503, "The local Hub is busy with other large commits; retry shortly")
    try:
        yield
    finally:
        req.cfg.large_commits.release()
        release_free_memory()


def _read_operations(req: HubHandler) -> tuple[dict, list[tuple[str, str, FileEntry | None]]]:
    """The commit's operations, one line at a time; each copy of a large line is dropped as soon as
    the next exists (bytes -> text -> parsed value -> file), so a line costs ~2x its size, not 4x."""
    header: dict = {}
    ops: list[tuple[str, str, FileEntry | None]] = []
    lines = req.body.lines(req.cfg.max_body)
    while (line := next(lines, None)) is not None:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise HubError(400, "Commit body must be NDJSON lines of UTF-8 JSON") from None
        line = None  # noqa: F841 - frees the bytes before the parse makes another copy
        key, value = ndjson_item(text)
        del text
        if key == "header":
            header = value
        else:
            ops.append(_operation(req, key, value))
    return header, ops


def commit(req: HubHandler, repo_type: str, repo_id: str, revision: str) -> None:
    validate_revision(revision)
    create_pr = req.query.get("create_pr", ["0"])[-1] in ("1", "true", "True")
    user = _commit_target(req, repo_type, repo_id, revision, create_pr)
    req.check_length(req.cfg.max_body)
    with _large_commit_slot(req):
        header, ops = _read_operations(req)
    sha, pr = req.discussions.commit(repo_type, repo_id, revision, header, ops, user.name, create_pr)
    url = req.repo_url(repo_type, repo_id)
    out = {"success": True, "commitOid": sha, "commitUrl": f"{url}/commit/{sha}"}
    if pr is not None:
        out["pullRequestUrl"] = f"{url}/discussions/{pr}"
    req.json(out)


ROUTES = [
    Route("GET", "/api/{type}/{repo}/tree/{revision}/{path*}", tree),
    Route("POST", "/api/{type}/{repo}/paths-info/{revision}", paths_info),
    Route("POST", "/api/{type}/{repo}/preupload/{revision}", preupload),
    Route("POST", "/api/{type}/{repo}/commit/{revision}", commit),
    Route("GET", "/{type?}/{repo}/resolve/{revision}/{path+}", resolve),
    Route("POST", "/{type?}/{repo}.git/info/lfs/objects/batch", lfs_batch),
    Route("PUT", "/lfs-upload/{oid}", lfs_upload),
    Route("GET", "/api/{type}/{repo}/lfs-files", lfs_files),
    Route("POST", "/api/{type}/{repo}/lfs-files/batch", delete_lfs_files),
]
