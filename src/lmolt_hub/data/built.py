"""What a build produces before anything is written: datasets per config, summary, extra files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import datasets


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
