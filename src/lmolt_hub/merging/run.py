"""The merging stage's entry: ``merge_from_config`` (read, resolve, check, merge, push) and
``load_merge_config`` (read and resolve a recipe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmolt_hub.merging.config import MergeRecipe, read_merge_config
from lmolt_hub.merging.inputs import resolve_recipe
from lmolt_hub.merging.merge import recipe_digest, run_merge_recipe
from lmolt_hub.merging.publish import check_push_target, push_merge


def load_merge_config(
    path: str | Path, variables: dict[str, str] | None = None, resolve: bool = True
) -> MergeRecipe:
    """Read, substitute and validate a merge recipe; by default resolve every input to a local
    directory (downloading Hub inputs at their pinned commits)."""
    recipe = read_merge_config(path, variables)
    if resolve:
        resolve_recipe(recipe, Path(path).parent)
    return recipe


def merge_from_config(
    path: str | Path,
    out_dir: str | Path,
    push_to: str | None = None,
    *,
    variables: dict[str, str] | None = None,
    overwrite: bool = False,
    check_generation: bool = True,
    lazy: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Merge per a mergekit-schema recipe; returns the merge metadata plus ``output_dir``,
    ``hub_model_id`` and ``hub_revision`` (the pushed commit sha, or None when not pushed)."""
    recipe = load_merge_config(path, variables=variables)
    if push_to:  # a conflicting Hub repo is an error before any weight is written
        check_push_target(push_to, recipe_digest(recipe), overwrite)
    meta = run_merge_recipe(
        recipe,
        out_dir,
        overwrite=overwrite,
        check_generation=check_generation,
        lazy=lazy,
        device=device,
        card_name=push_to,
    )
    revision = push_merge(out_dir, push_to, overwrite=overwrite) if push_to else None
    return meta | {
        "output_dir": str(Path(out_dir).resolve()),
        "hub_model_id": push_to,
        "hub_revision": revision,
    }
