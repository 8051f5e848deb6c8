"""The spot check ("reproduced"): chosen pairs regenerated with the submitted model at its validated
sha must equal the submitted outputs; and the regenerator that does it (generation in memory with
the generation engine, no scoring)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.leaderboard.validate.basic import SubmissionError, _first_line

DEFAULT_SPOT_CHECK = 3  # pairs regenerated per direction by default
# Spot-check regeneration: what a submission may ask the reviewer's machine to do.
MAX_SPOT_NEW_TOKENS = 1024
MAX_SPOT_BEAMS = 4
SPOT_DTYPES = ("default", "auto", "float32", "bfloat16", "float16")


# (results document, direction, sample rows) -> the harness's cleaned outputs, one per row.
# The reviewer passes a copy of the results whose model.sha is the validated commit.
Regenerate = Callable[[dict[str, Any], str, list[dict[str, Any]]], list[str]]


def spot_check_settings(results: dict[str, Any]) -> dict[str, Any]:
    """Generation settings a spot check may use, checked against the reviewer's bounds."""
    params = dict((results.get("generation") or {}).get("params") or {})
    if params.get("do_sample"):
        raise SubmissionError("spot check needs greedy outputs, but the submission sampled (do_sample=true)")
    new_tokens, beams = params.get("max_new_tokens", 512), params.get("num_beams", 1)
    if not isinstance(new_tokens, int) or not 1 <= new_tokens <= MAX_SPOT_NEW_TOKENS:
        raise SubmissionError(f"generation max_new_tokens {new_tokens!r} is outside 1..{MAX_SPOT_NEW_TOKENS}")
    if not isinstance(beams, int) or not 1 <= beams <= MAX_SPOT_BEAMS:
        raise SubmissionError(f"generation num_beams {beams!r} is outside 1..{MAX_SPOT_BEAMS}")
    model = results["model"]
    dtype = model.get("dtype") or "default"
    if dtype not in SPOT_DTYPES:
        raise SubmissionError(f"model dtype {dtype!r} is not one of {SPOT_DTYPES}")
    from lmolt_hub.eval_tasks import PROMPT_FORMATS

    prompt_format = results.get("prompt_format") or "auto"
    if prompt_format not in PROMPT_FORMATS:
        raise SubmissionError(f"prompt_format {prompt_format!r} is not one of {PROMPT_FORMATS}")
    return {"params": params, "dtype": dtype, "prompt_format": prompt_format,
            "load_in_4bit": bool(model.get("load_in_4bit"))}  # fmt: skip


def spot_check(
    results: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]],
    regenerate: Regenerate,
    n: int,
    seed: int,
    model_sha: str | None = None,
) -> dict[str, Any]:
    """ "Reproduced": regenerate ``n`` random pairs per direction with the submitted model at its
    validated sha; every output must equal the submitted one exactly."""
    spot_check_settings(results)
    pinned = {**results, "model": {**results["model"], "sha": model_sha or results["model"].get("sha")}}
    rng = random.Random(seed)
    checked: dict[str, list[str]] = {}
    for direction, rows in sorted(samples.items()):
        chosen = sorted(rng.sample(range(len(rows)), min(n, len(rows))))
        picked = [rows[i] for i in chosen]
        try:
            outputs = regenerate(pinned, direction, picked)
        except SubmissionError:
            raise
        except Exception as exc:  # noqa: BLE001 - the submitted model could not be run
            raise SubmissionError(
                f"spot check: the model could not be run to regenerate outputs ({type(exc).__name__}: "
                f"{_first_line(exc)})"
            ) from None
        for row, output in zip(picked, outputs, strict=True):
            if output != row["output"]:
                raise SubmissionError(
                    f"spot check failed: regenerating sample {row['id']} ({direction}) gave {output[:200]!r}, "
                    f"the submission has {row['output'][:200]!r}"
                )
        checked[direction] = [str(r["id"]) for r in picked]
    return {"n_per_direction": n, "seed": seed, "ids": checked, "matched": True}


# --------------------------------------------------------------------------- the regenerator


def _generation_params(params: dict[str, Any]):
    from lmolt_hub.generation import GenerationParams

    known = {f.name for f in dataclasses.fields(GenerationParams)}
    return GenerationParams(**{k: v for k, v in params.items() if k in known})


def regenerator(device: str | None = "cpu") -> Regenerate:
    """The spot check's generation: the submitted model at its validated sha (``results.model.sha``,
    set by the reviewer), greedy, within the reviewer's bounds (``validate.spot_check_settings``),
    never with remote code or pickle weights, never cached, and with no scoring."""

    def regenerate(results: dict[str, Any], direction: str, rows: list[dict[str, Any]]) -> list[str]:
        from lmolt_hub.eval_tasks import format_prompt, resolve_prompt_format
        from lmolt_hub.generation import Engine, LoadOptions

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
