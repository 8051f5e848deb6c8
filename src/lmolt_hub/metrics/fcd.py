"""Fréchet ChemNet Distance, as the official `fcd_metric.py` computes it, from the `fcd` wheel's ChemNet.

The official script canonicalises outputs and references with RDKit (``MolToSmiles(MolFromSmiles(s))``),
drops those that fail (an empty output is first replaced by ``"[]"``, which fails), and calls
``fcd.get_fcd(references, outputs)``: ChemNet's penultimate activations of each set -> mean and
covariance -> Fréchet distance.

Two conventions (``convention=``):

- ``fcd_1.1`` (default; what the official environments pin, fcd==1.1 with Keras): each SMILES is
  one-hot encoded by fcd 1.1's ``get_one_hot(smiles, pad_len=350)``: a two-character symbol whenever
  the next character is ``r``, ``i`` or ``l`` (Br, Cl, Si; anything else becomes the unknown token
  ``X``), encoding stops at the first ``'.'`` (the end marker, but also a fragment separator, so only
  the first fragment of a multi-component SMILES is seen) or after 349 symbols, and every sequence is
  padded to 350 steps.
- ``fcd_1.2`` (fcd 1.2.x): regex tokenisation of the whole string, and each set padded to
  ``max(350, longest SMILES + 1)``; the padding length changes ChemNet's output, so the numbers differ.

The network is the PyTorch ChemNet that ships in the ``fcd`` wheel (converted from the Keras one).
Speed: ChemNet's forward is ~90% of the work (profiled: ~1.4 ms of CPU per molecule for the forward,
~0.4 ms for canonicalisation, ~0.2 ms for encoding and one-hot), almost all of it in the second LSTM,
which every molecule runs over all 88 steps of its padded sequence. So: the canonical SMILES come
from the molecule metrics' parse (``molecules.CACHE``, computed once per string, in the pool and
cached with the references); the forward runs in chunks on every core, one torch thread per worker
process at batch 128, in float32 as the library does (``metrics.parallel``); each distinct canonical
SMILES is run once per process (an output identical to a reference costs nothing); encodings are
index arrays made into one-hot tensors in one vectorised step; and reference statistics are computed
once per reference set and convention (memory, then disk: ``stats_filename`` is keyed by a hash of the
references and the convention; the fcd_1.1 reference activations are kept beside them so later
processes also skip outputs equal to a reference).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmolt_hub.io import atomic_path
from lmolt_hub.metrics import parallel
from lmolt_hub.resources import cache_dir as lmolt_cache_dir

CONVENTIONS = ("fcd_1.1", "fcd_1.2")
PAD_LEN = 350
BATCH_SIZE = 128  # one thread per worker: 128 was the fastest of 32/128/512 (the library's own size)
# ChemNet's vocabulary, in the order of its one-hot columns (fcd 1.1 and 1.2 agree).
VOCAB = ["C", "N", "O", "H", "F", "Cl", "P", "B", "Br", "S", "I", "Si", "#", "(", ")", "+", "-", "1", "2",
         "3", "4", "5", "6", "7", "8", "=", "[", "]", "@", "c", "n", "o", "s", "X", "."]  # fmt: skip
C2I = {k: i for i, k in enumerate(VOCAB)}
UNK, END = C2I["X"], C2I["."]
STATS_FORMAT = 1


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown FCD convention {convention!r}; use one of {CONVENTIONS}")


# ---------------------------------------------------------------- encodings


def encode_fcd11(smiles: str, pad_len: int = PAD_LEN) -> list[int]:
    """Column indices fcd 1.1's ``get_one_hot(smiles, pad_len)`` sets to 1, one per time step."""
    s = smiles + "."
    out: list[int] = []
    i = 0
    while True:
        if s[i + 1] in ("r", "i", "l"):
            sym, i = s[i : i + 2], i + 2
        else:
            sym, i = s[i], i + 1
        out.append(C2I.get(sym, UNK))
        if s[i] == "." or len(out) >= pad_len - 1:
            out.append(END)
            return out


def encode_fcd12(smiles: str) -> list[int]:
    """Column indices of fcd 1.2's ``get_one_hot`` (regex tokens of ``smiles + '.'``)."""
    from fcd.utils import tokenize

    return [C2I.get(t, UNK) for t in tokenize(smiles + ".")]


def _one_hot(indices: list[list[int]], pad_len: int):
    import torch

    x = np.zeros((len(indices), len(VOCAB), pad_len), dtype=np.float32)
    rows = np.repeat(np.arange(len(indices)), [len(idx) for idx in indices])
    cols = np.fromiter((c for idx in indices for c in idx), np.int64, len(rows))
    steps = np.fromiter((t for idx in indices for t in range(len(idx))), np.int64, len(rows))
    x[rows, cols, steps] = np.float32(1.0 / len(VOCAB))  # the libraries divide by 35
    return torch.from_numpy(x)


