"""Repo endpoints: create, delete, settings, listing, info, refs, branches and tags, history."""

from __future__ import annotations

import hashlib
import html
import logging
from typing import Any

from lmolt_hub.localhub import repo_ops
from lmolt_hub.localhub.auth import Auth, User
from lmolt_hub.localhub.cardmeta import card_data
from lmolt_hub.localhub.entries import FileEntry, lfs_pointer
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.handler import HubHandler
from lmolt_hub.localhub.names import REPO_TYPES, validate_repo_id, validate_repo_type
from lmolt_hub.localhub.router import Route

log = logging.getLogger("lmolt_hub.localhub")
SPACE_SDKS = {"gradio", "docker", "static", "streamlit"}


def _body_repo(req: HubHandler, user: User) -> tuple[str, str, dict]:
    """(repo type, repo id, body) of a create/delete request; a missing name is a 400."""
    body = req.read_json()
    repo_type = validate_repo_type(body.get("type"))
    name, org = body.get("name"), body.get("organization") or user.name
    for field, value in (("name", name), ("organization", org)):
        if not isinstance(value, str) or not value:
            raise HubError(400, f"Missing or invalid repo {field!r}: expected a non-empty string")
    return repo_type, _canonical(req, user, repo_type, validate_repo_id(f"{org}/{name}")), body


def _canonical(req: HubHandler, user: User, repo_type: str, repo_id: str) -> str:
    """The stored spelling of an id (ids are case-insensitive); for a new repo, the namespace as
    the user, one of its orgs or an existing folder spells it."""
    found = req.store.canonical_id(repo_type, repo_id)
    if found != repo_id or req.store.repo_exists(repo_type, found):
        return found
    ns, name = repo_id.split("/")
    for known in (user.name, *user.orgs):
        if known.lower() == ns.lower():
            return f"{known}/{name}"
    return f"{req.store.canonical_namespace(repo_type, ns)}/{name}"


def create_repo(req: HubHandler) -> None:
    user = req.writer()
    repo_type, repo_id, body = _body_repo(req, user)
    private = body.get("private") or body.get("visibility") == "private"
    url = req.repo_url(repo_type, repo_id)
    exists = req.store.repo_exists(repo_type, repo_id)
    if exists and Auth.can_read(user, repo_id, req.store.repo_meta(repo_type, repo_id)):
        raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", extra={"url": url})
    namespace = repo_id.split("/")[0]
    if exists or not user.owns_namespace(namespace):
        raise HubError(
            403,
            f"User {user.name!r} may not create repos in namespace {namespace!r}: "
            f"use your own namespace ({user.name!r}) or ask the Hub's admin for access",
        )
    sdk = body.get("sdk") if repo_type == "space" else None
    if sdk is not None and (not isinstance(sdk, str) or sdk not in SPACE_SDKS):
        raise HubError(400, f"Invalid Space sdk {str(sdk)[:40]!r}; expected one of {sorted(SPACE_SDKS)}")
    if not req.store.create_repo(repo_type, repo_id, bool(private), user.name, sdk):
        raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", extra={"url": url})
    req.json({"url": url, "name": repo_id, "id": repo_id})


def delete_repo(req: HubHandler) -> None:
    user = req.writer()
    repo_type, repo_id, _ = _body_repo(req, user)
    req.check_write(repo_type, repo_id, "delete")
    req.store.delete_repo(repo_type, repo_id)
    req.json({})


