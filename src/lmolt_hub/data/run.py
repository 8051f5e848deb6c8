"""The data stage's entry: ``build_from_config`` builds a recipe's dataset, writes it and optionally
pushes it; ``build`` returns it in memory."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lmolt_hub.data.config import DataError, Recipe, TriplesRecipe, load_recipe

_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def resolve_repo_id(push_to: str, name: str) -> str:
    """``org`` -> ``org/<name>``; ``org/name`` as given. A malformed id is an error before any work."""
    parts = push_to.strip().split("/")
    if len(parts) == 1:
        parts.append(name)
    if len(parts) != 2 or not all(_REPO_PART.match(p) for p in parts):
        raise DataError(f"push target {push_to!r}: expected ORG or ORG/NAME")
    return "/".join(parts)


def build(recipe: Recipe, base_dir: Path):
    """The in-memory dataset of a parsed recipe (nothing written)."""
    if isinstance(recipe, TriplesRecipe):
        from lmolt_hub.data.triples import build_triples

        return build_triples(recipe, base_dir)
    from lmolt_hub.data.eval_set import build_eval

    return build_eval(recipe, base_dir)


def build_from_config(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    output_dir: str | Path | None = None,
    push_to: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Build the dataset of a recipe, write it to ``output_dir`` and optionally push it.

    Returns ``kind``, ``name``, ``output_dir``, ``files``, ``summary``, ``repo_id`` and
    ``revision`` (the commit pushed, or None).
    """
    from lmolt_hub.data.publish import check_output_dir, push_dir, write_built
    from lmolt_hub.data.summary import format_summary

    recipe = load_recipe(path, overrides)
    target = push_to or recipe.push_to
    repo_id = resolve_repo_id(target, recipe.name) if target else None
    if repo_id:
        from huggingface_hub import get_token

        if not get_token():
            raise DataError(f"pushing to {repo_id!r} needs a Hub token (HF_TOKEN or `hf auth login`)")
    out = Path(output_dir or recipe.output_dir or Path("outputs") / "data" / recipe.name)
    check_output_dir(out)  # before any work: never replace a folder that is not an earlier build
    built = build(recipe, Path(path).resolve().parent)
    if not quiet:
        print(format_summary(built.summary))
    files = write_built(built, out, repo_id)  # checked against the contract before it lands
    revision = push_dir(out, repo_id, private=recipe.private) if repo_id else None
    return {
        "kind": built.kind,
        "name": built.name,
        "output_dir": str(out),
        "files": files,
        "summary": built.summary,
        "repo_id": repo_id,
        "revision": revision,
    }
