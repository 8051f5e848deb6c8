"""The evaluation harness: score any checkpoint (or predictions file) on the 3k unseen pairs.

- ``evaluate_model(model, config=None, **overrides)``: load a Hub id or local path
  (full model or PEFT adapter), generate for both directions (cached, batched,
  sharded over ``accelerate`` processes), score, and write the results files
  (see ``lmolt_hub.formats.results``).
- ``score_predictions_file(path, direction, ...)``: score an existing official
  TSV / JSONL predictions file.

Modules: ``run`` (``evaluate_model``, the stage's entry), ``tasks`` (evaluation set, prompts),
``scoring`` and ``metric_config`` (metrics), ``predictions`` (scoring a predictions file),
``publish`` (``--push-results``), ``cli``. Loading, backends, the cache and ``postprocess`` are the
shared generation engine (``lmolt_hub.generation``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvalConfig", "evaluate_model", "score_predictions_file"]


def evaluate_model(model: str, config: Any = None, **overrides: Any) -> dict[str, Any]:
    from lmolt_hub.evaluation.run import evaluate_model as _evaluate

    return _evaluate(model, config, **overrides)


def score_predictions_file(path: Any, direction: str, **kwargs: Any) -> dict[str, Any]:
    from lmolt_hub.evaluation.predictions import score_predictions_file as _score

    return _score(path, direction, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "EvalConfig":
        from lmolt_hub.evaluation.run import EvalConfig

        return EvalConfig
    raise AttributeError(name)