def move_repo(req: HubHandler) -> None:
    """POST /api/repos/move {fromRepo, toRepo, type}: write access to the source and the right to
    create the target. The Hub redirects the old id afterwards; this Hub does not."""
    user = req.writer()
    body = req.read_json()
    repo_type = validate_repo_type(body.get("type"))
    src, dst = body.get("fromRepo"), body.get("toRepo")
    if not isinstance(src, str) or not isinstance(dst, str):
        raise HubError(400, "'fromRepo' and 'toRepo' must be repo ids 'namespace/name'")
    src = req.store.canonical_id(repo_type, validate_repo_id(src))
    dst = _canonical(req, user, repo_type, validate_repo_id(dst))
    req.check_write(repo_type, src, "move")
    if not user.owns_namespace(dst.split("/")[0]):
        raise HubError(403, f"User {user.name!r} may not create repos in namespace {dst.split('/')[0]!r}")
    repo_ops.move_repo(req.store, repo_type, src, dst)
    req.json({"url": req.repo_url(repo_type, dst)})


def squash(req: HubHandler, repo_type: str, repo_id: str, branch: str) -> None:
    user, _ = req.check_write(repo_type, repo_id, "squash the history of")
    message = req.read_json().get("message") or "Super-squash branch"
    if not isinstance(message, str):
        raise HubError(400, "'message' must be a string")
    sha = repo_ops.squash(req.store, repo_type, repo_id, branch, message[:1000], user.name)
    req.json({"commitId": sha})


def auth_check(req: HubHandler, repo_type: str, repo_id: str, write: str = "") -> None:
    """200 when the caller may read (``/auth-check``) or write (``/auth-check/write``) the repo."""
    if write not in ("", "write"):
        raise HubError(404, f"Route not supported by the local Hub: auth-check/{write[:40]}")
    if write:
        req.check_write(repo_type, repo_id, "write to")
    else:
        req.check_read(repo_type, repo_id)
    req.json({})


def like(req: HubHandler, repo_type: str, repo_id: str) -> None:
    """POST likes, DELETE unlikes (idempotent); anyone who can read the repo, with a token."""
    user = req.writer()
    req.check_read(repo_type, repo_id)
    repo_ops.set_like(req.store, repo_type, repo_id, user.name, req.command == "POST")
    req.json({})


def likers(req: HubHandler, repo_type: str, repo_id: str) -> None:
    req.check_read(repo_type, repo_id)
    likes = repo_ops.likes(req.store, repo_type, repo_id)
    req.json([{"user": u, "fullname": u, "avatarUrl": "", "type": "user"} for u in sorted(likes)])


def user_likes(req: HubHandler, user: str) -> None:
    """The repos ``user`` likes, that the caller can see."""
    caller = req.user(False)
    out = []
    for repo_type in REPO_TYPES:
        for meta in req.store.list_repos(repo_type):
            if not Auth.can_read(caller, meta["id"], meta):
                continue
            when = repo_ops.likes(req.store, repo_type, meta["id"]).get(user)
            if when is not None:
                out.append({"createdAt": when, "repo": {"name": meta["id"], "type": repo_type}})
    req.json(sorted(out, key=lambda x: x["createdAt"], reverse=True))


def update_settings(req: HubHandler, repo_type: str, repo_id: str) -> None:
    req.check_write(repo_type, repo_id, "change the settings of")
    body = req.read_json()
    private = body.get("private")
    if body.get("visibility") in ("private", "public"):
        private = body["visibility"] == "private"
    req.store.update_settings(repo_type, repo_id, private)
    req.json({})


