"""The reviewer's spot-check hook: generation in memory, no scoring.

* :func:`regenerator`: the spot check. Regenerates chosen pairs of a submission in memory
  with the generation engine (``lmolt_hub.generation``), with the submitted model at the sha
  the reviewer validated, its dtype, prompt format and greedy generation parameters (bounded),
  and returns the outputs cleaned by the same ``postprocess`` as the harness's.

Serving an evaluation request runs the evaluation stage, which the leaderboard never imports: the
top level hands ``review`` that callable (``lmolt_hub.pipelines.requests.evaluator``).
"""

from __future__ import annotations

import dataclasses
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
        from lmolt_hub.generation import Engine, LoadOptions
        from lmolt_hub.leaderboard.validate import spot_check_settings
        from lmolt_hub.prompts import format_prompt, resolve_prompt_format

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

