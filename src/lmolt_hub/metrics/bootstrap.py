"""Bootstrap confidence intervals of the corpus metrics, cheaply.

Rows are resampled with replacement ``n_resamples`` times (``numpy.random.default_rng(seed)``) and
every metric recomputed on each resample; the interval is the 2.5th and 97.5th percentile
(``confidence`` = 0.95). Nothing is re-tokenised or re-parsed: each corpus metric is a function of
per-row sufficient statistics kept by ``score`` (n-gram match counts and lengths for corpus BLEU,
per-row values for the means, output-string ids and validity for uniqueness), so a resample costs
a few numpy sums.

FCD is not bootstrapped by default: a resample needs ChemNet mean and covariance of the resampled
rows plus a 512x512 matrix square root (~0.3 s each), which is too slow for 1,000 resamples. Pass
``fcd_resamples=k`` (e.g. 50) to get a rough FCD interval from ``k`` resamples of the cached
activations.
"""

from __future__ import annotations

import numpy as np

from lmolt_hub.metrics import CAPTION2SMILES, Scores, score


def confidence_intervals(
    direction: str,
    predictions=None,
    references=None,
    n_resamples: int = 1000,
    seed: int = 0,
    *,
    scores: Scores | None = None,
    confidence: float = 0.95,
    fingerprint_convention: str = "lpm24",
    fcd_resamples: int = 0,
    fcd_convention: str = "fcd_1.1",
) -> dict[str, list[float]]:
    """``{metric: [low, high]}`` for the direction's table metrics (FCD only with ``fcd_resamples``).

    Pass ``scores`` (the result of ``score``) to reuse its statistics instead of recomputing them.
    """
    if scores is None:
        scores = score(
            direction, predictions, references, fcd=False, fingerprint_convention=fingerprint_convention
        )
    elif scores.direction != direction:
        raise ValueError(f"scores are for {scores.direction}, asked for {direction}")
    stats = scores.stats
    n = len(scores.per_sample)
    if n == 0:
        return {}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        for k, v in _corpus(
            direction, stats, idx, scores.options.get("fingerprint_convention", fingerprint_convention)
        ).items():
            samples.setdefault(k, []).append(v)
    if direction == CAPTION2SMILES and fcd_resamples > 0:
        samples["fcd"] = _fcd_resamples(predictions, references, fcd_resamples, seed, fcd_convention)
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    out = {}
    for k, vals in samples.items():
        arr = np.asarray(vals, dtype=float)
        arr = arr[~np.isnan(arr)]
        out[k] = (
            [float(np.percentile(arr, lo)), float(np.percentile(arr, hi))] if len(arr) else [np.nan, np.nan]
        )
    return out


def _corpus(direction: str, stats, idx: np.ndarray, fingerprint_convention: str) -> dict[str, float]:
    if direction == CAPTION2SMILES:
        from lmolt_hub.metrics.molecules import corpus_from_stats

        return corpus_from_stats(stats, fingerprint_convention, idx)
    from lmolt_hub.metrics.text import corpus_from_stats

    return corpus_from_stats(stats, idx)


def _fcd_resamples(predictions, references, k: int, seed: int, convention: str) -> list[float]:
    from lmolt_hub.metrics import fcd

    if predictions is None or references is None:
        raise ValueError("an FCD interval needs the predictions and references")
    ref = fcd.reference_stats(list(references), convention)
    canon = fcd.canonical_list(list(predictions))
    acts = fcd.activations(canon, convention)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        idx = rng.integers(0, len(acts), len(acts))
        out.append(fcd.frechet_distance(ref, fcd.stats_of(acts[idx], convention)))
    return out