# ---------------------------------------------------------------- activations


def _model():
    import fcd

    return fcd.load_ref_model()  # lru-cached by fcd


def canonical(smiles: str) -> str | None:
    """``Chem.MolToSmiles(Chem.MolFromSmiles(s))`` or None, as ``fcd.canonical`` (memoised with the
    molecule metrics' parse of the same string)."""
    from lmolt_hub.metrics.molecules import CACHE

    return CACHE.canonical(smiles)


def canonical_list(smiles: list[str], replace_empty: bool = True) -> list[str]:
    """Canonical SMILES of the parsable, non-empty inputs (the official script's filtering)."""
    from lmolt_hub.metrics.molecules import CACHE

    inputs = ["[]" if (replace_empty and s == "") else s for s in smiles]
    CACHE.prefetch(inputs)  # in bulk, on every core; free when the molecule metrics ran first
    out = []
    for s in inputs:
        c = CACHE.canonical(s)
        if c:  # None (unparsable) and "" (empty molecule, which crashes fcd 1.1's encoder) are dropped
            out.append(c)
    return out


# Activations of canonical SMILES already run in this process, per (convention, pad length): an
# output identical to a reference (or to another model's output) is never run twice.
_ACTS: dict[tuple[str, int], dict[str, np.ndarray]] = {}
_ACTS_MAX = 100_000


def activations(smiles: list[str], convention: str = "fcd_1.1", batch_size: int = BATCH_SIZE) -> np.ndarray:
    """ChemNet activations (n, 512), float32, of already-canonical SMILES."""
    _check_convention(convention)
    if not smiles:
        return np.zeros((0, 512), dtype=np.float32)
    # fcd 1.2 pads each set to its longest string, which changes every activation
    pad_len = PAD_LEN if convention == "fcd_1.1" else max(PAD_LEN, max(len(s) for s in smiles) + 1)
    memo = _ACTS.setdefault((convention, pad_len), {})
    todo = [s for s in dict.fromkeys(smiles) if s not in memo]
    if todo:
        if sum(len(m) for m in _ACTS.values()) + len(todo) > _ACTS_MAX:
            _ACTS.clear()
            memo = _ACTS.setdefault((convention, pad_len), {})
        futures = parallel.submit_chunks(_forward, todo, convention, pad_len, batch_size, min_parallel=128)
        out = np.concatenate(parallel.gather(futures))
        memo.update(zip(todo, out, strict=True))
    return np.stack([memo[s] for s in smiles]).astype(np.float32, copy=False)


def _forward(smiles: list[str], convention: str, pad_len: int, batch_size: int) -> np.ndarray:
    """ChemNet activations of ``smiles`` in batches (in a pool worker, or here)."""
    import torch

    encode = encode_fcd11 if convention == "fcd_1.1" else encode_fcd12
    model, out = _model(), []
    with torch.inference_mode():
        for start in range(0, len(smiles), batch_size):
            chunk = smiles[start : start + batch_size]
            out.append(model(_one_hot([encode(s) for s in chunk], pad_len)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 512), dtype=np.float32)


def remember_activations(smiles: list[str], acts: np.ndarray, convention: str = "fcd_1.1") -> None:
    """Seed the in-process memo (fcd_1.1 only: its activations do not depend on the set)."""
    if convention == "fcd_1.1":
        _ACTS.setdefault((convention, PAD_LEN), {}).update(zip(smiles, acts, strict=True))


# ---------------------------------------------------------------- statistics


