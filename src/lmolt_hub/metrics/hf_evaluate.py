"""What the three metric modules (``eval_harness/metrics/<name>/<name>.py``) are made of.

Each module script is a few lines: a class deriving from :class:`LmoltModule` and
:func:`module_base`, its ``name`` and the ``METRICS_VERSION`` its revision computes. Loaded by
``evaluate.load`` (a Hub Space ``<org>/<name>`` or a local path) it is an ``evaluate.Metric``;
loaded by the harness (``lmolt_hub.metrics.modules.load_module``) the same class derives from a
plain base, because importing ``evaluate`` (datasets, scipy.stats, transformers.pipelines) costs
more than scoring a cached eval set does. Either way the numbers come from the methods here, so
``compute()`` and the harness are one code path:

- ``score(predictions, references, **options) -> Scores``: table modules (corpus values,
  per-sample values and the bootstrap's statistics);
- ``add_to(scores, predictions, references, **options)``: the hallucination module fills a
  table module's ``Scores`` with the section 3.4 measures (the harness's way);
- ``_compute(...)``: what ``compute()`` returns; ``details=True`` adds ``per_sample``.
"""

from __future__ import annotations

import sys
from typing import Any

from lmolt_hub.formats.direction import Direction
from lmolt_hub.metrics import METRIC_INFO, METRICS_VERSION, TABLE_METRICS, Scores, clean_inputs, score

TABLE_MODULES = {"lmolt_caption": Direction.SMILES2CAPTION, "lmolt_molecule": Direction.CAPTION2SMILES}
HALLUCINATION_MODULE = "lmolt_hallucination"
MODULE_NAMES = (*TABLE_MODULES, HALLUCINATION_MODULE)
HALLUCINATION_KEYS = {d.value: list(d.hallucination_metrics) for d in Direction}
# Options of score() that belong to the hallucination module (the table modules refuse them).
NLI_OPTIONS = ("nli_model", "nli_revision", "nli_batch_size", "nli_device")

DESCRIPTIONS = {
    "lmolt_caption": "Molecule -> caption metrics (BLEU-2/4, ROUGE-1/2/L, METEOR) as the official "
    "MolT5 / L+M-24 text_translation_metrics.py computes them.",
    "lmolt_molecule": "Caption -> molecule metrics (character BLEU, exact match by InChI, Levenshtein, "
    "validity, MACCS/RDKit/Morgan Tanimoto, FCD, uniqueness) as the official MolT5 / L+M-24 scripts "
    "compute them.",
    "lmolt_hallucination": "Hallucination measures of Gkoumas & Liakata (2024) section 3.4: dLen, chrF "
    "and validity wins for SMILES; dLen and NLI entailment wins for captions.",
}
CITATION = """\
@article{edwards2022translation,
  title={Translation between Molecules and Natural Language},
  author={Edwards, Carl and Lai, Tuan and Ros, Kevin and Honke, Garrett and Cho, Kyunghyun and Ji, Heng},
  journal={EMNLP}, year={2022}
}
@inproceedings{edwards2024lpm24,
  title={L+M-24: Building a Dataset for Language+Molecules @ ACL 2024},
  author={Edwards, Carl and Wang, Qingyun and Zhao, Lawrence and Ji, Heng},
  booktitle={Proceedings of the 1st Workshop on Language + Molecules}, year={2024}
}
@inproceedings{gkoumas2024lmolt,
  title={Less for More: Enhanced Feedback-aligned Mixed LLMs for Molecule Caption Generation and
         Fine-Grained NLI Evaluation},
  author={Gkoumas, Dimitris and Liakata, Maria},
  year={2024}
}
"""
INPUTS = "predictions: list of str; references: list of str (one per prediction, same order)."


class ModuleVersionError(ValueError):
    """A module revision was written for other metric definitions than the installed lmolt-hub's."""


class PlainModule:
    """The base of a module script loaded without ``evaluate`` (the harness's adapter)."""

    def __init__(self, **_: Any) -> None:
        pass

    def compute(self, *, predictions, references, **options: Any) -> dict[str, Any]:
        return self._compute(predictions, references, **options)


