"""The unseen evaluation set from a ``kind: eval`` recipe.

Validate the source (RDKit, one caption per molecule chosen with the seed),
remove every molecule of the training/validation subsets by InChIKey, take
``n`` pairs in a seeded order, and compute the FCD reference statistics of the
chosen molecules. The contamination counts go into the card; a final check
recomputes the overlap and refuses to build if it is not zero.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import datasets

from lmolt_hub.data.built import BuiltDataset
from lmolt_hub.data.chem import inchikey
from lmolt_hub.data.cleaning import clean_pairs, exclude, sample
from lmolt_hub.data.config import (
    DataError,
    EvalRecipe,
    ExcludeConfig,
    TriplesRecipe,
    load_recipe,
    recipe_to_dict,
)
from lmolt_hub.data.sources import first_line, load_pairs, resolve_path
from lmolt_hub.data.summary import length_stats
from lmolt_hub.data.triples import sampled_inchikeys
from lmolt_hub.formats.eval_set import EVAL_COLUMNS, METRIC_CONFIG_FILE, fcd_stats_path
from lmolt_hub.hub.ref import repo_info

EVAL_FEATURES = datasets.Features({c: datasets.Value("string") for c in EVAL_COLUMNS})


def metric_config_bytes(recipe: EvalRecipe, fcd_file: str | None) -> bytes:
    """``metric_config.json``: how results on this set are scored (read by the harness and the
    leaderboard reviewer through ``lmolt_hub.metrics.metric_config.load_metric_config``)."""
    import json

    m = recipe.metrics
    doc = {
        "format": 1,
        "split": "test",
        "nli_model": m.nli_model,
        "nli_revision": m.nli_revision,
        "hallucination": m.hallucination,
        "fcd": True,  # without a stats file the reference statistics are computed from the set
        "fcd_convention": recipe.fcd_convention,
        "fcd_stats_file": fcd_file,
        "fingerprint_convention": m.fingerprint_convention,
        "bootstrap_resamples": m.bootstrap_resamples,
        "bootstrap_seed": m.bootstrap_seed,
        "confidence": 0.95,
    }
    if m.modules:  # pinned at their commit shas now, so later module commits never re-score this set
        from lmolt_hub.metrics.modules import pin_modules

        doc["modules"] = pin_modules(m.modules)
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def fcd_api() -> Any:
    try:
        from lmolt_hub.metrics import fcd
    except ImportError as exc:
        raise DataError(
            f"FCD reference statistics need lmolt_hub.metrics.fcd ({first_line(exc)}); set fcd_stats: false"
        ) from None
    for name in ("reference_stats", "stats_filename", "save_stats"):
        if not hasattr(fcd, name):
            raise DataError(f"lmolt_hub.metrics.fcd has no {name}(); set fcd_stats: false")
    return fcd


def keys_digest(keys: set[str]) -> str:
    """SHA-256 of the sorted InChIKeys: lets anyone verify the exclusion set of a rebuild."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


def excluded_keys(ex: ExcludeConfig, base_dir: Path) -> tuple[set[str], dict[str, Any]]:
    """InChIKeys of the molecules one exclusion entry names, and how it was resolved."""
    if ex.recipe is not None:
        path = resolve_path(ex.recipe, base_dir)
        recipe = load_recipe(path)
        if not isinstance(recipe, TriplesRecipe):
            raise DataError(f"exclude recipe {ex.recipe}: expected a 'triples' recipe, got {recipe.kind!r}")
        keys = sampled_inchikeys(recipe, path.parent)
        return keys, {
            "recipe": ex.recipe,
            "dataset": None,
            "revision": None,
            "sha": None,
            "molecules": len(keys),
            "inchikeys_sha256": keys_digest(keys),
            "recipe_config": recipe_to_dict(recipe),  # so the card holds every parameter used
        }
    local = resolve_path(ex.dataset or "", base_dir)
    ref, sha = (str(local), None) if local.exists() else (ex.dataset or "", None)
    try:
        if not local.exists():  # pin what is read to the commit the revision names now
            pinned = repo_info(
                ref, ex.revision, repo_type="dataset", error=DataError, offline_is_missing=True
            )
            sha = pinned.sha
        dd = datasets.load_dataset(ref, "default", revision=sha)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"exclude dataset {ex.dataset!r}: cannot load ({first_line(exc)})") from None
    molecules = [m for split in dd.values() for m in split["molecule"]]
    keys = {k for k in map(inchikey, molecules) if k}
    return keys, {
        "recipe": None,
        "dataset": ex.dataset,
        "revision": ex.revision,
        "sha": sha,
        "molecules": len(keys),
        "inchikeys_sha256": keys_digest(keys),
        "recipe_config": None,
    }


