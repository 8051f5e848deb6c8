"""Write a built dataset to disk (Hub layout + card) and publish it in one commit.

The folder is written next to its destination and renamed into place only when
complete, then checked against the dataset contract. Publishing uploads that
checked folder in a single ``create_commit`` (parquet shards in the layout
``DatasetDict.push_to_hub`` uses, ``configs`` in the card's front matter), so the
Hub never holds half a dataset and its files are byte-for-byte the ones built
and checked here. ``load_dataset("<org>/<name>"[, "kto"])`` reads them back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from lmolt_hub.data.built import BUILD_INFO, CONFIG_DIRS, BuiltDataset, shard_path
from lmolt_hub.data.check import check_dir
from lmolt_hub.data.config import DataError
from lmolt_hub.data.sources import first_line
from lmolt_hub.formats.eval_set import FCD_STATS_DIR
from lmolt_hub.hub.cards import DatasetMeta, EvalSetMeta
from lmolt_hub.hub.push import push_folder
from lmolt_hub.hub.render import render_card
from lmolt_hub.io import atomic_dir
from lmolt_hub.prompts import TEMPLATE_VERSION
from lmolt_hub.provenance import git_sha, library_versions

TEMPLATES = {"triples": "dataset_triples.md.j2", "eval": "dataset_eval.md.j2"}
MANAGED_DIRS = ("data", "kto", FCD_STATS_DIR)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """No per-shard 'Creating parquet' bars: they are instant and bury the summary."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _configs_front_matter(built: BuiltDataset) -> list[dict[str, Any]]:
    return [
        {
            "config_name": config,
            "data_files": [
                {"split": split, "path": f"{CONFIG_DIRS.get(config, config)}/{split}-*"} for split in dd
            ],
            **({"default": True} if config == "default" else {}),
        }
        for config, dd in built.configs.items()
    ]


def card_data(built: BuiltDataset, repo_id: str | None) -> dict[str, Any]:
    recipe = built.recipe
    tags = ["chemistry", "molecules", "smiles", "molecule-captioning", "lmolt"]
    if built.kind == "triples":
        tags += ["preference", "dpo", "kto"]
    return {
        "license": recipe["license"],
        "language": ["en"],
        "pretty_name": recipe["pretty_name"],
        "task_categories": ["text-generation", "translation"],
        "tags": tags,
        "configs": _configs_front_matter(built),
        **(EvalSetMeta if built.kind == "eval" else DatasetMeta)(
            kind=built.kind, repo_id=repo_id, template_version=TEMPLATE_VERSION, recipe=recipe,
            sources=built.sources, summary=built.summary,
            rows={c: {s: len(d) for s, d in dd.items()} for c, dd in built.configs.items()},
            versions=library_versions(("lmolt-hub", "datasets", "rdkit", "transformers", "torch", "pyarrow")),
            git_sha=git_sha(),
        ).to_front_matter(),
    }  # fmt: skip


def render(built: BuiltDataset, repo_id: str | None) -> str:
    data = card_data(built, repo_id)
    recipe_yaml = yaml.safe_dump(built.recipe, sort_keys=False, allow_unicode=True).strip()
    return render_card(
        TEMPLATES[built.kind],
        data,
        lm=data["lmolt"],
        recipe=built.recipe,
        recipe_yaml=recipe_yaml,
        summary=built.summary,
        sources=built.sources,
        repo_id=repo_id or f"<org>/{built.name}",
        **built.card_context,
    )


def write_built(built: BuiltDataset, out_dir: Path, repo_id: str | None = None) -> list[str]:
    """Write parquet shards, card, build info and extra files; swap into ``out_dir`` when complete."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:  # a failed or refused build never replaces what is there
        files = _write_tree(built, tmp, repo_id)
        check_dir(tmp)  # the contract
        check_output_dir(out_dir)
    return sorted(files)


def _write_tree(built: BuiltDataset, tmp: Path, repo_id: str | None) -> list[str]:
    tmp.mkdir()
    files: list[str] = []
    for config, dd in built.configs.items():
        for split, ds in dd.items():
            rel = shard_path(config, split)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            with _quiet_datasets():
                ds.to_parquet(str(tmp / rel))
            files.append(rel)
    for rel, content in built.extra_files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(content)
        files.append(rel)
    info = {
        "kind": built.kind,
        "name": built.name,
        "recipe": built.recipe,
        "sources": built.sources,
        "summary": built.summary,
    }
    (tmp / BUILD_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (tmp / "README.md").write_text(render(built, repo_id), encoding="utf-8")
    return files + [BUILD_INFO, "README.md"]


def check_output_dir(out_dir: Path) -> None:
    """``out_dir`` may be replaced only when it is absent, empty, or an earlier build."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / BUILD_INFO).is_file())
    ):
        raise DataError(
            f"output folder {out_dir} exists and is not an earlier lmolt build; choose another --output-dir"
        )


def push_dir(out_dir: Path, repo_id: str, private: bool = False, commit_message: str | None = None) -> str:
    """Check ``out_dir`` against the contract, then upload it as one commit; returns the commit sha."""
    check_dir(out_dir)  # raises: nothing that fails the contract is pushed
    n_files = sum(1 for p in Path(out_dir).rglob("*") if p.is_file())
    try:  # one commit; files of an earlier build that this one no longer has are deleted in it
        return push_folder(
            out_dir, repo_id, repo_type="dataset", private=private, error=DataError,
            message=commit_message or f"lmolt-hub data build ({n_files} files)",
            delete=[f"{d}/*" for d in MANAGED_DIRS],
        )  # fmt: skip
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line; the single commit either landed or did not
        raise DataError(f"push to {repo_id!r} failed: {first_line(exc)}") from None
