"""Caption -> molecule metrics, as the official MolT5 / L+M-24 scripts define them.

From `mol_translation_metrics.py` (L+M-24 version):
- BLEU: nltk ``corpus_bleu`` (default 4-gram weights, no smoothing) over the characters of the SMILES;
- exact match: share of rows where ``MolToInchi(MolFromSmiles(out)) == MolToInchi(MolFromSmiles(gt))``
  (no exception); denominator = all rows;
- Levenshtein: mean ``Levenshtein.distance(out, gt)`` over all rows;
- validity: 1 - share of rows where parsing either SMILES or converting it to InChI raised
  (RDKit returns ``None`` for an unparsable SMILES, and ``MolToInchi(None)`` raises).

From `fingerprint_metrics.py`:
- MACCS (``MACCSkeys.GenMACCSKeys``), RDKit (``Chem.RDKFingerprint``, here from the equivalent
  ``rdFingerprintGenerator`` RDKit generator with the same defaults) and Morgan
  (``AllChem.GetMorganFingerprint(m, 2)``, a *count* fingerprint, here from the equivalent
  ``rdFingerprintGenerator`` Morgan generator's sparse count fingerprint) Tanimoto similarities of
  output vs reference. Convention ``lpm24`` (L+M-24, the default and what the paper used): a row
  whose output does not parse scores 0 and the mean runs over all rows. Convention ``molt5``
  (MolT5): such rows are dropped and the mean runs over valid outputs only.
- uniqueness (L+M-24): distinct output strings among the parsable outputs / number of parsable outputs.

Rows whose *reference* does not parse (the official scripts crash on them) get no fingerprint
similarity: 0 under ``lpm24``, dropped under ``molt5``.

Speed: each distinct SMILES string is parsed once per process, in the metrics' process pool on all
cores for large batches (``metrics.parallel``), which returns its InChI, fingerprints and canonical
SMILES (FCD's input); the references are shared by every model scored on the same evaluation set, so
their part is cached on disk per reference set, written by the first (cold) run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

FINGERPRINT_CONVENTIONS = ("lpm24", "molt5")
MORGAN_RADIUS = 2
REFERENCES_CACHE_FORMAT = 3  # JSON with canonical SMILES (2 had none; 1 was a pickle: never read)


def max_smiles_chars() -> int:
    """Longest SMILES handed to RDKit; longer strings count as unparsable, without calling RDKit.

    RDKit's SMILES writer recurses once per atom of a chain and segfaults on the C stack (measured
    with RDKit 2026.9: a 19,000-atom chain crashes with an 8 MB stack, 5,000 with 2 MB, 3,000 with
    1 MB), which would kill the harness or the leaderboard reviewer. 4,096 characters is 2.5x the
    longest ChEBI-20 molecule (1,598) and below the crash point for stacks of 2 MB and more (threads
    get 2 MB when the stack is unlimited); smaller stack limits lower the cap in proportion.
    """
    import resource

    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    if soft == resource.RLIM_INFINITY or soft >= 2 * 1024 * 1024:
        return 4096
    return max(256, soft // 1024)  # ~1 character per KiB: a 4x margin under the measured crash


MAX_SMILES_CHARS = max_smiles_chars()


def parse_smiles(smiles: str):
    """``Chem.MolFromSmiles`` behind the length guard (:func:`max_smiles_chars`); None if too long."""
    from rdkit import Chem

    if len(smiles) > MAX_SMILES_CHARS:
        return None
    return Chem.MolFromSmiles(smiles)


def _quiet_rdkit() -> None:
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


@dataclass(frozen=True)
class MolInfo:
    """What the metrics need from one SMILES string."""

    valid: bool  # RDKit parsed it (a Mol object, possibly with 0 atoms for "")
    inchi: str | None  # None when the mol is None (MolToInchi(None) raises in the official script)


class MoleculeCache:
    """Per-process memo of RDKit work, keyed by the exact SMILES string."""

    def __init__(self, max_items: int = 200_000) -> None:
        self.max_items = max_items
        self._mols: dict[str, object] = {}
        self._inchi: dict[str, str | None] = {}
        self._fps: dict[str, tuple] = {}
        self._canon: dict[str, str | None] = {}

    def mol(self, smiles: str):
        if smiles not in self._mols:
            if len(self._mols) >= self.max_items:
                self._mols.clear()
            self._mols[smiles] = parse_smiles(smiles)
        return self._mols[smiles]

    def inchi(self, smiles: str) -> str | None:
        if smiles not in self._inchi:
            self.prefetch([smiles])
        return self._inchi[smiles]

    def fingerprints(self, smiles: str) -> tuple | None:
        """(MACCS, RDKit, Morgan-count) fingerprints, or None when the SMILES does not parse."""
        if smiles not in self._fps:
            self.prefetch([smiles])
        return self._fps[smiles]

    def canonical(self, smiles: str) -> str | None:
        """``MolToSmiles(MolFromSmiles(s))`` (FCD's canonical form), or None when it does not parse."""
        if smiles not in self._canon:
            self.prefetch([smiles])
        return self._canon[smiles]

    def prefetch(self, smiles: list[str]) -> None:
        """Parse, InChI-convert, fingerprint and canonicalise the new SMILES in bulk, on all cores.

        RDKit holds the GIL in these calls (threads do not help), so large batches go to the
        metrics' process pool, whose workers parse each string themselves and send back InChI,
        fingerprints and canonical SMILES (through the pool's pipe, never a file); small batches
        run here.
        """
        from lmolt_hub.metrics import parallel

        todo = [s for s in dict.fromkeys(smiles) if s not in self._fps or s not in self._canon]
        if not todo:
            return
        if len(self._fps) + len(todo) > self.max_items:
            self._fps.clear()
            self._inchi.clear()
            self._canon.clear()
        parts = parallel.gather(parallel.submit_chunks(_describe, todo, min_parallel=512))
        for s, (inchi, fps, canon) in zip(todo, (r for part in parts for r in part), strict=True):
            self._inchi[s] = inchi
            self._fps[s] = fps
            self._canon[s] = canon

    def save_references(self, references: list[str], path: Path) -> None:
        """Persist InChI and fingerprints of ``references`` (an evaluation set is scored many times).

        JSON with RDKit's own binary fingerprint encoding in base64: reading it back runs no code
        (a pickle cache could be planted to execute code in whoever scores next).
        """
        import base64

        from lmolt_hub.io import write_json

        rows = {}
        for r in dict.fromkeys(references):
            fps = self.fingerprints(r)
            enc = None if fps is None else [base64.b64encode(fp.ToBinary()).decode() for fp in fps]
            rows[r] = [self.inchi(r), enc, self.canonical(r)]
        write_json(path, {"format": REFERENCES_CACHE_FORMAT, "rows": rows}, newline=False)

    def load_references(self, path: Path) -> bool:
        """Seed the memo from ``save_references``; False if the file is missing or unreadable."""
        import base64
        import json

        from rdkit import DataStructs

        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != REFERENCES_CACHE_FORMAT:
                return False
            loaded = {}
            for smiles, (inchi, enc, canon) in doc["rows"].items():
                fps = None
                if enc is not None:
                    maccs, rdk, morgan = (base64.b64decode(e) for e in enc)
                    fps = (
                        DataStructs.ExplicitBitVect(maccs),
                        DataStructs.ExplicitBitVect(rdk),
                        DataStructs.ULongSparseIntVect(morgan),
                    )
                text = lambda x: x if isinstance(x, str) else None  # noqa: E731
                loaded[str(smiles)] = (text(inchi), fps, text(canon))
        except Exception:  # noqa: BLE001 - a cache: a damaged file is recomputed
            return False
        for smiles, (inchi, fps, canon) in loaded.items():
            self._inchi[smiles] = inchi
            self._fps[smiles] = fps
            self._canon[smiles] = canon
        return True


def references_cache_path(references: list[str], cache_dir: Path | str | None = None) -> Path:
    """Cache file of the references' InChI and fingerprints, keyed by a hash of the references."""
    import hashlib

    import rdkit

    from lmolt_hub.resources import cache_dir as lmolt_cache_dir

    h = hashlib.sha256(f"rdkit {rdkit.__version__}\n".encode())
    for r in sorted(set(references)):
        h.update(r.encode("utf-8", "surrogatepass") + b"\n")
    base = Path(cache_dir) if cache_dir else lmolt_cache_dir("molecules")
    return base / f"references_{h.hexdigest()[:20]}.json"


def _describe(smiles: list[str]) -> list[tuple[str | None, tuple | None, str | None]]:
    """(InChI, (MACCS, RDKit, Morgan-count), canonical SMILES) of each SMILES; (None, None, None)
    when it does not parse (each string is parsed once, here)."""
    from rdkit import Chem
    from rdkit.Chem import MACCSkeys

    _quiet_rdkit()
    rdk, morgan = _rdkit_generator(), _morgan_generator()
    out = []
    for s in smiles:
        m = parse_smiles(s)
        if m is None:
            out.append((None, None, None))
            continue
        try:  # fcd.canonical maps any failure to None
            canon = Chem.MolToSmiles(m)
        except Exception:  # noqa: BLE001
            canon = None
        fps = (MACCSkeys.GenMACCSKeys(m), rdk.GetFingerprint(m), morgan.GetSparseCountFingerprint(m))
        out.append((Chem.MolToInchi(m), fps, canon))
    return out


@lru_cache(maxsize=1)
def _rdkit_generator():
    from rdkit.Chem import rdFingerprintGenerator

    # the parameters of Chem.RDKFingerprint's defaults; gives bit-identical fingerprints
    return rdFingerprintGenerator.GetRDKitFPGenerator(
        minPath=1,
        maxPath=7,
        fpSize=2048,
        numBitsPerFeature=2,
        useHs=True,
        branchedPaths=True,
        useBondOrder=True,
    )


@lru_cache(maxsize=1)
def _morgan_generator():
    from rdkit.Chem import rdFingerprintGenerator

    # same features and hashing as the deprecated AllChem.GetMorganFingerprint(m, 2)
    return rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS)


