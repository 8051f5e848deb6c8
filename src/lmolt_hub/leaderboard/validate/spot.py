"""The spot check ("reproduced"): chosen pairs regenerated with the submitted model at its validated
sha must equal the submitted outputs; and the regenerator that does it (generation in memory with
the generation engine, no scoring)."""

from __future__ import annotations

import dataclasses
import math
import secrets
from collections.abc import Callable
from typing import Any

from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.leaderboard.validate.basic import SubmissionError, _first_line

# The guarantee (docs/leaderboard.md): if at least FORGED_SHARE of a direction's outputs are not
# what the named model generates, a uniform draw of n distinct rows misses all of them with
# probability at most (1 - FORGED_SHARE) ** n; n is the least value that makes this <= 1 - CONFIDENCE.
FORGED_SHARE = 0.05
CONFIDENCE = 0.99


def spot_check_size(forged_share: float = FORGED_SHARE, confidence: float = CONFIDENCE) -> int:
    """Pairs per direction that catch a forged share >= ``forged_share`` with prob >= ``confidence``."""
    return math.ceil(math.log(1 - confidence) / math.log(1 - forged_share))


DEFAULT_SPOT_CHECK = spot_check_size()  # 90 pairs per direction (all rows of a smaller direction)
# Spot-check regeneration: what a submission may ask the reviewer's machine to do.
MAX_SPOT_NEW_TOKENS = 1024
MAX_SPOT_BEAMS = 4
SPOT_DTYPES = ("default", "auto", "float32", "bfloat16", "float16")
# A chat template renders a prompt within this size (and all prompts within sandbox.Limits.
# template_seconds), or the model is refused.
MAX_PROMPT_CHARS = 64_000


# (results document, direction -> sample rows) -> direction -> the harness's cleaned outputs, one
# per row, in order: every direction in one call, so the model is loaded once and generation batched.
# The reviewer passes a copy of the results whose model.sha is the validated commit.
Regenerate = Callable[[dict[str, Any], dict[str, list[dict[str, Any]]]], dict[str, list[str]]]


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
    from lmolt_hub.prompts import PROMPT_FORMATS

    prompt_format = results.get("prompt_format") or "auto"
    if prompt_format not in PROMPT_FORMATS:
        raise SubmissionError(f"prompt_format {prompt_format!r} is not one of {PROMPT_FORMATS}")
    return {"params": params, "dtype": dtype, "prompt_format": prompt_format,
            "load_in_4bit": bool(model.get("load_in_4bit"))}  # fmt: skip


def draw(n_rows: int, n: int) -> list[int]:
    """``n`` distinct row indices (all rows where ``n >= n_rows``), drawn from the OS's secret random
    source: nothing a submitter knows (PR number, ids, order) predicts them."""
    if n >= n_rows:
        return list(range(n_rows))
    return sorted(secrets.SystemRandom().sample(range(n_rows), n))


def spot_check(
    results: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]],
    regenerate: Regenerate,
    n: int,
    model_sha: str | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """ "Reproduced": regenerate ``n`` secretly drawn pairs per direction (every pair with ``full``)
    with the submitted model at its validated sha; every output must equal the submitted one.

    Call it after the PR head is pinned; the draw is returned (for ``verification.json``) only when
    everything matched, and a failure never names the pairs that were checked."""
    spot_check_settings(results)
    pinned = {**results, "model": {**results["model"], "sha": model_sha or results["model"].get("sha")}}
    picked = {
        d: [rows[i] for i in draw(len(rows), len(rows) if full else n)] for d, rows in sorted(samples.items())
    }
    try:
        outputs = regenerate(pinned, picked)
    except SubmissionError:
        raise
    except Exception as exc:  # noqa: BLE001 - the submitted model could not be run (one line, below)
        raise SubmissionError(
            f"spot check: the model could not be run to regenerate outputs ({_first_line(exc)})"
        ) from None
    checked = sum(len(rows) for rows in picked.values())
    differ = 0
    for direction, rows in picked.items():
        got = outputs.get(direction) if isinstance(outputs, dict) else None
        if not isinstance(got, list) or len(got) != len(rows):
            raise SubmissionError("spot check: the model did not produce one output per regenerated pair")
        differ += sum(out != row["output"] for out, row in zip(got, rows, strict=True))
    if differ:
        raise SubmissionError(
            f"spot check failed: {differ} of {checked} regenerated outputs differ from the submitted ones "
            "(which pairs were drawn is not disclosed); submit the outputs the harness writes for this "
            "model at this commit"
        )
    return {"n_per_direction": n, "full": full, "draw": "secrets.SystemRandom", "forged_share": FORGED_SHARE,
            "confidence": CONFIDENCE, "ids": {d: [str(r["id"]) for r in rows] for d, rows in picked.items()},
            "matched": True}  # fmt: skip


