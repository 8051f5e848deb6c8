"""Paths of the data shipped inside the package (see resources/data/SOURCES.md).

The YAML recipes ship too: ``resources/recipes`` is a link to the checkout's top-level
``recipes/`` (the one copy of each file), which the wheel build follows, so the quickstart and
``lmolt-hub study cpu`` find their recipes in an installed wheel as in a clone.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

DATA = Path(str(files("lmolt_hub") / "resources" / "data"))
CHEBI20_DIR = DATA / "chebi20"
MOLT5_PREDICTIONS_DIR = DATA / "molt5_predictions"
SCIBERT_VOCAB = DATA / "scibert_scivocab_uncased" / "vocab.txt"
PAPER_TABLES = DATA / "paper_tables.json"
HUB_CARDS = Path(str(files("lmolt_hub") / "hub_cards"))
RECIPES = Path(str(files("lmolt_hub") / "resources" / "recipes"))
# The evaluate metric modules: a link to the checkout's eval_harness/metrics/ (one copy, like recipes)
METRIC_MODULES = Path(str(files("lmolt_hub") / "resources" / "metric_modules"))


def recipe(relative: str) -> Path:
    """A shipped recipe by its path under ``recipes/``, e.g. ``tiny/slerp-cpo/chain.yaml``."""
    path = RECIPES / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped recipe recipes/{relative} (looked in {RECIPES}); reinstall lmolt-hub "
            "(pip install lmolt-hub, or pip install -e . in a clone)"
        )
    return path


def chebi20_split(split: str) -> Path:
    """``test`` or ``validation`` TSV (CID, SMILES, description)."""
    path = CHEBI20_DIR / f"{split}.txt"
    if not path.exists():
        raise FileNotFoundError(f"no bundled ChEBI-20 split {split!r}: expected {path}")
    return path


def molt5_predictions(size: str, direction: str) -> Path:
    """Bundled MolT5 outputs on the ChEBI-20 test set, e.g. ("large", "caption2smiles")."""
    path = MOLT5_PREDICTIONS_DIR / f"molt5-{size}-{direction}.txt"
    if not path.exists():
        raise FileNotFoundError(f"no bundled MolT5 predictions for {size}/{direction}: expected {path}")
    return path


def cache_dir(*parts: str) -> Path:
    """lmolt-hub's cache: ``$LMOLT_CACHE``, else ``$XDG_CACHE_HOME/lmolt-hub`` (``~/.cache/lmolt-hub``)."""
    base = (
        os.environ.get("LMOLT_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lmolt-hub"
    )
    return Path(base).joinpath(*parts)
