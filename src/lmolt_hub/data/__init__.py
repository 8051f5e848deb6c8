"""Dataset recipes: preference triples and the unseen evaluation set, built, checked and published.

``build_from_config("recipes/data/default/triples.yaml")`` (``data/run.py``) builds the embedded
offline default; ``recipes/data/triples.yaml`` and ``recipes/data/eval_3k.yaml``
build the paper's datasets from L+M-24 on the Hub.
"""

from __future__ import annotations

from lmolt_hub.data.config import (
    DataError,
    EvalRecipe,
    ExcludeConfig,
    GenerationConfig,
    NegativesConfig,
    Recipe,
    RejectedConfig,
    SourceConfig,
    SplitConfig,
    TriplesRecipe,
    load_recipe,
    parse_recipe,
)
from lmolt_hub.data.run import build, build_from_config, resolve_repo_id

__all__ = [
    "DataError",
    "EvalRecipe",
    "ExcludeConfig",
    "GenerationConfig",
    "NegativesConfig",
    "Recipe",
    "RejectedConfig",
    "SourceConfig",
    "SplitConfig",
    "TriplesRecipe",
    "build",
    "build_from_config",
    "load_recipe",
    "parse_recipe",
    "resolve_repo_id",
]