# --------------------------------------------------------------------------- the regenerator


def _generation_params(params: dict[str, Any]):
    from lmolt_hub.generation import GenerationParams

    known = {f.name for f in dataclasses.fields(GenerationParams)}
    return GenerationParams(**{k: v for k, v in params.items() if k in known})


def _render(
    engine: Any, fmt: str, rows_by_direction: dict[str, list[dict[str, Any]]], seconds: float
) -> list[str]:
    """Every prompt, rendered within the chat-template budget (time and size) or refused."""
    from lmolt_hub.leaderboard.sandbox import time_budget
    from lmolt_hub.prompts import format_prompt

    prompts = []
    tokenizer = engine.tokenizer  # loaded (lazily, imports and all) before the budget starts
    with time_budget(seconds, "rendering the model's chat template"):
        for direction, rows in rows_by_direction.items():
            for row in rows:
                prompt = format_prompt(direction, str(row["source"]), fmt, tokenizer)
                if len(prompt) > MAX_PROMPT_CHARS:
                    raise SubmissionError(
                        f"the model's chat template renders a {len(prompt):,}-character prompt "
                        f"(budget {MAX_PROMPT_CHARS:,}): refused"
                    )
                prompts.append(prompt)
    return prompts


def regenerate_in_process(
    results: dict[str, Any],
    rows_by_direction: dict[str, list[dict[str, Any]]],
    device: str | None = "cpu",
    template_seconds: float = 20.0,
) -> dict[str, list[str]]:
    """The spot check's generation (run it in a child: :func:`regenerator`): the model loaded once,
    every direction's prompts rendered within the template budget, one batched generation."""
    from lmolt_hub.generation import Engine, LoadOptions
    from lmolt_hub.leaderboard.sandbox import stage
    from lmolt_hub.prompts import resolve_prompt_format

    model = results["model"]
    settings = spot_check_settings(results)
    load = LoadOptions(dtype=settings["dtype"], load_in_4bit=settings["load_in_4bit"], device=device,
                       trust_remote_code=False, allow_pickle=False)  # fmt: skip
    stage("loading the model and its tokenizer")
    engine = Engine.for_model(model["id"], pinned_revision(model), load, use_cache=False, show_progress=False)
    _ = engine.tokenizer  # loaded here, not inside the template's time budget
    stage("rendering prompts with the model's chat template")
    fmt = resolve_prompt_format(settings["prompt_format"], engine.is_seq2seq)
    prompts = _render(engine, fmt, rows_by_direction, template_seconds)
    stage("tokenizing and generating")
    outputs = engine.generate(prompts, _generation_params(settings["params"]), desc="spot check").outputs
    by_direction, start = {}, 0
    for direction, rows in rows_by_direction.items():
        by_direction[direction], start = outputs[start : start + len(rows)], start + len(rows)
    return by_direction


def regenerator(device: str | None = "cpu", limits: Any = None) -> Regenerate:
    """The spot check's generation in a child process under ``limits`` (``sandbox.Limits``; the
    memory cap applies on the CPU only): the submitted model at its validated sha
    (``results.model.sha``, set by the reviewer), greedy, within the reviewer's bounds
    (``spot_check_settings``), never with remote code or pickle weights, never cached, no scoring.
    A timeout, a crash, a tokenizer panic or a runaway template is a one-line error."""
    from lmolt_hub.leaderboard.sandbox import Limits, run_limited

    limits = limits or Limits()
    if device not in (None, "cpu"):
        limits = dataclasses.replace(limits, memory_bytes=None)  # CUDA reserves huge address space

    def regenerate(
        results: dict[str, Any], rows_by_direction: dict[str, list[dict[str, Any]]]
    ) -> dict[str, list[str]]:
        return run_limited(regenerate_in_process, results, rows_by_direction, device, limits.template_seconds,
                           limits=limits, what="spot check")  # fmt: skip

    return regenerate
