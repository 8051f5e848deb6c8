"""Pushing a folder to the Hub: one target check, one commit.

:func:`check_target` runs before any work that ends in a push (training, merging, a data build):
the Hub answers, Xet is off for a local Hub, and the token may write the repo. :func:`push_folder`
uploads a folder as a single commit, so an interrupted push leaves the Hub's previous state.
"""

from __future__ import annotations

from pathlib import Path

from lmolt_hub.hub.errors import hub_endpoint, hub_reachable, is_local_endpoint, unreachable_message


class PushError(RuntimeError):
    """The Hub cannot take this push: the message names the problem and the fix."""


def check_target(repo_id: str, *, error: type[Exception] = PushError, who: str = "", off_hint: str = "",
                 rename_hint: str = "push to {user}/{name}") -> str:  # fmt: skip
    """The Hub answers, Xet is off for a local Hub, and the token may write ``repo_id``.

    Returns the token's user name. Costs one whoami call; nothing is created on the Hub.
    ``who`` names what pushes (default ``pushing <repo>``); ``off_hint`` says how to skip the push (``, or pass --push_to_hub false``); ``rename_hint``
    how to target the user's own namespace (formatted with ``user`` and ``name``).
    """
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError

    endpoint = hub_endpoint()
    if not hub_reachable():
        raise error(unreachable_message())
    if is_local_endpoint() and not constants.HF_HUB_DISABLE_XET:
        raise error(
            f"HF_ENDPOINT={endpoint} is not huggingface.co, so uploads cannot go through Xet: "
            "set HF_HUB_DISABLE_XET=1 (or unset it: lmolt-hub sets it for local Hubs)"
        )
    if not get_token():
        raise error(
            f"{who or 'pushing ' + repo_id} needs a write token for {endpoint} (HF_ENDPOINT): set HF_TOKEN "
            f"(`hf auth login`, or the token `lmolt-hub serve` printed){off_hint}"
        )
    try:
        me = HfApi().whoami()
    except HfHubHTTPError as e:
        if getattr(e.response, "status_code", None) in (401, 403):
            raise error(
                f"the Hub at {endpoint} (HF_ENDPOINT) rejects HF_TOKEN: set HF_TOKEN to a valid write token "
                f"of this Hub{off_hint}"
            ) from None
        raise
    name = me.get("name") or "?"
    if ((me.get("auth") or {}).get("accessToken") or {}).get("role") == "read":
        raise error(f"HF_TOKEN of {name!r} is read-only: use a write token to push {repo_id}")
    namespaces = [name] + [o.get("name") for o in me.get("orgs") or [] if isinstance(o, dict)]
    namespace = repo_id.split("/")[0]
    if namespace not in namespaces and not me.get("isAdmin"):
        fix = rename_hint.format(user=name, name=repo_id.split("/")[-1])
        raise error(
            f"HF_TOKEN belongs to {name!r}, who may write only to {', '.join(map(repr, namespaces))}, not to "
            f"{repo_id}: {fix}, or use a token of {namespace!r}"
        )
    return name


def push_folder(folder: str | Path, repo_id: str, *, repo_type: str = "model", revision: str | None = None,
                private: bool = False, message: str, ignore: list[str] | None = None,
                delete: list[str] | None = None, only: list[str] | None = None, path_in_repo: str = "",
                check: bool = True, error: type[Exception] = PushError,
                space_sdk: str | None = None) -> str:  # fmt: skip
    """Upload ``folder`` to ``repo_id`` as one commit; returns the commit sha.

    The repo (and the branch ``revision``) is created when missing. ``ignore``: local files left
    out; ``only``: these files of ``folder`` and nothing else; ``path_in_repo``: the folder in the
    repo they land in; ``delete``: remote paths matching these patterns and absent from ``folder``
    are removed in the same commit. With ``check`` the target is checked first (:func:`check_target`).
    ``space_sdk``: the SDK a new space repo is created with (the Hub refuses a Space without one).
    """
    from huggingface_hub import HfApi

    if check:
        check_target(repo_id, error=error)
    api = HfApi()
    sdk = {"space_sdk": space_sdk} if repo_type == "space" else {}
    api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **sdk)
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    ops = _operations(api, Path(folder), repo_id, repo_type, revision, ignore, delete, only, path_in_repo)
    # create_commit, not upload_folder: with hf_xet installed, upload_folder may split a large
    # folder into several commits, and a half-pushed model must never be a Hub revision.
    info = api.create_commit(repo_id, ops, repo_type=repo_type, revision=revision, commit_message=message)
    return info.oid


def _operations(api, folder: Path, repo_id: str, repo_type: str, revision: str | None, ignore: list[str] | None,
                delete: list[str] | None, only: list[str] | None, prefix: str) -> list:  # fmt: skip
    """Add every file of ``folder`` not ignored; delete remote files matching ``delete`` not re-added."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS  # .git/, .cache/huggingface/
    from huggingface_hub.utils import filter_repo_objects

    names = (
        sorted(only)
        if only is not None
        else sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    )
    keep = list(filter_repo_objects(names, ignore_patterns=[*(ignore or []), *DEFAULT_IGNORE_PATTERNS]))
    prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    ops: list = [CommitOperationAdd(path_in_repo=prefix + f, path_or_fileobj=str(folder / f)) for f in keep]
    if delete:
        remote = api.list_repo_files(repo_id, repo_type=repo_type, revision=revision)
        added = {prefix + f for f in keep}
        stale = set(filter_repo_objects(remote, allow_patterns=delete)) - added - {".gitattributes"}
        ops += [CommitOperationDelete(path_in_repo=p) for p in sorted(stale)]
    return ops