def info_dict(req: HubHandler, repo_type: str, meta: dict, sha: str, full: bool = True) -> dict:
    """``model_info`` / ``dataset_info`` of one commit (``full``: with the file list)."""
    repo_id = meta["id"]
    commit = req.store.commit(repo_type, repo_id, sha)
    files = {p: FileEntry(**e) for p, e in commit["files"].items()}
    card = card_data(req.store.readme_text(files))
    raw_tags = (card or {}).get("tags") or []
    tags = [
        str(t)
        for t in (raw_tags if isinstance(raw_tags, list) else [raw_tags])
        if isinstance(t, str | int | float)
    ]
    if card and card.get("license"):
        tags.append(f"license:{card['license']}")
    info: dict[str, Any] = {
        "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
        "id": repo_id,
        "author": repo_id.split("/")[0],
        "sha": sha,
        "lastModified": commit["date"],
        "createdAt": meta.get("createdAt"),
        "private": bool(meta.get("private")),
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": len(repo_ops.likes(req.store, repo_type, repo_id)),
        "tags": tags,
        "cardData": card,
    }
    if repo_type == "space" and card:
        info["sdk"] = card.get("sdk")
    if repo_type == "model":
        info["modelId"] = repo_id
        if card:
            info["library_name"] = card.get("library_name")
            info["pipeline_tag"] = card.get("pipeline_tag")
    if full:
        info["siblings"] = [_sibling(p, e) for p, e in sorted(files.items())]
        info["usedStorage"] = sum(e.size for e in files.values())
    return info


def _sibling(path: str, e: FileEntry) -> dict:
    out: dict[str, Any] = {"rfilename": path, "size": e.size, "blobId": e.oid}
    if e.lfs:
        pointer_size = len(lfs_pointer(e.sha256, e.size))
        out["lfs"] = {"sha256": e.sha256, "size": e.size, "pointerSize": pointer_size}
    return out


def repo_info(req: HubHandler, repo_type: str, repo_id: str, revision: str | None = None) -> None:
    meta = req.check_read(repo_type, repo_id)
    sha = req.store.resolve(repo_type, repo_id, revision)
    req.json(info_dict(req, repo_type, meta, sha))


def list_repos(req: HubHandler, repo_type: str) -> None:
    q = {k: v[-1] for k, v in req.query.items()}
    author, search = q.get("author"), (q.get("search") or "").lower()
    user = req.user(False)
    out = []
    for meta in req.store.list_repos(repo_type):
        if author and meta["id"].split("/")[0].lower() != author.lower():
            continue
        if search and search not in meta["id"].lower():
            continue
        if not Auth.can_read(user, meta["id"], meta):
            continue
        try:
            sha = req.store.resolve(repo_type, meta["id"], "main")
            info = info_dict(req, repo_type, meta, sha, full=req.flag("full"))
            if _matches_filters(info, req.query.get("filter", []), q.get("pipeline_tag")):
                out.append(info)
        except HubError:
            continue  # deleted meanwhile
        except Exception:  # one broken repo never breaks the listing for everyone
            log.exception("local Hub: skipping %s %s in a listing", repo_type, meta.get("id"))
    reverse = q.get("direction", "-1") == "-1"
    sort = q.get("sort", "lastModified")
    if sort in ("lastModified", "last_modified", "createdAt", "created_at", "id"):
        field = {"last_modified": "lastModified", "created_at": "createdAt"}.get(sort, sort)
        out.sort(key=lambda i: str(i.get(field) or ""), reverse=reverse)
    if q.get("limit", "").isdigit():
        out = out[: int(q["limit"])]
    req.json(out)


def _matches_filters(info: dict, filters: list[str], pipeline_tag: str | None) -> bool:
    """``filter=`` values must all be among the repo's tags, library, pipeline tag or ``dataset:`` links."""
    card = info.get("cardData") or {}
    datasets = card.get("datasets") or []
    known = set(info.get("tags") or []) | {
        f"dataset:{d}" for d in (datasets if isinstance(datasets, list) else [])
    }
    known |= {str(v) for v in (info.get("library_name"), info.get("pipeline_tag")) if v}
    if pipeline_tag and info.get("pipeline_tag") != pipeline_tag:
        return False
    return all(f in known for f in filters)


def refs(req: HubHandler, repo_type: str, repo_id: str) -> None:
    req.check_read(repo_type, repo_id)
    all_refs = req.store.refs(repo_type, repo_id)

    def fmt(kind: str, prefix: str) -> list[dict]:
        return [
            {"name": n, "ref": f"{prefix}{n}", "targetCommit": s} for n, s in sorted(all_refs[kind].items())
        ]

    out = {"branches": fmt("heads", "refs/heads/"), "tags": fmt("tags", "refs/tags/"), "converts": []}
    if req.query.get("include_prs"):
        out["pullRequests"] = fmt("pr", "refs/pr/")
    req.json(out)