def build_eval(recipe: EvalRecipe, base_dir: Path) -> BuiltDataset:
    fcd = fcd_api() if recipe.fcd_stats else None  # checked before any work
    pairs, info = load_pairs(recipe.source, base_dir)
    excluded: set[str] = set()
    exclusions = []
    for ex in recipe.exclude:
        keys, desc = excluded_keys(ex, base_dir)
        excluded |= keys
        exclusions.append(desc)
    # one caption per molecule: seeded, or the first in source order (the authors' choice)
    rows, drops = clean_pairs(pairs, seed=None if recipe.caption_choice == "first" else recipe.seed)
    candidates, n_excluded = exclude(rows, excluded)
    chosen = sample(candidates, recipe.seed, "eval", 1.0, recipe.n)
    if recipe.n is not None and len(chosen) < recipe.n and not recipe.allow_fewer:
        raise DataError(
            f"only {len(chosen)} unseen molecules available, recipe.n is {recipe.n} (set allow_fewer: true or lower n)"
        )
    overlap = len({r.inchikey for r in chosen} & excluded)
    if overlap:  # cannot happen by construction; checked because a leak would void every result
        raise DataError(f"contamination check failed: {overlap} eval molecules are in the training subsets")
    contamination = {
        "molecules_excluded": len(excluded),
        "candidates_before_exclusion": len(rows),
        "candidates_removed_as_seen": n_excluded,
        "candidates_after_exclusion": len(candidates),
        "overlap_after_exclusion": overlap,
    }
    data = {
        "id": [r.id for r in chosen],
        "molecule": [r.molecule for r in chosen],
        "caption": [r.caption for r in chosen],
        "inchikey": [r.inchikey for r in chosen],
    }
    dd = datasets.DatasetDict({"test": datasets.Dataset.from_dict(data, features=EVAL_FEATURES)})
    extra: dict[str, bytes] = {}
    fcd_info: dict[str, Any] = {}
    if fcd is not None:
        smiles = data["molecule"]
        fname = fcd.stats_filename(smiles, recipe.fcd_convention)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / fname
            fcd.save_stats(fcd.reference_stats(smiles, convention=recipe.fcd_convention), path)
            extra[fcd_stats_path(fname)] = path.read_bytes()
        fcd_info = {
            "file": fcd_stats_path(fname),
            "convention": recipe.fcd_convention,
            "molecules": len(smiles),
        }
    extra[METRIC_CONFIG_FILE] = metric_config_bytes(recipe, fcd_info.get("file"))
    split_summary = {
        "source_rows": len(pairs),
        "valid_rows": len(rows),
        "selected": len(chosen),
        "drops": dict(sorted(drops.items())),
        "lengths": {"molecule": length_stats(data["molecule"]), "caption": length_stats(data["caption"])},
    }
    summary = {
        "kind": "eval",
        "name": recipe.name,
        "splits": {"test": split_summary},
        "contamination": contamination,
    }
    sources = {"source": info, "exclude": exclusions, "fcd_stats": fcd_info}
    return BuiltDataset("eval", recipe.name, recipe_to_dict(recipe), {"default": dd}, summary, sources, extra)
