"""RDKit checks for dataset building: parse a SMILES, its canonical InChIKey.

Molecules are compared by standard InChIKey (not by string): two SMILES of the
same molecule written differently are the same molecule for deduplication and
for the eval set's contamination check.
"""

from __future__ import annotations

from functools import lru_cache

from rdkit import Chem, rdBase


@lru_cache(maxsize=200_000)
def inchikey(smiles: str) -> str | None:
    """Standard InChIKey of ``smiles``; None when RDKit cannot parse it (or it is empty)."""
    if not smiles or not smiles.strip():
        return None
    with rdBase.BlockLogs():  # invalid SMILES are expected and counted, not logged
        mol = Chem.MolFromSmiles(smiles.strip())
        if mol is None:
            return None
        key = Chem.MolToInchiKey(mol)
    return key or None


def is_valid_smiles(smiles: str) -> bool:
    return inchikey(smiles) is not None
