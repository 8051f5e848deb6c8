"""Paired bootstrap of the difference between two models on the same held-out pairs, with a Holm
correction over the metrics of a claim.

Each model's outputs are scored once (``metrics.score``: per-row sufficient statistics); each
resample draws ONE set of held-out pairs and recomputes every corpus metric for both models on it,
so the interval is of the difference itself (not two intervals compared). Two-sided bootstrap p-value:
twice the smaller share of resampled differences on either side of 0. FCD is left out (no per-row
statistics; see ``metrics.bootstrap``).

A claim's decision, fixed before any run:
- a metric is "better"/"worse" when its Holm-adjusted p < alpha, signed by the metric's direction;
- the claim **holds** when at least one metric is better and none worse, **fails** when at least
  one is worse and none better, and is **undecided** otherwise (nothing significant, or both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lmolt_hub.formats.results import samples_filename
from lmolt_hub.metrics import METRIC_INFO

ALPHA = 0.05
# Differences smaller than this are floating-point dust, not effects: NLTK's BLEU with a zero n-gram
# precision is exp(log(tiny)) ~ 1e-155 rather than 0, so two models that both score "0" would
# otherwise differ "significantly" by 1e-155. Every metric here is reported to 3-4 digits.
NEGLIGIBLE = 1e-9


def load_outputs(results_path: str | Path, direction: str) -> dict[str, tuple[str, str]]:
    """id -> (output, reference) from the samples file next to a results file."""
    path = Path(results_path).parent / samples_filename(direction)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["id"]: (r["output"], r["reference"]) for r in rows}


def score_outputs(direction: str, outputs: dict[str, tuple[str, str]], fingerprint_convention: str = "lpm24"):
    """(ids in order, ``metrics.score`` of the outputs against their references) for one model."""
    from lmolt_hub.metrics import score

    ids = sorted(outputs)
    scores = score(direction, [outputs[i][0] for i in ids], [outputs[i][1] for i in ids], fcd=False,
                   fingerprint_convention=fingerprint_convention)  # fmt: skip
    return ids, scores


def paired_bootstrap(
    direction: str,
    a: tuple[list[str], Any],
    b: tuple[list[str], Any],
    metrics: list[str],
    n_resamples: int = 1000,
    seed: int = 0,
    fingerprint_convention: str = "lpm24",
) -> dict[str, dict[str, Any]]:
    """metric -> {diff (A - B), ci [lo, hi] (95%), p, n} on the pairs both models were scored on.

    ``a`` and ``b`` come from ``score_outputs``; each resample draws one set of shared pairs and
    indexes both models' per-row statistics with it.
    """
    from lmolt_hub.metrics.bootstrap import _corpus

    (ids_a, sa), (ids_b, sb) = a, b
    pos_b = {i: k for k, i in enumerate(ids_b)}
    common = [(k, pos_b[i]) for k, i in enumerate(ids_a) if i in pos_b]
    if not common:
        return {}
    ia, ib = (np.asarray(x) for x in zip(*common, strict=True))
    conv = fingerprint_convention
    point_a, point_b = _corpus(direction, sa.stats, ia, conv), _corpus(direction, sb.stats, ib, conv)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {m: [] for m in metrics}
    for _ in range(n_resamples):
        r = rng.integers(0, len(common), len(common))
        ca, cb = _corpus(direction, sa.stats, ia[r], conv), _corpus(direction, sb.stats, ib[r], conv)
        for m in metrics:
            if m in ca and m in cb:
                draws[m].append(ca[m] - cb[m])
    out = {}
    for m, vals in draws.items():
        arr = np.asarray(vals, dtype=float)
        arr = arr[~np.isnan(arr)]
        if not len(arr) or m not in point_a or m not in point_b:
            continue
        arr = np.where(np.abs(arr) < NEGLIGIBLE, 0.0, arr)
        diff = float(point_a[m] - point_b[m])
        diff = 0.0 if abs(diff) < NEGLIGIBLE else diff
        p = min(1.0, 2 * min(float(np.mean(arr <= 0)), float(np.mean(arr >= 0))))
        out[m] = {"diff": diff, "ci": [float(np.percentile(arr, 2.5)),
                  float(np.percentile(arr, 97.5))], "p": p, "n": len(common)}  # fmt: skip
    return out


def holm(pvalues: dict[str, float], alpha: float = ALPHA) -> dict[str, tuple[float, bool]]:
    """key -> (Holm-adjusted p, rejected) over the family ``pvalues``."""
    order = sorted(pvalues, key=lambda k: pvalues[k])
    m, out, running = len(order), {}, 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * pvalues[k]))  # step-down, monotone
        out[k] = (running, running < alpha)
    return out


def decide(tests: dict[str, dict[str, Any]], alpha: float = ALPHA) -> dict[str, Any]:
    """Holm over the metrics in ``tests`` (key -> paired result with a "metric" name); the verdict."""
    adjusted = holm({k: t["p"] for k, t in tests.items()}, alpha)
    better, worse, rows = [], [], {}
    for k, t in tests.items():
        p_adj, rejected = adjusted[k]
        higher = METRIC_INFO[t["metric"]]["higher_is_better"]
        outcome = "noise"
        if rejected and t["diff"] != 0:
            outcome = "better" if (t["diff"] > 0) == higher else "worse"
        (better if outcome == "better" else worse if outcome == "worse" else []).append(k)
        rows[k] = t | {"p_holm": p_adj, "outcome": outcome}
    if not tests:
        verdict = "not measured"
    elif better and not worse:
        verdict = "holds"
    elif worse and not better:
        verdict = "fails"
    else:
        verdict = "undecided"
    return {"verdict": verdict, "better": better, "worse": worse, "tests": rows}