@dataclass
class FCDStats:
    """ChemNet mean and covariance of a molecule set, for one convention."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    convention: str
    key: str = ""


def references_key(smiles: list[str], convention: str) -> str:
    """Hash of the (order-free) reference SMILES and the convention."""
    _check_convention(convention)
    h = hashlib.sha256()
    h.update(f"{convention}\n".encode())
    for s in sorted(smiles):
        h.update(s.encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()[:20]


def stats_filename(smiles: list[str], convention: str = "fcd_1.1") -> str:
    return f"fcd_stats_{convention}_{references_key(smiles, convention)}.npz"


def stats_of(acts: np.ndarray, convention: str, key: str = "") -> FCDStats:
    # as fcd.get_fcd: float32 mean, float64 covariance of the activations
    return FCDStats(np.mean(acts, axis=0), np.cov(acts.T), len(acts), convention, key)


_MEMORY: dict[str, FCDStats] = {}


def default_cache_dir() -> Path:
    return lmolt_cache_dir("fcd_stats")


def reference_stats(
    smiles: list[str],
    convention: str = "fcd_1.1",
    cache_dir: Path | str | None | bool = None,
    batch_size: int = BATCH_SIZE,
) -> FCDStats:
    """ChemNet statistics of the reference SMILES (raw, as in the predictions file).

    Looked up in memory, then in ``cache_dir`` (default ``$LMOLT_CACHE/fcd_stats``; ``False`` for
    none), else computed and saved there.
    """
    key = references_key(smiles, convention)
    if key in _MEMORY:
        return _MEMORY[key]
    path = None
    if cache_dir is not False:
        path = Path(cache_dir or default_cache_dir()) / stats_filename(smiles, convention)
        if path.is_file():
            stats = load_stats(path)
            if stats.key == key:
                _MEMORY[key] = stats
                _load_activations(path, convention)
                return stats
    canon = canonical_list(smiles, replace_empty=False)
    if len(canon) < 2:
        raise ValueError(f"FCD needs at least 2 parsable reference SMILES, got {len(canon)}")
    acts = activations(canon, convention, batch_size)
    stats = stats_of(acts, convention, key)
    _MEMORY[key] = stats
    if path is not None:
        save_stats(stats, path)
        if convention == "fcd_1.1":  # lets later processes skip outputs identical to a reference
            _save_activations(path, canon, acts)
    return stats


def _acts_path(stats_path: Path) -> Path:
    return stats_path.with_name(stats_path.name.replace(".npz", ".activations.npz"))


def _save_activations(stats_path: Path, smiles: list[str], acts: np.ndarray) -> None:
    unique = dict(zip(smiles, range(len(smiles)), strict=True))
    with atomic_path(_acts_path(stats_path), suffix=".npz") as tmp:  # np.savez wants the .npz suffix
        np.savez(tmp, smiles=np.array(list(unique)), acts=acts[list(unique.values())])


def _load_activations(stats_path: Path, convention: str) -> None:
    path = _acts_path(stats_path)
    if convention != "fcd_1.1" or not path.is_file():
        return
    try:
        with np.load(path, allow_pickle=False) as z:
            remember_activations([str(x) for x in z["smiles"]], z["acts"], convention)
    except Exception:  # noqa: BLE001 - an optional speed-up; a damaged file only costs time
        return


def save_stats(stats: FCDStats, path: Path | str) -> Path:
    """Write ``stats`` as .npz (atomically: a crash never leaves a half-written file)."""
    path = Path(path)
    meta = {"format": STATS_FORMAT, "n": stats.n, "convention": stats.convention, "key": stats.key}
    with atomic_path(path, suffix=".npz") as tmp:  # np.savez wants the .npz suffix
        np.savez(tmp, mu=stats.mu, sigma=stats.sigma, meta=np.array(json.dumps(meta)))
    return path


def load_stats(path: Path | str) -> FCDStats:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            mu, sigma = z["mu"], z["sigma"]
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not an FCD statistics file ({err})") from err
    if meta.get("format") != STATS_FORMAT or mu.shape != (512,) or sigma.shape != (512, 512):
        raise ValueError(f"{path}: unexpected FCD statistics format {meta} / {mu.shape} {sigma.shape}")
    _check_convention(meta["convention"])
    return FCDStats(mu, sigma, int(meta["n"]), meta["convention"], meta.get("key", ""))


def frechet_distance(a: FCDStats, b: FCDStats) -> float:
    from fcd.utils import calculate_frechet_distance

    if a.convention != b.convention:
        raise ValueError(f"FCD statistics of different conventions: {a.convention} vs {b.convention}")
    return float(calculate_frechet_distance(mu1=a.mu, sigma1=a.sigma, mu2=b.mu, sigma2=b.sigma))


def fcd_score(
    predictions: list[str],
    references: list[str] | None = None,
    convention: str = "fcd_1.1",
    reference_stats_: FCDStats | str | Path | None = None,
    cache_dir: Path | str | None | bool = None,
    batch_size: int = BATCH_SIZE,
) -> float:
    """FCD between the references (or their precomputed statistics) and the predictions.

    NaN when fewer than 2 predictions parse (a covariance needs two samples).
    """
    _check_convention(convention)
    if reference_stats_ is None:
        if references is None:
            raise ValueError("fcd_score needs references or reference statistics")
        ref = reference_stats(references, convention, cache_dir=cache_dir, batch_size=batch_size)
    else:
        ref = reference_stats_ if isinstance(reference_stats_, FCDStats) else load_stats(reference_stats_)
        if ref.convention != convention:
            raise ValueError(f"reference statistics are {ref.convention}, asked for {convention}")
        if references is not None and ref.key and ref.key != references_key(references, convention):
            raise ValueError("reference statistics were computed from other references (hash mismatch)")
    canon = canonical_list(predictions, replace_empty=True)
    if len(canon) < 2:
        return float("nan")
    return frechet_distance(ref, stats_of(activations(canon, convention, batch_size), convention))
