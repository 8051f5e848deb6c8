"""The evaluation stage's entry, ``evaluate_model``: load, generate (cached), post-process, score,
write results."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmolt_hub.formats import results as R
from lmolt_hub.formats.direction import Direction
from lmolt_hub.formats.eval_set import load_eval_set
from lmolt_hub.generation.backends import GenerationParams
from lmolt_hub.generation.engine import Engine, Generations, distributed_state, warn
from lmolt_hub.generation.loading import LoadOptions, resolve, resolve_dtype
from lmolt_hub.metrics.scoring import (
    DirectionScores,
    NLIModel,
    eval_set_metric_config,
    metrics_version,
    resolve_nli,
    score_direction,
)
from lmolt_hub.prompts import DIRECTIONS, Task, build_tasks, resolve_prompt_format, template_version


@dataclass
class EvalConfig:
    """Everything ``evaluate_model`` needs besides the model id (the CLI fills it from flags)."""

    revision: str | None = None
    eval_dataset: str | None = None
    eval_revision: str | None = None
    split: str = "test"
    directions: Sequence[str] = DIRECTIONS
    limit: int | None = None
    prompt_format: str = "auto"
    backend: str = "auto"
    batch_size: int = 16
    generation: GenerationParams = field(default_factory=GenerationParams)
    load: LoadOptions = field(default_factory=LoadOptions)
    cache_dir: str | None = None
    use_cache: bool = True
    output_dir: str = "results"
    nli_model: str | None = None  # None: the eval set's pinned NLI model (and revision)
    metric_options: dict[str, Any] = field(default_factory=dict)  # override the eval set's options
    # metric module name -> local path or "<org>/<name>[@revision]": override the eval set's pins
    metric_modules: dict[str, str] = field(default_factory=dict)
    hallucination: bool = True
    bootstrap_resamples: int | None = None  # None: the eval set's pinned number
    seed: int = 0
    push_results: bool = False
    results_repo: str | None = None
    show_progress: bool = True


def _rank() -> tuple[int, int]:
    state = distributed_state()
    return (state.process_index, state.num_processes) if state is not None else (0, 1)


def _nli_before_generation(cfg: EvalConfig, mcfg) -> NLIModel | None:
    """Resolve the NLI model now, so a run learns before generating whether the M->L hallucination
    metrics can be computed (and says which flag fixes it if not)."""
    if not cfg.hallucination or Direction.SMILES2CAPTION not in cfg.directions:
        return None
    nli = resolve_nli(cfg.nli_model or mcfg.nli_model, None if cfg.nli_model else mcfg.nli_revision)
    if nli.error:
        warn(nli.hint())
    return nli


def _generate(task: Task, engine: Engine, cfg: EvalConfig) -> Generations:
    return engine.generate(task.prompts, cfg.generation, desc=task.direction)


def _sample_rows(task: Task, raws: list[str], outputs: list[str], scores: DirectionScores) -> list[dict]:
    rows = []
    for i, (rid, src, ref, prompt, raw, out) in enumerate(
        zip(task.ids, task.sources, task.references, task.prompts, raws, outputs, strict=True)
    ):
        metrics = scores.per_sample[i] if i < len(scores.per_sample) else {}
        rows.append(
            {
                "id": rid,
                "direction": task.direction,
                "source": src,
                "reference": ref,
                "prompt": prompt,
                "raw_output": raw,
                "output": out,
                "metrics": metrics,
            }
        )
    return rows


def evaluate_model(model: str, config: EvalConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Evaluate ``model`` (Hub id or local path; full model or PEFT adapter) and write its results.

    Returns the results document as written (see ``lmolt_hub.formats.results``), plus
    ``"results_path"``: where it was written. In an ``accelerate`` run only the
    main process scores and writes; the others return ``{}``.
    """
    unknown = set(overrides) - {f.name for f in dataclasses.fields(EvalConfig)}
    if unknown:
        raise TypeError(f"evaluate_model: unknown option(s) {', '.join(sorted(unknown))}")
    # copies: the caller's config (and its LoadOptions) are never modified
    cfg = dataclasses.replace(config or EvalConfig(), **overrides)
    cfg.load = dataclasses.replace(cfg.load)
    started = time.monotonic()
    rank, world = _rank()
    if world > 1 and cfg.load.device is None:
        cfg.load.device = str(distributed_state().device)
    cfg.load.dtype = resolve_dtype(cfg.load)  # concrete ("bfloat16", not "default"): keys the cache, recorded

    eval_set = load_eval_set(cfg.eval_dataset, cfg.eval_revision, cfg.split, cfg.limit)  # cheap: fail early
    # the eval set's pinned scoring options (NLI model, conventions, bootstrap); flags override them
    mcfg = eval_set_metric_config(eval_set.id, eval_set.pinned, local=eval_set.local)
    if cfg.bootstrap_resamples is None:
        cfg.bootstrap_resamples = mcfg.bootstrap_resamples
    modules = mcfg.run_modules(cfg.metric_modules)  # resolved before generating: a bad pin fails now
    nli = _nli_before_generation(cfg, mcfg) if rank == 0 else None
    ref = resolve(model, cfg.revision, cfg.load.allow_pickle)
    engine = Engine(
        ref,
        cfg.load,
        backend=cfg.backend,
        batch_size=cfg.batch_size,
        cache_dir=cfg.cache_dir,
        use_cache=cfg.use_cache,
        show_progress=cfg.show_progress,
    )
    prompt_format = resolve_prompt_format(cfg.prompt_format, ref.is_seq2seq)
    # the tokenizer only where the prompts need it (chat templates); a cached run never loads it
    tasks = build_tasks(eval_set, list(cfg.directions), prompt_format,
                        engine.tokenizer if prompt_format == "chat" else None)  # fmt: skip
    # weights only when something must be generated (the results' model block comes from the files);
    # then up front, so vLLM's context is sized for the longest prompt of every direction
    prompts = [p for t in tasks for p in t.prompts]
    if engine.pending(prompts, cfg.generation):
        engine.start(prompts, cfg.generation.max_new_tokens)
    generated: dict[str, list[str]] = {}
    cleaned: dict[str, list[str]] = {}
    n_generated: dict[str, int] = {}
    with engine:
        for task in tasks:
            gen = _generate(task, engine, cfg)
            generated[task.direction], cleaned[task.direction] = gen.raws, gen.outputs
            n_generated[task.direction] = gen.generated
    if rank != 0:
        return {}

    info, backend_name = engine.info, engine.backend_name
    warnings: list[str] = list(engine.notes) + ([nli.hint()] if nli is not None and nli.error else [])
    per_direction: dict[str, tuple[Task, list[str], list[str], DirectionScores]] = {}
    for task in tasks:
        raws, outputs = generated[task.direction], cleaned[task.direction]
        empty = sum(not o for o in outputs)
        if empty == len(outputs):
            warnings.append(
                f"{task.direction}: the model produced no output for any of the {empty} prompts "
                "(check the prompt format, --max-new-tokens and the tokenizer's EOS)"
            )
            warn(warnings[-1])
        elif empty:
            warnings.append(f"{task.direction}: {empty} of {len(outputs)} outputs are empty")
        opts = {**mcfg.score_options(task.direction), **cfg.metric_options}
        if task.direction == Direction.CAPTION2SMILES and opts.get("fcd", True):
            stats = eval_set.fcd_stats(task.references, opts.get("fcd_convention", mcfg.fcd_convention))
            if stats is not None:
                opts["fcd_reference_stats"] = stats
        scores = score_direction(
            task.direction,
            outputs,
            task.references,
            options=opts,
            hallucination=cfg.hallucination,
            bootstrap_resamples=cfg.bootstrap_resamples,
            seed=cfg.seed,
            nli=nli,
            modules=modules,
        )
        per_direction[task.direction] = (task, raws, outputs, scores)

    return _write(
        model,
        cfg,
        info,
        eval_set,
        prompt_format,
        backend_name,
        world,
        per_direction,
        n_generated,
        warnings,
        time.monotonic() - started,
        modules.recorded(list(per_direction), cfg.hallucination),
    )


