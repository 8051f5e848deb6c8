"""Repo operations of the Hub's settings pages, built on ``Storage``'s primitives (its locks,
commits and refs): moving a repo, squashing a branch, likes, and listing the LFS objects.

Deleting LFS objects stays in ``Storage`` beside ``gc``: it deletes blobs, so it holds the gc lock
alone. JSON is written through ``storage.write_json_atomic``, the one place crash tests fault.
"""

from __future__ import annotations

import os

from lmolt_hub.localhub import storage as st
from lmolt_hub.localhub.errors import HubError


def move_repo(store: st.Storage, repo_type: str, src: str, dst: str) -> None:
    """Rename ``src`` to ``dst`` (both locked); its discussions follow. 409 if ``dst`` exists."""
    a, b = sorted([src, dst])  # a fixed lock order: two opposite moves cannot deadlock
    with store.committing(repo_type, a), store.lock(repo_type, b):
        store.repo_meta(repo_type, src)
        if store.canonical_id(repo_type, dst) != dst or store.repo_exists(repo_type, dst):
            raise HubError(409, f"Repository {repo_type} {dst!r} already exists")
        old, new = store.repo_dir(repo_type, src), store.repo_dir(repo_type, dst)
        new.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, new)  # the move itself: one rename
        meta = store.repo_meta(repo_type, dst)
        meta["id"] = dst
        st.write_json_atomic(new / "repo.json", meta)
        for p in (new / "discussions").glob("*.json"):
            disc = st.read_json(p)
            disc["repo"] = {"name": dst, "type": repo_type}
            st.write_json_atomic(p, disc)


def squash(store: st.Storage, repo_type: str, repo_id: str, branch: str, message: str, author: str) -> str:
    """Replace ``branch``'s history by one commit of its current files; returns its sha."""
    with store.committing(repo_type, repo_id) as d:
        refs = store.refs(repo_type, repo_id)
        kind, name = st.ref_slot(refs, branch, prs=False)
        files = store.files(repo_type, repo_id, refs[kind][name])
        sha = store.write_commit(d, [], files, message or "Super-squash branch", "", author)
        refs[kind][name] = sha
        store.save_refs(d, refs)
        return sha


def likes(store: st.Storage, repo_type: str, repo_id: str) -> dict[str, str]:
    """user -> when they liked the repo."""
    try:
        return st.read_json(store.repo_dir(repo_type, repo_id) / "likes.json")
    except FileNotFoundError:
        return {}


def set_like(store: st.Storage, repo_type: str, repo_id: str, user: str, like: bool) -> None:
    with store.lock(repo_type, repo_id):
        store.repo_meta(repo_type, repo_id)
        liked = likes(store, repo_type, repo_id)
        if like:
            liked.setdefault(user, st.now_iso())
        else:
            liked.pop(user, None)
        st.write_json_atomic(store.repo_dir(repo_type, repo_id) / "likes.json", liked)


def lfs_files(store: st.Storage, repo_type: str, repo_id: str) -> list[dict]:
    """Every LFS object any commit of the repo references, with where and when it first came."""
    d = store.repo_dir(repo_type, repo_id)
    commits = [st.read_json(p) for p in (d / "commits").glob("*.json")]
    commits.sort(key=lambda c: (c.get("generation", 0), c["date"]))
    out: dict[str, dict] = {}
    for c in commits:
        for path, e in c["files"].items():
            if e["lfs"] and e["sha256"] not in out:
                out[e["sha256"]] = {
                    "fileOid": e["sha256"],
                    "oid": e["sha256"],
                    "filename": path,
                    "pushedAt": c["date"],
                    "ref": None,
                    "size": e["size"],
                }
    return list(out.values())
