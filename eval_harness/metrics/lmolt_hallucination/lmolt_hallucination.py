"""Hallucination measures of Gkoumas & Liakata (2024) section 3.4; compute(..., direction=...).

    evaluate.load("<org>/lmolt_hallucination")                  # the Hub Space (lmolt-hub metrics push)
    evaluate.load("eval_harness/metrics/lmolt_hallucination")   # a local path

Options of ``lmolt_hub.metrics.score`` pass through ``compute(...)``; ``details=True`` adds the
per-sample values. The logic is lmolt-hub's (``lmolt_hub.metrics.hf_evaluate``); this revision is
for the metric definitions ``METRICS_VERSION`` and refuses to run under others.
"""

from lmolt_hub.metrics.hf_evaluate import LmoltModule, module_base

METRICS_VERSION = "1.0.0"


class LmoltHallucination(LmoltModule, module_base()):
    name = "lmolt_hallucination"
    metrics_version = METRICS_VERSION
