"""Training recipes: SFT, DPO, CPO and KTO with QLoRA, pushed to the Hub with model cards.

``train(method, config_path, overrides, settings=TrainSettings(...))`` (``training/run.py``) is the
one entry point used by the recipe scripts (``recipes/<method>.py``), ``lmolt-hub train`` and
``lmolt-hub chain``.
"""

from __future__ import annotations

from lmolt_hub.training.config import RecipeError, parse_recipe
from lmolt_hub.training.run import TrainSettings, main_for, train

__all__ = ["RecipeError", "TrainSettings", "main_for", "parse_recipe", "train"]
