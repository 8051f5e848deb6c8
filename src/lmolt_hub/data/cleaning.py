"""Validation and seeded selection of molecule-caption pairs.

Every dropped row is counted by reason (never silently). Selection is by a
seeded SHA-256 order of the pair ids, so it does not depend on numpy's random
streams or on the order the source lists its rows.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

from tqdm.auto import tqdm

from lmolt_hub.data.chem import inchikey
from lmolt_hub.data.sources import Pair

PROGRESS_MIN = 20_000


@dataclass(frozen=True)
class CleanPair:
    id: str
    molecule: str
    caption: str
    inchikey: str


def seeded_key(seed: int, *parts: str) -> str:
    return hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).hexdigest()


def clean_pairs(pairs: list[Pair], seed: int | None = None) -> tuple[list[CleanPair], Counter]:
    """Drop empty and RDKit-invalid rows, then keep one row per InChIKey.

    With ``seed`` None the first row of a molecule is kept; otherwise a seeded choice among its
    rows (one caption per molecule for sources with several captions each).
    """
    drops: Counter = Counter()
    valid: list[CleanPair] = []
    # RDKit takes about a minute on L+M-24's 127k pairs: show progress there, not on small sets.
    for pair in tqdm(
        pairs, desc="validating pairs", unit="pair", disable=len(pairs) < PROGRESS_MIN, mininterval=1
    ):
        molecule, caption = pair.molecule.strip(), pair.caption.strip()
        if not molecule:
            drops["empty_molecule"] += 1
        elif not caption:
            drops["empty_caption"] += 1
        elif (key := inchikey(molecule)) is None:
            drops["invalid_smiles"] += 1
        else:
            valid.append(CleanPair(pair.id, molecule, caption, key))
    best: dict[str, CleanPair] = {}
    for row in valid:
        kept = best.get(row.inchikey)
        if kept is None or (seed is not None and _rank(seed, row) < _rank(seed, kept)):
            best[row.inchikey] = row
    keep = {id(row) for row in best.values()}
    out = [row for row in valid if id(row) in keep]
    drops["duplicate_inchikey"] += len(valid) - len(out)
    return out, +drops


def _rank(seed: int, row: CleanPair) -> str:
    return seeded_key(seed, row.inchikey, row.id, row.caption)


def exclude(rows: list[CleanPair], keys: set[str]) -> tuple[list[CleanPair], int]:
    """Rows whose molecule is not in ``keys``, and how many were removed."""
    kept = [row for row in rows if row.inchikey not in keys]
    return kept, len(rows) - len(kept)


def sample(
    rows: list[CleanPair], seed: int, salt: str, fraction: float = 1.0, limit: int | None = None
) -> list[CleanPair]:
    """A seeded subset of ``round(fraction * len(rows))`` rows (at most ``limit``), in source order."""
    k = round(fraction * len(rows))
    if fraction > 0 and rows:
        k = max(k, 1)
    if limit is not None:
        k = min(k, limit)
    if k >= len(rows):
        return list(rows)
    order = sorted(range(len(rows)), key=lambda i: seeded_key(seed, salt, rows[i].id, rows[i].inchikey))
    chosen = sorted(order[:k])
    return [rows[i] for i in chosen]
