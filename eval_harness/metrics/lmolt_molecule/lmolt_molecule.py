"""Caption -> molecule metrics (BLEU, exact, Levenshtein, validity, fingerprints, FCD, uniqueness),
faithful to the official MolT5 / L+M-24 scripts.

    evaluate.load("<org>/lmolt_molecule")                  # the Hub Space (lmolt-hub metrics push)
    evaluate.load("eval_harness/metrics/lmolt_molecule")   # a local path

Options of ``lmolt_hub.metrics.score`` pass through ``compute(...)``; ``details=True`` adds the
per-sample values. The logic is lmolt-hub's (``lmolt_hub.metrics.hf_evaluate``); this revision is
for the metric definitions ``METRICS_VERSION`` and refuses to run under others.
"""

from lmolt_hub.metrics.hf_evaluate import LmoltModule, module_base

METRICS_VERSION = "1.0.0"


class LmoltMolecule(LmoltModule, module_base()):
    name = "lmolt_molecule"
    metrics_version = METRICS_VERSION