CACHE = MoleculeCache()


@dataclass
class MoleculeStats:
    """Per-row values; corpus metrics (and their bootstrap) are functions of these arrays."""

    bleu: np.ndarray  # (n, 10) n-gram sufficient statistics over characters
    exact: np.ndarray  # bool
    levenshtein: np.ndarray  # int
    valid: np.ndarray  # bool, mol_translation_metrics definition (both parse)
    output_parses: np.ndarray  # bool, fingerprint_metrics definition (output parses)
    maccs: np.ndarray  # float, NaN where no similarity (invalid output or reference)
    rdk: np.ndarray
    morgan: np.ndarray
    output_ids: np.ndarray  # int id of each distinct output string (uniqueness)


def molecule_stats(
    predictions: list[str],
    references: list[str],
    cache: MoleculeCache = CACHE,
    cache_dir: Path | str | None | bool = None,
) -> MoleculeStats:
    """Per-row statistics. The references' InChI and fingerprints are cached on disk under
    ``cache_dir`` (default ``$LMOLT_CACHE/molecules``; ``False`` for no disk cache)."""
    from Levenshtein import distance
    from rdkit import DataStructs

    from lmolt_hub.metrics import parallel

    _quiet_rdkit()
    # character BLEU needs no RDKit: its chunks run in the pool while the molecules are described
    bleu_parts = parallel.submit_chunks(_char_bleu_stats, list(zip(predictions, references, strict=True)))
    n = len(predictions)
    exact = np.zeros(n, dtype=bool)
    valid = np.zeros(n, dtype=bool)
    parses = np.zeros(n, dtype=bool)
    sims = np.full((3, n), np.nan)
    ids: dict[str, int] = {}
    output_ids = np.zeros(n, dtype=np.int64)
    tanimoto = DataStructs.TanimotoSimilarity
    ref_path = None if cache_dir is False else references_cache_path(references, cache_dir or None)
    if ref_path is not None and ref_path.is_file():
        cache.load_references(ref_path)
    cache.prefetch(list(references) + list(predictions))
    for i, (out, gt) in enumerate(zip(predictions, references, strict=True)):
        output_ids[i] = ids.setdefault(out, len(ids))
        inchi_out, inchi_gt = cache.inchi(out), cache.inchi(gt)
        valid[i] = inchi_out is not None and inchi_gt is not None
        exact[i] = valid[i] and inchi_out == inchi_gt
        fp_out, fp_gt = cache.fingerprints(out), cache.fingerprints(gt)
        parses[i] = fp_out is not None  # fingerprints exist exactly when the SMILES parses
        if fp_out is not None and fp_gt is not None:
            sims[:, i] = [tanimoto(a, b) for a, b in zip(fp_gt, fp_out, strict=True)]
    if ref_path is not None and not ref_path.is_file():
        cache.save_references(references, ref_path)  # the first (cold) run fills the cache
    lev = np.fromiter((distance(o, g) for o, g in zip(predictions, references, strict=True)), np.int64, n)
    return MoleculeStats(
        bleu=_stack(parallel.gather(bleu_parts)),
        exact=exact,
        levenshtein=lev,
        valid=valid,
        output_parses=parses,
        maccs=sims[0],
        rdk=sims[1],
        morgan=sims[2],
        output_ids=output_ids,
    )


