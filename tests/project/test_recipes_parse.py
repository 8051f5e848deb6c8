"""Recipes are data: every YAML under recipes/ is parsed by the parser of its kind.

Training recipes are checked in depth in test_training_config.py; this file makes sure no
YAML anywhere under recipes/ escapes parsing.

A YAML that no parser claims fails the test, so a new recipe cannot go unchecked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
ALL_YAML = sorted(p for p in RECIPES.rglob("*.y*ml") if p.suffix in {".yaml", ".yml"})
METHODS = {"sft", "dpo", "cpo", "kto"}


def _kind(path: Path) -> str:
    rel = path.relative_to(RECIPES).parts
    if rel[0] == "data" or (len(rel) >= 2 and rel[-2] == "data"):
        return "data"
    if rel[0] == "accelerate_configs":
        return "accelerate"
    if path.name == "chain.yaml" or path.name.startswith("chain-"):  # chain-<variant>.yaml: a named variant
        return "chain"
    if len(rel) >= 2 and rel[-2] == "merges":
        return "merge"
    if len(rel) >= 2 and rel[-2] in METHODS:
        return rel[-2]
    if rel[:2] == ("cpu-study", "base"):
        return "sft"  # the study's base models are full SFT runs from a random init
    return "unknown"


def _parse(path: Path) -> object:
    kind = _kind(path)
    if kind == "data":
        from lmolt_hub.data import load_recipe

        return load_recipe(path)
    if kind == "accelerate":
        from accelerate.commands.config.config_args import ClusterConfig

        return ClusterConfig.from_yaml_file(str(path))
    if kind == "chain":
        from lmolt_hub.pipelines.chain import load_chain

        return load_chain(path)
    if kind == "merge":
        from lmolt_hub.merging import load_merge_config

        return load_merge_config(path, variables={"org": "lmolt"}, resolve=False)
    if kind in METHODS:
        import torch

        from lmolt_hub.training import parse_recipe

        # bf16 recipes need a GPU; without one, TrainingArguments wants use_cpu (the only override).
        return parse_recipe(kind, str(path), [] if torch.cuda.is_available() else ["--use_cpu", "true"])
    raise AssertionError(
        f"{path}: no parser claims this YAML (add its kind to tests/project/test_recipes_parse.py)"
    )


def test_recipes_exist():
    kinds = {_kind(p) for p in ALL_YAML}
    assert {"data", "accelerate", "chain", "merge", *METHODS} <= kinds


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_parses(path: Path):
    assert _parse(path) is not None