def module_base() -> type:
    """``evaluate.Metric`` when ``evaluate`` is imported (``evaluate.load`` runs the script), else
    :class:`PlainModule`: the harness never pays for importing ``evaluate``."""
    ev = sys.modules.get("evaluate")
    return ev.Metric if ev is not None and hasattr(ev, "Metric") else PlainModule


def higher_is_better(module: str) -> dict[str, bool]:
    if module == HALLUCINATION_MODULE:
        keys = sorted({k for d in HALLUCINATION_KEYS.values() for k in d})
    else:
        keys = TABLE_METRICS[TABLE_MODULES[module]]
    return {k: METRIC_INFO[k]["higher_is_better"] for k in keys}


def check_metrics_version(name: str, wanted: str) -> None:
    if wanted != METRICS_VERSION:
        raise ModuleVersionError(
            f"metric module {name} computes lmolt-hub metrics {wanted}, but the installed lmolt-hub "
            f"computes {METRICS_VERSION}: install the lmolt-hub release with metrics {wanted}, or load "
            "a module revision made for this one"
        )


class LmoltModule:
    """The logic of every lmolt metric module; a script sets ``name`` and ``metrics_version``."""

    name: str = ""
    metrics_version: str = ""

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return higher_is_better(self.name)

    def _info(self):
        import datasets
        import evaluate

        return evaluate.MetricInfo(
            module_name=self.name,
            description=f"{DESCRIPTIONS[self.name]} lmolt-hub metrics {self.metrics_version}. "
            f"higher_is_better: {self.higher_is_better}",
            citation=CITATION,
            inputs_description=INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            homepage="https://github.com/blender-nlp/MolT5",
            codebase_urls=["https://github.com/language-plus-molecules/LPM-24-Dataset"],
        )

    def score(self, predictions, references, **options: Any) -> Scores:
        """Table modules: every metric of the direction, per sample too (``lmolt_hub.metrics.score``)."""
        check_metrics_version(self.name, self.metrics_version)
        if self.name not in TABLE_MODULES:
            raise TypeError(f"{self.name} has no table metrics; use add_to() or compute()")
        nli = sorted(set(options) & {"hallucination", *NLI_OPTIONS})
        if nli:
            raise TypeError(f"{self.name}: {nli} belong to lmolt_hallucination")
        return score(TABLE_MODULES[self.name].value, predictions, references, **options)

    def add_to(self, scores: Scores, predictions, references, **options: Any) -> Scores:
        """The hallucination module: fill ``scores`` (a table module's) with the section 3.4 values."""
        from lmolt_hub.metrics.hallucination import add_hallucination

        check_metrics_version(self.name, self.metrics_version)
        if self.name != HALLUCINATION_MODULE:
            raise TypeError(f"{self.name} computes no hallucination measures")
        unknown = sorted(set(options) - set(NLI_OPTIONS))
        if unknown:
            raise TypeError(f"lmolt_hallucination: unknown option(s) {unknown}; known: {list(NLI_OPTIONS)}")
        predictions, references = clean_inputs(predictions, references)  # as score() saw them
        add_hallucination(
            scores,
            predictions,
            references,
            options.get("nli_model"),
            options.get("nli_batch_size", 32),
            options.get("nli_device"),
            nli_revision=options.get("nli_revision"),
        )
        return scores

    def _compute(self, predictions, references, details: bool = False, **options: Any) -> dict[str, Any]:
        if self.name == HALLUCINATION_MODULE:
            direction = options.pop("direction", None)
            if direction not in HALLUCINATION_KEYS:
                raise ValueError("lmolt_hallucination needs direction='smiles2caption' or 'caption2smiles'")
            nli = {k: options.pop(k) for k in NLI_OPTIONS if k in options}
            check_metrics_version(self.name, self.metrics_version)
            options["fcd"] = False  # not a hallucination measure: never computed here
            scores = score(direction, predictions, references, **options)
            out: dict[str, Any] = dict(self.add_to(scores, predictions, references, **nli).hallucination)
        else:
            scores = self.score(predictions, references, **options)
            out = dict(scores.corpus)
        if details:
            out["per_sample"] = scores.per_sample
        return out