def _char_bleu_stats(pairs: list[tuple[str, str]]) -> np.ndarray:
    from lmolt_hub.metrics.text import bleu_stats_matrix

    return bleu_stats_matrix([list(p) for p, _ in pairs], [list(r) for _, r in pairs])


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    from lmolt_hub.metrics.text import MAX_ORDER

    return np.concatenate(parts) if parts else np.zeros((0, 2 * MAX_ORDER + 2), dtype=np.int64)


def _fts(values: np.ndarray, parses: np.ndarray, convention: str) -> float:
    if convention == "lpm24":
        return float(np.mean(np.nan_to_num(values, nan=0.0))) if len(values) else float("nan")
    kept = values[parses & ~np.isnan(values)]
    return float(np.mean(kept)) if len(kept) else float("nan")


def corpus_from_stats(
    stats: MoleculeStats, fingerprint_convention: str = "lpm24", idx: np.ndarray | None = None
) -> dict[str, float]:
    from lmolt_hub.metrics.text import BLEU4, bleu_from_stats

    if fingerprint_convention not in FINGERPRINT_CONVENTIONS:
        raise ValueError(
            f"unknown fingerprint convention {fingerprint_convention!r}; use one of {FINGERPRINT_CONVENTIONS}"
        )
    sel = slice(None) if idx is None else idx
    parses = stats.output_parses[sel]
    # uniqueness counts distinct output strings; in a bootstrap resample a row drawn twice is not a
    # duplicate output, so uniqueness looks at the distinct rows drawn
    rows = slice(None) if idx is None else np.unique(idx)
    uparses = stats.output_parses[rows]
    n_parse = int(uparses.sum())
    ids = stats.output_ids[rows][uparses]
    return {
        "bleu": bleu_from_stats(stats.bleu[sel].sum(axis=0), BLEU4),
        "exact_match": float(np.mean(stats.exact[sel])),
        "levenshtein": float(np.mean(stats.levenshtein[sel])),
        "validity": float(np.mean(stats.valid[sel])),
        "maccs_fts": _fts(stats.maccs[sel], parses, fingerprint_convention),
        "rdk_fts": _fts(stats.rdk[sel], parses, fingerprint_convention),
        "morgan_fts": _fts(stats.morgan[sel], parses, fingerprint_convention),
        # official: len(set(valid_smiles)) / n_valid (ZeroDivisionError there; 0 here)
        "uniqueness": float(len(np.unique(ids)) / n_parse) if n_parse else 0.0,
    }
