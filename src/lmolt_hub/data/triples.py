"""Preference triples in both directions from a ``kind: triples`` recipe.

Per output split: load the source, validate (RDKit, InChIKey dedup), drop any
molecule already in an earlier split, take a seeded fraction. Per direction:
prompt = the paper's template around the source, chosen = the gold target,
rejected = the configured generator's output. Every row is kept, as the
authors did, also when the rejected output equals the gold target (same string,
or for SMILES the same molecule); ``negatives.drop_identical`` drops those.
Rows without a rejected output are dropped (empty ones unless ``drop_empty`` is
off). Each rule's kept and dropped rows are counted per direction for the card.
The ``kto`` config unpairs each triple into (prompt, chosen, True) and
(prompt, rejected, False).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from lmolt_hub.data.built import BuiltDataset
from lmolt_hub.data.chem import inchikey
from lmolt_hub.data.cleaning import CleanPair, clean_pairs, exclude, sample
from lmolt_hub.data.config import NegativesConfig, TriplesRecipe, recipe_to_dict
from lmolt_hub.data.negatives import Rejecter, make_rejecter
from lmolt_hub.data.sources import Pair, load_pairs
from lmolt_hub.data.summary import length_stats
from lmolt_hub.formats.direction import Direction
from lmolt_hub.formats.triples import KTO_COLUMNS, TRIPLE_COLUMNS, unpair
from lmolt_hub.prompts import TEMPLATE_VERSION, build_prompt, source_target

TRIPLE_FEATURES = datasets.Features({c: datasets.Value("string") for c in TRIPLE_COLUMNS})
KTO_FEATURES = datasets.Features(
    {**{c: datasets.Value("string") for c in KTO_COLUMNS if c != "label"}, "label": datasets.Value("bool")}
)


def split_order(recipe: TriplesRecipe) -> list[str]:
    """``train`` first: later splits drop molecules an earlier split already holds."""
    return ["train", *(s for s in recipe.splits if s != "train")]


def load_sources(recipe: TriplesRecipe, base_dir: Path) -> dict[str, tuple[list[Pair], dict[str, Any]]]:
    return {name: load_pairs(recipe.splits[name].source, base_dir) for name in split_order(recipe)}


def select_pairs(
    recipe: TriplesRecipe, loaded: dict[str, tuple[list[Pair], dict[str, Any]]]
) -> tuple[dict[str, list[CleanPair]], dict[str, dict[str, Any]]]:
    """The validated, seeded selection of each split (no generation), and its counts."""
    selected: dict[str, list[CleanPair]] = {}
    counts: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for name in split_order(recipe):
        cfg, (pairs, _) = recipe.splits[name], loaded[name]
        rows, drops = clean_pairs(pairs)
        rows, n_seen = exclude(rows, seen)
        if n_seen:
            drops["molecule_in_earlier_split"] = n_seen
        chosen = sample(rows, recipe.seed, name, cfg.fraction, cfg.limit)
        seen |= {r.inchikey for r in chosen}
        selected[name] = chosen
        counts[name] = {
            "source_rows": len(pairs),
            "valid_rows": len(rows),
            "selected": len(chosen),
            "drops": dict(sorted(drops.items())),
        }
    return selected, counts


def sampled_inchikeys(recipe: TriplesRecipe, base_dir: Path) -> set[str]:
    """Every molecule a triples recipe selects (before negatives): what an eval set must exclude."""
    selected, _ = select_pairs(recipe, load_sources(recipe, base_dir))
    return {r.inchikey for rows in selected.values() for r in rows}


# Rows a rule flags, in the order they are tested (a row counts under its first rule only).
# "missing" rules always drop (there is no rejected text); "identical" ones follow drop_identical.
TRIPLE_RULES = ("no_rejected_output", "empty_rejected", "rejected_equals_chosen", "rejected_same_molecule")
IDENTICAL_RULES = ("rejected_equals_chosen", "rejected_same_molecule")


def _rule(direction: str, chosen: str, rejected: str | None) -> str | None:
    if rejected is None:
        return "no_rejected_output"
    if not rejected.strip():
        return "empty_rejected"
    if rejected.strip() == chosen.strip():
        return "rejected_equals_chosen"
    if (
        direction == Direction.CAPTION2SMILES
        and inchikey(rejected) is not None
        and inchikey(rejected) == inchikey(chosen)
    ):
        return "rejected_same_molecule"  # a different SMILES of the gold molecule
    return None


def _drops(rule: str, neg: NegativesConfig) -> bool:
    if rule in IDENTICAL_RULES:
        return neg.drop_identical
    return rule == "no_rejected_output" or neg.drop_empty


def _direction_rows(
    direction: str, pairs: list[CleanPair], rejected: list[str | None], neg: NegativesConfig
) -> tuple[list[dict[str, str]], dict[str, dict[str, int]]]:
    """The triples of one direction, and per rule how many rows it flagged and kept or dropped."""
    rows: list[dict[str, str]] = []
    rules = {r: {"kept": 0, "dropped": 0} for r in TRIPLE_RULES}
    for pair, rej in zip(pairs, rejected, strict=True):
        source, target = source_target(direction, pair.molecule, pair.caption)
        rule = _rule(direction, target, rej)
        if rule:
            dropped = _drops(rule, neg)
            rules[rule]["dropped" if dropped else "kept"] += 1
            if dropped:
                continue
        rows.append(
            {
                "id": f"{pair.id}:{direction}",
                "direction": direction,
                "source": source,
                "prompt": build_prompt(direction, source),
                "chosen": target,
                "rejected": (rej or "").strip(),
                "molecule": pair.molecule,
                "caption": pair.caption,
                "template_version": TEMPLATE_VERSION,
            }
        )
    return rows, rules


def _columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    return {c: [r[c] for r in rows] for c in names}


def build_triples(recipe: TriplesRecipe, base_dir: Path) -> BuiltDataset:
    loaded = load_sources(recipe, base_dir)  # a bad source fails here, before anything else
    neg = recipe.negatives
    rejecters: dict[str, Rejecter] = {
        d: make_rejecter(d, getattr(neg, d), neg.generation, base_dir) for d in recipe.directions
    }
    selected, counts = select_pairs(recipe, loaded)
    triples: dict[str, list[dict[str, str]]] = {name: [] for name in selected}
    for direction in recipe.directions:
        # One call per direction over all splits: batches are fixed by the whole input set.
        sources = [
            source_target(direction, p.molecule, p.caption)[0] for rows in selected.values() for p in rows
        ]
        outputs = iter(rejecters[direction].outputs(sources))
        for name, pairs in selected.items():
            rejected = [next(outputs) for _ in pairs]
            rows, rules = _direction_rows(direction, pairs, rejected, neg)
            triples[name].extend(rows)
            counts[name].setdefault("directions", {})[direction] = {
                "rows": len(rows),
                "drops": {r: c["dropped"] for r, c in sorted(rules.items()) if c["dropped"]},
                "kept_flagged": {r: c["kept"] for r, c in sorted(rules.items()) if c["kept"]},
                "rules": rules,
                "lengths": {c: length_stats([r[c] for r in rows]) for c in ("source", "chosen", "rejected")},
            }
    default = datasets.DatasetDict(
        {
            n: datasets.Dataset.from_dict(_columns(r, TRIPLE_COLUMNS), features=TRIPLE_FEATURES)
            for n, r in triples.items()
        }
    )
    kto = datasets.DatasetDict(
        {
            n: datasets.Dataset.from_dict(unpair(_columns(r, TRIPLE_COLUMNS)), features=KTO_FEATURES)
            for n, r in triples.items()
        }
    )
    sources = {
        "splits": {n: info for n, (_, info) in loaded.items()},
        "negatives": {d: r.info for d, r in rejecters.items()},
    }
    summary = {"kind": "triples", "name": recipe.name, "splits": counts, "template_version": TEMPLATE_VERSION}
    return BuiltDataset(
        "triples", recipe.name, recipe_to_dict(recipe), {"default": default, "kto": kto}, summary, sources
    )
