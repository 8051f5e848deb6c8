"""Merge cards and pushing merged models to the Hub.

A merge is pushed in one commit (model, tokenizer, card, metadata together), and only from a
directory whose merge completed and passed its checks, so the Hub never holds a partial merge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmolt_hub.hub.cards import MergeMeta
from lmolt_hub.hub.push import check_target, push_folder
from lmolt_hub.merging.config import MergeConfigError

MARKER = "lmolt_merge.json"  # a merge folder's metadata, written last: the merge is complete and checked

TEMPLATE = "model_merge.md.j2"


def parent_licenses(parents) -> list[str | None]:
    """The licence each parent's card declares (for base+adapter, the adapter's card); None if none."""
    from lmolt_hub.hub.cards import parse_card

    out: list[str | None] = []
    for parent in parents:
        folder = parent.adapter.local_path if parent.adapter is not None else parent.local_path
        readme = Path(folder) / "README.md"
        meta = parse_card(readme.read_text(encoding="utf-8"))[0] if readme.is_file() else {}
        value = meta.get("license") if isinstance(meta, dict) else None
        out.append(str(value) if value else None)
    return out


def license_fields(licenses: list[str | None]) -> dict[str, Any]:
    """Card ``license`` of a merge: its parents' one licence; ``other`` naming them if they differ."""
    known = sorted({lic for lic in licenses if lic})
    if len(known) == 1:
        return {"license": known[0]}
    if known:
        return {"license": "other", "license_name": "-and-".join(known)}
    return {}


def card_data(meta: dict[str, Any], name: str) -> dict[str, Any]:
    """Front matter: Hub-standard fields plus an ``lmolt`` block that `lmolt-hub lineage` reads."""
    hub_parents = []
    for p in meta["parents"]:
        pid = (p.get("adapter") or {}).get("id") if p.get("adapter") else p.get("id")
        if pid and not Path(pid).is_absolute() and "://" not in pid and pid not in hub_parents:
            hub_parents.append(pid)
    data: dict[str, Any] = {
        **license_fields(meta.get("parent_licenses") or []),  # every published card carries a licence
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["lmolt", "merge", "mergekit", meta["method"]],
    }
    if hub_parents:
        data["base_model"] = hub_parents
        data["base_model_relation"] = "merge"
    merge = MergeMeta(
        name=name,
        method=meta["method"],
        parents=meta["parents"],
        parameters=meta["parameters"],
        dtype=meta.get("dtype"),
        recipe_digest=meta["recipe_digest"],
        git_sha=meta.get("git_sha"),
    )
    return data | merge.to_front_matter()


def write_card(model_dir: Path, meta: dict[str, Any], name: str) -> Path:
    """(Re)write README.md from the merge metadata; ``name`` is the Hub id once known."""
    from lmolt_hub.hub.render import render_card
    from lmolt_hub.prompts import TEMPLATE_VERSION

    text = render_card(
        TEMPLATE,
        card_data(meta, name),
        name=name,
        meta=meta,
        recipe_yaml=meta["recipe_yaml"].rstrip("\n"),
        template_version=TEMPLATE_VERSION,
    )
    path = model_dir / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def push_merge(
    model_dir: str | Path,
    repo_id: str,
    private: bool = False,
    commit_message: str | None = None,
    overwrite: bool = False,
) -> str:
    """Upload a completed merge directory in a single commit; returns the commit sha.

    Idempotent: when ``repo_id`` already holds this very merge (same recipe digest) its current
    commit is returned and nothing is uploaded. A repo holding a different model is refused
    unless ``overwrite``.
    """
    model_dir = Path(model_dir)
    marker = model_dir / MARKER
    if not marker.is_file():
        raise MergeConfigError(f"{model_dir} holds no completed merge ({MARKER} missing); refusing to push")
    meta = json.loads(marker.read_text(encoding="utf-8"))
    if (sha := check_push_target(repo_id, meta["recipe_digest"], overwrite)) is not None:
        return sha
    write_card(model_dir, meta, name=repo_id)  # the card names the repo it is pushed to
    # One commit: if the upload is interrupted, the Hub keeps its previous state, never a partial merge.
    message = commit_message or f"{meta['method']} merge of {len(meta['parents'])} models (lmolt-hub)"
    return push_folder(model_dir, repo_id, private=private, message=message, ignore=[".*"], check=False)


def check_push_target(repo_id: str, digest: str, overwrite: bool = False) -> str | None:
    """Before merging: refuse a target repo that holds another model (unless ``overwrite``).

    Returns the repo's commit sha when it already holds this very merge (nothing to push).
    """
    from huggingface_hub import HfApi

    check_target(repo_id, error=MergeConfigError)  # the Hub answers and the token may write there
    existing = _remote_state(HfApi(), repo_id)
    if existing is None:
        return None
    sha, remote_digest, has_model = existing
    if remote_digest == digest:
        return sha
    if has_model and not overwrite:
        raise MergeConfigError(
            f"{repo_id} already holds a different model; push elsewhere or pass overwrite "
            "(`lmolt-hub merge --overwrite`)"
        )
    return None


def _remote_state(api, repo_id: str) -> tuple[str, str | None, bool] | None:
    """(commit sha, merge digest or None, holds model weights) of ``repo_id``; None if absent."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = api.model_info(repo_id)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return None
    except Exception as e:  # connection errors (httpx) are not HfHubHTTPErrors
        from huggingface_hub import constants

        raise MergeConfigError(
            f"cannot reach the Hub at {constants.ENDPOINT} to check {repo_id}: {e}"
        ) from None
    files = {s.rfilename for s in info.siblings or []}
    has_model = any(f.endswith((".safetensors", ".bin")) for f in files)
    digest = None
    if MARKER in files:
        try:
            path = hf_hub_download(repo_id, MARKER, revision=info.sha)
            digest = json.loads(Path(path).read_text(encoding="utf-8")).get("recipe_digest")
        except (EntryNotFoundError, ValueError):
            digest = None
    return info.sha, digest, has_model
