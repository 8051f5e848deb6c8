"""Execute a resolved merge recipe with mergekit's library API.

The merge is written to a temporary sibling directory and moved into place only after the
post-merge checks pass, so ``out_dir`` either holds a complete, checked model (with its card and
``lmolt_merge.json``) or nothing new. Re-running an identical recipe into the same directory is
a no-op (resume).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from lmolt_hub.io import atomic_dir
from lmolt_hub.merging.checks import post_merge_checks, pre_merge_checks
from lmolt_hub.merging.config import MergeConfigError, MergeRecipe
from lmolt_hub.merging.publish import MARKER, parent_licenses, write_card
from lmolt_hub.resources import cache_dir

LOG = logging.getLogger(__name__)


def recipe_digest(recipe: MergeRecipe) -> str:
    """Identity of a merge: the recipe as written plus the pinned identity of every input."""
    # Hub inputs are identified by id + commit (not by this machine's cache path), local ones by path
    parents = {
        ref: p.as_dict() | ({} if p.revision else {"path": str(p.local_path)})
        for ref, p in recipe.parents.items()
    }
    blob = json.dumps({"recipe": recipe.raw, "parents": parents}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def merge_options(lazy: bool = True, **overrides: Any):
    """mergekit options: lazy loading on; no card from mergekit (it would call the Hub)."""
    from mergekit.options import MergeOptions

    opts = {
        "lazy_unpickle": lazy,
        "write_model_card": False,
        "copy_tokenizer": True,
        "quiet": False,  # mergekit's progress bars: a 7B merge takes a while
        "lora_merge_cache": str(cache_dir("mergekit-lora")),
        "safe_serialization": True,
    }
    opts.update(overrides)
    return MergeOptions(**opts)


def _completed(out_dir: Path, digest: str) -> dict[str, Any] | None:
    marker = out_dir / MARKER
    if marker.is_file():
        meta = json.loads(marker.read_text(encoding="utf-8"))
        if meta.get("recipe_digest") == digest:
            return meta
    return None


def run_merge_recipe(
    recipe: MergeRecipe,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    check_generation: bool = True,
    lazy: bool = True,
    device: str = "cpu",
    card_name: str | None = None,
) -> dict[str, Any]:
    """Check, merge, check again, write card + metadata, move into ``out_dir``. Returns metadata."""
    from mergekit.merge import run_merge

    out_dir = Path(out_dir).resolve()
    digest = recipe_digest(recipe)
    done = _completed(out_dir, digest)
    if done is not None:
        LOG.info("merge already complete in %s; reusing it", out_dir)
        return done | {"reused": True}
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise MergeConfigError(f"output directory {out_dir} is not empty (pass overwrite to replace it)")

    summary = pre_merge_checks(recipe)  # raises before anything is written
    start = time.perf_counter()
    with atomic_dir(out_dir) as tmp:  # never a partial model at out_dir; an earlier one is replaced whole
        run_merge(
            recipe.config,
            str(tmp),
            options=merge_options(lazy=lazy, device=device),
            config_source=recipe.resolved_yaml(),
        )
        _copy_generation_config(recipe, tmp)
        checks = post_merge_checks(tmp, generate=check_generation)
        meta = _metadata(recipe, digest, summary | checks, time.perf_counter() - start)
        write_card(tmp, meta, name=card_name or out_dir.name)
        (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta | {"reused": False}


def _copy_generation_config(recipe: MergeRecipe, out: Path) -> None:
    """mergekit copies generation_config.json only with the base's tokenizer; with a
    ``tokenizer_source`` take it from that model (else the base), so EOS/pad stay right."""
    if (out / "generation_config.json").exists():
        return
    source = recipe.raw.get("tokenizer_source")
    for ref in (source, recipe.base_ref, *recipe.parents):
        parent = recipe.parents.get(ref) if isinstance(ref, str) else None
        if parent is not None and (parent.local_path / "generation_config.json").is_file():
            shutil.copy(parent.local_path / "generation_config.json", out / "generation_config.json")
            return


def _metadata(recipe: MergeRecipe, digest: str, checks: dict[str, Any], seconds: float) -> dict[str, Any]:
    from lmolt_hub.provenance import git_sha, library_versions

    base = recipe.base_ref
    parents = []
    for ref, p in recipe.parents.items():
        parents.append(p.as_dict() | {"role": "base" if ref == base else "input"})
    return {
        "kind": "merge",
        "method": recipe.method,
        "parents": parents,
        "parent_licenses": parent_licenses(recipe.parents.values()),
        "parameters": recipe.ratios,
        "dtype": recipe.raw.get("dtype"),
        "recipe_path": str(recipe.path) if recipe.path else None,
        "recipe_yaml": recipe.source_yaml,
        "recipe_variables": recipe.variables,
        "recipe_digest": digest,
        "checks": checks,
        "merge_seconds": round(seconds, 3),
        "versions": library_versions(("mergekit", "torch", "transformers", "peft", "lmolt-hub")),
        "git_sha": git_sha(),
    }
