"""Model merging (TIES, SLERP, ...) with mergekit's library API, checked and pushed with a card.

``merge_from_config(path, out_dir, push_to=None)`` is the one call: load and resolve the recipe,
check the inputs, merge with lazy loading into a temporary directory, check the output, move it
into place, and (optionally) push it to the Hub in one commit.
"""

from __future__ import annotations

from lmolt_hub.merging.config import MergeConfigError, MergeRecipe
from lmolt_hub.merging.run import load_merge_config, merge_from_config

__all__ = ["MergeConfigError", "MergeRecipe", "load_merge_config", "merge_from_config"]
