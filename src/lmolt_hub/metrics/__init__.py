"""The paper's metrics, computed exactly as the official MolT5 / L+M-24 evaluation scripts do.

``score(direction, predictions, references, **options) -> Scores`` is the one entry point:

>>> s = score("caption2smiles", ["CCO"], ["OCC"])          # doctest: +SKIP
>>> s.corpus["exact_match"], s.per_sample[0]["levenshtein"]  # doctest: +SKIP

``score_many`` scores several directions at once (their metric families run concurrently, in one
process pool over all cores: ``parallel``). ``METRIC_INFO`` describes every metric (label, direction, higher_is_better, paper table);
``METRICS_VERSION`` changes whenever a definition changes, so results record which code made them.
Definitions and conventions: ``text`` (M->L), ``molecules`` and ``fcd`` (L->M), ``hallucination``
(section 3.4), ``bootstrap`` (confidence intervals); docs/metrics.md has the user guide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from lmolt_hub.formats.direction import DIRECTION_NAMES, Direction

METRICS_VERSION = "1.0.0"

SMILES2CAPTION = Direction.SMILES2CAPTION.value
CAPTION2SMILES = Direction.CAPTION2SMILES.value
DIRECTIONS = DIRECTION_NAMES


def _info(label: str, direction: str, higher: bool, table: str) -> dict[str, Any]:
    return {"label": label, "direction": direction, "higher_is_better": higher, "table": table}


_M2L, _L2M = Direction.SMILES2CAPTION.alias, Direction.CAPTION2SMILES.alias  # the paper's table names
METRIC_INFO: dict[str, dict[str, Any]] = {
    # molecule -> caption (paper Table 1 / 3)
    "bleu2": _info("BLEU-2", SMILES2CAPTION, True, _M2L),
    "bleu4": _info("BLEU-4", SMILES2CAPTION, True, _M2L),
    "rouge1": _info("ROUGE-1", SMILES2CAPTION, True, _M2L),
    "rouge2": _info("ROUGE-2", SMILES2CAPTION, True, _M2L),
    "rougeL": _info("ROUGE-L", SMILES2CAPTION, True, _M2L),
    "meteor": _info("METEOR", SMILES2CAPTION, True, _M2L),
    # caption -> molecule (paper Table 2 / 4)
    "bleu": _info("BLEU", CAPTION2SMILES, True, _L2M),
    "exact_match": _info("Exact", CAPTION2SMILES, True, _L2M),
    "levenshtein": _info("Levenshtein", CAPTION2SMILES, False, _L2M),
    "maccs_fts": _info("MACCS FTS", CAPTION2SMILES, True, _L2M),
    "rdk_fts": _info("RDK FTS", CAPTION2SMILES, True, _L2M),
    "morgan_fts": _info("Morgan FTS", CAPTION2SMILES, True, _L2M),
    "fcd": _info("FCD", CAPTION2SMILES, False, _L2M),
    "validity": _info("Validity", CAPTION2SMILES, True, _L2M),
    "uniqueness": _info("Uniqueness", CAPTION2SMILES, True, _L2M),
    # hallucination (paper section 3.4); computed when score(..., hallucination=True)
    "win_rate": _info("Win rate", "both", True, "hallucination"),
    "mean_dlen": _info("Mean dLen", "both", False, "hallucination"),
    "mean_abs_dlen": _info("Mean |dLen|", "both", False, "hallucination"),
    "mean_chrf": _info("Mean chrF", CAPTION2SMILES, True, "hallucination"),
    "mean_entailment": _info("Mean entailment probability", SMILES2CAPTION, True, "hallucination"),
}

TABLE_METRICS: dict[str, list[str]] = {d.value: list(d.metrics) for d in Direction}


@dataclass
class Scores:
    """Corpus values (``corpus``), per-row values (``per_sample``) and how they were computed.

    ``hallucination`` holds the section 3.4 win rate and means when asked for; ``options`` the
    conventions used; ``stats`` the per-row sufficient statistics that ``bootstrap`` resamples.
    """

    direction: str
    corpus: dict[str, float]
    per_sample: list[dict[str, Any]]
    hallucination: dict[str, float] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    stats: Any = field(default=None, repr=False)


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; use one of {DIRECTIONS}")


def clean_inputs(predictions, references) -> tuple[list[str], list[str]]:
    """Validate lengths and types. None/NaN predictions become "" (an empty output); a missing
    reference is an error, since there is nothing to score against."""
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references: the row counts must match"
        )
    preds = []
    for i, p in enumerate(predictions):
        if p is None or (isinstance(p, float) and math.isnan(p)):
            p = ""
        elif not isinstance(p, str):
            raise TypeError(f"prediction {i} is {type(p).__name__} {p!r}, expected str")
        preds.append(p)
    refs = []
    for i, r in enumerate(references):
        if not isinstance(r, str) or r == "":
            raise ValueError(f"reference {i} is {r!r}: every row needs a non-empty reference string")
        refs.append(r)
    return preds, refs


def score(
    direction: str,
    predictions,
    references,
    *,
    fingerprint_convention: str = "lpm24",
    fcd_convention: str = "fcd_1.1",
    fcd: bool = True,
    fcd_reference_stats=None,
    fcd_cache_dir=None,
    reference_cache_dir=None,
    hallucination: bool = False,
    nli_model: str | None = None,
    nli_revision: str | None = None,
    nli_batch_size: int = 32,
    nli_device: str | None = None,
) -> Scores:
    """Score ``predictions`` against ``references`` (same order, one reference per row).

    caption2smiles options: ``fingerprint_convention`` ("lpm24" default, or "molt5"),
    ``fcd_convention`` ("fcd_1.1" default, or "fcd_1.2"), ``fcd=False`` to skip FCD,
    ``fcd_reference_stats`` (FCDStats or .npz path, e.g. from the eval dataset),
    ``reference_cache_dir`` (where per-reference-set work is cached: InChI/fingerprints and FCD
    statistics; default ``$LMOLT_CACHE``; False for none), ``fcd_cache_dir`` (FCD statistics only).
    ``hallucination=True`` adds section 3.4's per-pair values and win rates (M->L needs the NLI
    cross-encoder ``nli_model``, default ``cross-encoder/nli-deberta-v3-base``, at ``nli_revision``).
    """
    _check_direction(direction)
    predictions, references = clean_inputs(predictions, references)
    options: dict[str, Any] = {}
    if direction == SMILES2CAPTION:
        from lmolt_hub.metrics import text

        stats = text.text_stats(predictions, references)
        corpus = (
            text.corpus_from_stats(stats)
            if predictions
            else dict.fromkeys(TABLE_METRICS[direction], math.nan)
        )
        per_sample = [
            {"meteor": float(m), "rouge1": float(a), "rouge2": float(b), "rougeL": float(c)}
            for m, a, b, c in zip(stats.meteor, stats.rouge1, stats.rouge2, stats.rougeL, strict=True)
        ]
    else:
        from lmolt_hub.metrics import molecules

        stats = molecules.molecule_stats(predictions, references, cache_dir=reference_cache_dir)
        options["fingerprint_convention"] = fingerprint_convention
        corpus = (
            molecules.corpus_from_stats(stats, fingerprint_convention)
            if predictions
            else dict.fromkeys(TABLE_METRICS[direction], math.nan)
        )
        per_sample = [
            {
                "exact_match": bool(e),
                "levenshtein": int(lev),
                "valid": bool(v),
                "maccs_fts": _none_if_nan(a),
                "rdk_fts": _none_if_nan(b),
                "morgan_fts": _none_if_nan(c),
            }
            for e, lev, v, a, b, c in zip(
                stats.exact, stats.levenshtein, stats.valid, stats.maccs, stats.rdk, stats.morgan, strict=True
            )
        ]
        if fcd and predictions:
            from lmolt_hub.metrics import fcd as fcd_mod

            corpus["fcd"] = fcd_mod.fcd_score(
                predictions,
                references,
                convention=fcd_convention,
                reference_stats_=fcd_reference_stats,
                cache_dir=reference_cache_dir if fcd_cache_dir is None else fcd_cache_dir,
            )
            options["fcd_convention"] = fcd_convention
        corpus = {k: corpus[k] for k in TABLE_METRICS[direction] if k in corpus}
    result = Scores(direction, corpus, per_sample, options=options, stats=stats)
    if hallucination:
        from lmolt_hub.metrics.hallucination import add_hallucination

        add_hallucination(
            result, predictions, references, nli_model, nli_batch_size, nli_device, nli_revision=nli_revision
        )
    return result


def score_many(requests: list[dict[str, Any]]) -> list[Scores]:
    """``score(**request)`` for each request, concurrently: e.g. both directions of a model, whose
    metric families (text, molecules, FCD) then share the process pool instead of taking turns.

    Each request is the keyword arguments of :func:`score` (``direction``, ``predictions``,
    ``references`` and options). Results in the order of the requests; an error in one is raised.
    """
    from concurrent.futures import ThreadPoolExecutor

    from lmolt_hub.metrics import parallel

    if len(requests) < 2:
        return [score(**r) for r in requests]
    parallel.pool()  # workers are forked now, before any thread starts
    with ThreadPoolExecutor(len(requests), thread_name_prefix="lmolt-score") as threads:
        futures = [threads.submit(score, **r) for r in requests]
        return [f.result() for f in futures]


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


__all__ = ["METRICS_VERSION", "METRIC_INFO", "TABLE_METRICS", "Scores", "score", "score_many", "DIRECTIONS"]
