"""What a build produces: datasets per config, summary, extra files, and where they sit in its folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import datasets

BUILD_INFO = "lmolt_build.json"
CONFIG_DIRS = {"default": "data"}  # other configs live in a folder named after them, as push_to_hub does


def shard_path(config: str, split: str) -> str:
    """Where split ``split`` of config ``config`` is written in a build folder (and in the repo)."""
    return f"{CONFIG_DIRS.get(config, config)}/{split}-00000-of-00001.parquet"


@dataclass
class BuiltDataset:
    kind: str  # "triples" or "eval"
    name: str
    recipe: dict[str, Any]
    configs: dict[str, datasets.DatasetDict]  # config name -> splits
    summary: dict[str, Any]
    sources: dict[str, Any]
    extra_files: dict[str, bytes] = field(default_factory=dict)  # repo path -> content
    card_context: dict[str, Any] = field(default_factory=dict)
