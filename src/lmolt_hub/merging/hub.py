"""Merge cards and pushing merged models to the Hub.

A merge is pushed in one commit (model, tokenizer, card, metadata together), and only from a
directory whose merge completed and passed its checks, so the Hub never holds a partial merge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmolt_hub.merging.config import MergeConfigError

TEMPLATE = "model_merge.md.j2"


def card_data(meta: dict[str, Any], name: str) -> dict[str, Any]:
    """Front matter: Hub-standard fields plus an ``lmolt`` block that `lmolt-hub lineage` reads."""
    hub_parents = []
    for p in meta["parents"]:
        pid = (p.get("adapter") or {}).get("id") if p.get("adapter") else p.get("id")
        if pid and not Path(pid).is_absolute() and "://" not in pid and pid not in hub_parents:
            hub_parents.append(pid)
    data: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["lmolt", "merge", "mergekit", meta["method"]],
    }
    if hub_parents:
        data["base_model"] = hub_parents
        data["base_model_relation"] = "merge"
    data["lmolt"] = {
        "kind": "merge",
        "name": name,
        "method": meta["method"],
        "parents": meta["parents"],
        "parameters": meta["parameters"],
        "dtype": meta.get("dtype"),
        "recipe_digest": meta["recipe_digest"],
        "git_sha": meta.get("git_sha"),
    }
    return data


def write_card(model_dir: Path, meta: dict[str, Any], name: str) -> Path:
    """(Re)write README.md from the merge metadata; ``name`` is the Hub id once known."""
    from lmolt_hub.cards import render_card
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
    model_dir: str | Path, repo_id: str, private: bool = False, commit_message: str | None = None
) -> str:
    """Upload a completed merge directory in a single commit; returns the commit sha."""
    from huggingface_hub import HfApi

    from lmolt_hub.merging.run import MARKER

    model_dir = Path(model_dir)
    marker = model_dir / MARKER
    if not marker.is_file():
        raise MergeConfigError(f"{model_dir} holds no completed merge ({MARKER} missing); refusing to push")
    meta = json.loads(marker.read_text(encoding="utf-8"))
    write_card(model_dir, meta, name=repo_id)  # the card names the repo it is pushed to
    api = HfApi()
    api.create_repo(repo_id, repo_type="model", exist_ok=True, private=private)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(model_dir),
        repo_type="model",
        commit_message=commit_message
        or f"{meta['method']} merge of {len(meta['parents'])} models (lmolt-hub)",
        ignore_patterns=[".*"],
    )
    return info.oid
