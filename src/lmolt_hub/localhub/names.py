"""Names on the local Hub and their validation: repo types, repo ids, file paths, revisions, oids.

Every name that reaches the disk or a URL passes one of these checks first; a bad one is a 400
naming the rule, never a path outside the repo.
"""

from __future__ import annotations

import re

from lmolt_hub.localhub.errors import HubError

REPO_TYPES = ("model", "dataset", "space")
PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}  # /api/{plural}/...
TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}  # URL prefix of a repo
# First path segments that are routes of the server, not model namespaces.
RESERVED_NAMESPACES = {"api", "site", "datasets", "spaces", "models", "lfs-upload", "static"}
MAX_PATH_LEN = 1000
MAX_REVISION_LEN = 255
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")  # one part of a repo id; also user names
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,39}$")  # an abbreviated commit sha, as git accepts
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REV_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$")


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
        if not NAME_RE.fullmatch(part) or ".." in part or "--" in part or part.endswith(".git"):
            raise HubError(
                400,
                f"Invalid repo id {repo_id!r}: each part must be 1-96 characters of [A-Za-z0-9._-], "
                "start with a letter or digit, and contain no '..' or '--'",
            )
    if parts[0] in RESERVED_NAMESPACES:
        raise HubError(400, f"Invalid repo id {repo_id!r}: namespace {parts[0]!r} is reserved")
    return repo_id


def canonical_model_error(name: str) -> HubError:
    """A namespace-less id (``gpt2``): huggingface.co's canonical models, which no local repo is."""
    if not NAME_RE.fullmatch(name) or ".." in name:
        return HubError(400, f"Invalid repo id {name[:100]!r}")
    return HubError(
        404,
        f"Repository {name!r} not found: ids without a namespace are huggingface.co's canonical models; "
        f"on this Hub every repo has one (mirror it as '<org>/{name}')",
        "RepoNotFound",
    )


def validate_path(path: str) -> str:
    """A relative file path inside a repo: no empty/``.``/``..`` parts, NUL or absolute path.

    Invalid paths are a 422, as on the Hub. A backslash is an ordinary character there (``/`` is
    the only separator), so ``a\\b`` is one file name; no path ever reaches the disk (blobs are
    stored by sha256), and ``..`` is refused as a ``/`` component.
    """
    if not isinstance(path, str):
        raise HubError(400, "Invalid path: must be a string")
    if not path:
        raise HubError(422, "Invalid path: empty")
    if len(path.encode()) > MAX_PATH_LEN:
        raise HubError(422, f"Invalid path: longer than {MAX_PATH_LEN} bytes")
    if "\x00" in path or path.startswith("/"):
        raise HubError(422, f"Invalid path {path!r}: NUL bytes and absolute paths are not allowed")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise HubError(422, f"Invalid path {path!r}: empty, '.' or '..' component")
    if path == ".git" or path.startswith(".git/"):
        raise HubError(422, f"Invalid path {path!r}: '.git' is reserved")
    return path


def validate_revision(revision: str) -> str:
    if not revision or len(revision) > MAX_REVISION_LEN or not _REV_RE.fullmatch(revision):
        raise HubError(400, f"Invalid revision {revision[:80]!r}", "RevisionNotFound")
    if ".." in revision or "//" in revision or revision.endswith("/") or revision.endswith(".lock"):
        raise HubError(400, f"Invalid revision {revision[:80]!r}", "RevisionNotFound")
    return revision


def validate_branch_name(name: str) -> str:
    """A name for a new branch or tag: a 400 (not RevisionNotFound: nothing was looked up)."""
    try:
        validate_revision(name)
    except HubError:
        raise HubError(400, f"Invalid reference for a branch or tag: {name[:80]!r}") from None
    if name.startswith("refs/") or SHA1_RE.fullmatch(name):
        raise HubError(400, f"Invalid reference for a branch or tag: {name!r}")
    return name


def validate_sha256(oid: str) -> str:
    if not isinstance(oid, str) or not _SHA256_RE.fullmatch(oid):
        raise HubError(400, f"Invalid LFS oid {str(oid)[:80]!r}: expected 64 lowercase hex characters")
    return oid


def is_commit_sha(revision: str) -> bool:
    """A full commit sha (immutable: its downloads may be cached forever)."""
    return bool(SHA1_RE.fullmatch(revision))


def discussion_number(s: str) -> int:
    if not s.isdigit():
        raise HubError(400, f"Invalid discussion number {s[:20]!r}")
    return int(s)
