"""Shared logic of the local ``evaluate`` modules in ``eval_harness/metrics/`` (kept thin there).

Each module is loaded with ``evaluate.load("eval_harness/metrics/<name>")`` (a local path; never the
Hub) and exposes ``higher_is_better`` like lm-evaluation-harness metrics do.
"""

from __future__ import annotations

from typing import Any

from lmolt_hub.formats.direction import Direction
from lmolt_hub.metrics import METRIC_INFO, METRICS_VERSION, TABLE_METRICS, score

HALLUCINATION_KEYS = {d.value: list(d.hallucination_metrics) for d in Direction}
# The table-metric modules, one per direction.
MODULE_DIRECTION = {"lmolt_caption": Direction.SMILES2CAPTION, "lmolt_molecule": Direction.CAPTION2SMILES}

DESCRIPTIONS = {
    "lmolt_caption": "Molecule -> caption metrics (BLEU-2/4, ROUGE-1/2/L, METEOR) as the official "
    "MolT5 / L+M-24 text_translation_metrics.py computes them.",
    "lmolt_molecule": "Caption -> molecule metrics (character BLEU, exact match by InChI, Levenshtein, "
    "validity, MACCS/RDKit/Morgan Tanimoto, FCD, uniqueness) as the official MolT5 / L+M-24 scripts "
    "compute them.",
    "lmolt_hallucination": "Hallucination measures of Gkoumas & Liakata (2024) section 3.4: dLen, chrF "
    "and validity wins for SMILES; dLen and NLI entailment wins for captions.",
}


def higher_is_better(module: str, direction: str | None = None) -> dict[str, bool]:
    if module == "lmolt_hallucination":
        keys = sorted({k for d in HALLUCINATION_KEYS.values() for k in d})
    else:
        keys = TABLE_METRICS[MODULE_DIRECTION.get(module, Direction.CAPTION2SMILES)]
    return {k: METRIC_INFO[k]["higher_is_better"] for k in keys}


def module_info(evaluate_module, name: str):
    import datasets
    import evaluate

    return evaluate.MetricInfo(
        module_name=name,
        description=f"{DESCRIPTIONS[name]} lmolt-hub metrics {METRICS_VERSION}. "
        f"higher_is_better: {higher_is_better(name)}",
        citation="Edwards et al. 2022 (MolT5); Edwards et al. 2024 (L+M-24); Gkoumas & Liakata 2024.",
        inputs_description="predictions: list of str; references: list of str (one per prediction).",
        features=datasets.Features(
            {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
        ),
        homepage="https://github.com/blender-nlp/MolT5",
        codebase_urls=["https://github.com/language-plus-molecules/LPM-24-Dataset"],
    )


def compute(name: str, predictions: list[str], references: list[str], **options: Any) -> dict[str, float]:
    if name in MODULE_DIRECTION:
        return score(MODULE_DIRECTION[name].value, predictions, references, **options).corpus
    direction = options.pop("direction", None)
    if direction not in HALLUCINATION_KEYS:
        raise ValueError("lmolt_hallucination needs direction='smiles2caption' or 'caption2smiles'")
    s = score(direction, predictions, references, hallucination=True, fcd=False, **options)
    return dict(s.hallucination)
