"""Hooks that let the reviewer generate and evaluate.

* :func:`regenerator`: the spot check. Regenerates chosen pairs of a submission in memory
  with the generation engine (``lmolt_hub.generation``), with the submitted model at the sha
  the reviewer validated, its dtype, prompt format and greedy generation parameters (bounded),
  and returns the outputs cleaned by the same ``postprocess`` as the harness's.
* :func:`evaluator`: serves an evaluation request by running the full harness
  with the eval set's pinned metric configuration.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.leaderboard.validate import Regenerate


def _generation_params(params: dict[str, Any]):
    from lmolt_hub.generation import GenerationParams

    known = {f.name for f in dataclasses.fields(GenerationParams)}
    return GenerationParams(**{k: v for k, v in params.items() if k in known})


def regenerator(device: str | None = "cpu") -> Regenerate:
    """The spot check's generation: the submitted model at its validated sha (``results.model.sha``,
    set by the reviewer), greedy, within the reviewer's bounds (``validate.spot_check_settings``),
    never with remote code or pickle weights, never cached, and with no scoring."""

    def regenerate(results: dict[str, Any], direction: str, rows: list[dict[str, Any]]) -> list[str]:
        from lmolt_hub.evaluation.tasks import format_prompt, resolve_prompt_format
        from lmolt_hub.generation import Engine, LoadOptions
        from lmolt_hub.leaderboard.validate import spot_check_settings

        model = results["model"]
        settings = spot_check_settings(results)
        load = LoadOptions(
            dtype=settings["dtype"],
            load_in_4bit=settings["load_in_4bit"],
            device=device,
            trust_remote_code=False,
            allow_pickle=False,
        )
        engine = Engine.for_model(
            model["id"], pinned_revision(model), load, use_cache=False, show_progress=False
        )
        fmt = resolve_prompt_format(settings["prompt_format"], engine.is_seq2seq)
        prompts = [format_prompt(direction, str(r["source"]), fmt, engine.tokenizer) for r in rows]
        return engine.generate(prompts, _generation_params(settings["params"]), desc="spot check").outputs

    return regenerate


def evaluator(
    org: str | None = None, device: str | None = "cpu", output_dir: str | Path | None = None, **options: Any
):
    """(model_id, revision) -> folder with the harness's results file and samples.

    Scores with the eval set's pinned configuration (its NLI model and revision, conventions and
    bootstrap: the harness reads them from the eval set), so the results pass the reviewer's re-score.
    """

    def evaluate(model_id: str, revision: str) -> Path:
        from lmolt_hub.evaluation.run import EvalConfig, evaluate_model
        from lmolt_hub.evaluation.tasks import default_eval_dataset
        from lmolt_hub.generation.loading import LoadOptions

        eval_dataset = f"{org}/lmolt-eval-3k" if org else default_eval_dataset()
        out = Path(output_dir or tempfile.mkdtemp(prefix="lmolt-request-"))
        cfg = EvalConfig(
            revision=revision,
            eval_dataset=eval_dataset,
            load=LoadOptions(device=device),
            output_dir=str(out),
            **options,
        )
        doc = evaluate_model(model_id, cfg)
        return Path(doc["results_path"]).parent

    return evaluate
