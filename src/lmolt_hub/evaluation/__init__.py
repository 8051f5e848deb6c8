"""The evaluation harness: score any checkpoint (or predictions file) on the 3k unseen pairs.

- ``evaluate_model(model, config=None, **overrides)``: load a Hub id or local path
  (full model or PEFT adapter), generate for both directions (cached, batched,
  sharded over ``accelerate`` processes), score, and write the results files
  (see ``lmolt_hub.results``).
- ``score_predictions_file(path, direction, ...)``: score an existing official
  TSV / JSONL predictions file.

Modules: ``loading`` (checkpoints), ``tasks`` (evaluation set, prompts),
``generation`` (backends, ``postprocess``), ``cache`` (generation cache),
``scoring`` (metrics), ``publish`` (``--push-results``), ``cli``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvalConfig", "evaluate_model", "score_predictions_file"]


def evaluate_model(model: str, config: Any = None, **overrides: Any) -> dict[str, Any]:
    from lmolt_hub.evaluation.runner import evaluate_model as _evaluate

    return _evaluate(model, config, **overrides)


def score_predictions_file(path: Any, direction: str, **kwargs: Any) -> dict[str, Any]:
    from lmolt_hub.evaluation.predictions import score_predictions_file as _score

    return _score(path, direction, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "EvalConfig":
        from lmolt_hub.evaluation.runner import EvalConfig

        return EvalConfig
    raise AttributeError(name)