def _write(
    model,
    cfg,
    info,
    eval_set,
    prompt_format,
    backend_name,
    world,
    per_direction,
    n_generated,
    warnings,
    wall,
    metric_modules,
) -> dict[str, Any]:
    from lmolt_hub.provenance import command_line, git_sha, library_versions

    out_dir = R.run_dir(cfg.output_dir, model, cfg.revision)
    doc: dict[str, Any] = {
        "schema_version": R.SCHEMA_VERSION,
        "kind": "model",
        "created_at": R.utc_now_iso(),
        "model": info,
        "eval_dataset": eval_set.info(),
        "template_version": template_version(prompt_format),
        "prompt_format": prompt_format,
        "generation": {
            "backend": backend_name,
            "params": cfg.generation.to_dict(),
            "batch_size": cfg.batch_size,
            "num_processes": world,
            "generated": n_generated,
            "cached": {d: len(t[0].prompts) - n_generated[d] for d, t in per_direction.items()},
        },
        "metrics_version": metrics_version(),
        "metric_modules": metric_modules,
        "metric_options": {
            "hallucination": cfg.hallucination,
            "by_direction": {d: t[3].options for d, t in per_direction.items()},
        },
        **R.not_computed_block({d: t[3].not_computed for d, t in per_direction.items()}),
        "directions": list(per_direction),
        "results": {d: t[3].corpus for d, t in per_direction.items()},
        "confidence_intervals": {d: t[3].confidence_intervals for d, t in per_direction.items()},
        "bootstrap": {"n_resamples": cfg.bootstrap_resamples, "seed": cfg.seed, "confidence": 0.95},
        "hallucination": {d: t[3].hallucination for d, t in per_direction.items() if t[3].hallucination},
        "n_samples": {d: len(t[0].prompts) for d, t in per_direction.items()},
        "versions": library_versions(),
        "git_sha": git_sha(),
        "command": command_line(),
        "wall_time_s": round(wall, 3),
        "samples": {d: R.samples_filename(d) for d in per_direction},
        "tsv": {d: R.tsv_filename(d) for d in per_direction},
        "warnings": warnings,
    }
    R.validate_results(R.to_jsonable(doc))  # refuse before writing anything
    for d, (task, raws, outputs, scores) in per_direction.items():
        R.write_samples(_sample_rows(task, raws, outputs, scores), out_dir / R.samples_filename(d))
        R.write_official_tsv(d, task.sources, task.references, outputs, out_dir / R.tsv_filename(d))
    path = R.write_results(doc, out_dir)
    written = R.read_results(path)
    if cfg.push_results:
        from lmolt_hub.evaluation.publish import push_results

        written["push"] = push_results(path, repo=cfg.results_repo)
    written["results_path"] = str(path)
    return written
