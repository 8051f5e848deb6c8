"""Hallucination win rates of Gkoumas & Liakata (2024) section 3.4; compute(..., direction=...).

Load with `evaluate.load("eval_harness/metrics/lmolt_hallucination")` (a local path). The logic lives in
`lmolt_hub.metrics`; options of `lmolt_hub.metrics.score` pass through `compute(...)`.
"""

import evaluate

from lmolt_hub.metrics.hf_evaluate import compute, higher_is_better, module_info

NAME = "lmolt_hallucination"


class LmoltHallucination(evaluate.Metric):
    higher_is_better = higher_is_better(NAME)

    def _info(self):
        return module_info(self, NAME)

    def _compute(self, predictions, references, **options):
        return compute(NAME, predictions, references, **options)