def commits(req: HubHandler, repo_type: str, repo_id: str, revision: str) -> None:
    req.check_read(repo_type, repo_id)
    sha = req.store.resolve(repo_type, repo_id, revision)
    formatted = "formatted" in req.query.get("expand[]", []) + req.query.get("expand", [])
    out = []
    for c in req.store.history(repo_type, repo_id, sha):
        item = {
            "id": c["id"],
            "title": c["title"],
            "message": c["message"],
            "date": c["date"],
            "authors": [{"user": a} for a in c["authors"]],
        }
        if formatted:  # only when asked (expand[]=formatted), as on the Hub
            item["formatted"] = {
                "title": f"<p>{html.escape(c['title'])}</p>",
                "message": f"<p>{html.escape(c['message'])}</p>" if c["message"] else "",
            }
        out.append(item)
    req.json(out)


def create_branch(req: HubHandler, repo_type: str, repo_id: str, name: str) -> None:
    req.check_write(repo_type, repo_id, "create a branch in")
    start = req.read_json().get("startingPoint")
    if start is not None and not isinstance(start, str):
        raise HubError(400, "'startingPoint' must be a revision string")
    req.store.create_ref(repo_type, repo_id, "heads", name, start)
    req.json({})


def create_tag(req: HubHandler, repo_type: str, repo_id: str, revision: str) -> None:
    """POST /tag/{revision} with {"tag": name}."""
    req.check_write(repo_type, repo_id, "create a tag in")
    tag = str(req.read_json().get("tag", ""))
    req.store.create_ref(repo_type, repo_id, "tags", tag, revision)
    req.json({})


def delete_branch(req: HubHandler, repo_type: str, repo_id: str, name: str) -> None:
    req.check_write(repo_type, repo_id, "delete a branch of")
    req.store.delete_ref(repo_type, repo_id, "heads", name)
    req.json({})


def delete_tag(req: HubHandler, repo_type: str, repo_id: str, name: str) -> None:
    req.check_write(repo_type, repo_id, "delete a tag of")
    req.store.delete_ref(repo_type, repo_id, "tags", name)
    req.json({})


ROUTES = [
    Route("POST", "/api/repos/create", create_repo),
    Route("POST", "/api/repos/move", move_repo),
    Route("GET", "/api/users/{user}/likes", user_likes),
    Route("DELETE", "/api/repos/delete", delete_repo),
    Route("GET", "/api/{type}", list_repos),
    Route("GET", "/api/{type}/{repo}", repo_info),
    Route("GET", "/api/{type}/{repo}/revision/{revision}", repo_info),
    Route("PUT", "/api/{type}/{repo}/settings", update_settings),
    Route("GET", "/api/{type}/{repo}/refs", refs),
    Route("GET", "/api/{type}/{repo}/commits/{revision}", commits),
    Route("POST", "/api/{type}/{repo}/branch/{name}", create_branch),
    Route("DELETE", "/api/{type}/{repo}/branch/{name}", delete_branch),
    Route("POST", "/api/{type}/{repo}/tag/{revision}", create_tag),
    Route("DELETE", "/api/{type}/{repo}/tag/{name}", delete_tag),
    Route("POST", "/api/{type}/{repo}/super-squash/{branch}", squash),
    Route("GET", "/api/{type}/{repo}/auth-check", auth_check),
    Route("GET", "/api/{type}/{repo}/auth-check/{write}", auth_check),
    Route("POST", "/api/{type}/{repo}/like", like),
    Route("DELETE", "/api/{type}/{repo}/like", like),
    Route("GET", "/api/{type}/{repo}/likers", likers),
]
