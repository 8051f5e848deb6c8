"""One trainer per method, and the run that ties data, model, trainer and Hub together."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmolt_hub.training import card, fsdp, models, publish, run_info
from lmolt_hub.training import datasets as tdata
from lmolt_hub.training.config import TINY_SCHEME, RecipeError
from lmolt_hub.training.registry import method_spec

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads, restoring the caller's setting afterwards."""
    if not n:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_output_dir(path: str) -> Path:
    """Create ``path`` and prove it is writable before anything expensive happens."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".lmolt-write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise RecipeError(
            f"output_dir {out} is not writable ({e.strerror}): pass --output_dir <a writable dir>"
        ) from e
    return out


def last_checkpoint(out: Path) -> str | None:
    """The newest *complete* ``checkpoint-N`` in ``out``.

    The Trainer writes ``trainer_state.json`` last, so a job killed while saving leaves a
    checkpoint without it; resuming from that one would fail, so it is skipped.
    """
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not out.is_dir():
        return None
    found = []
    for d in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = d.name.rsplit("-", 1)[-1]
        if d.is_dir() and step.isdigit():
            found.append((int(step), d))
    for _, d in sorted(found, reverse=True):
        if (d / "trainer_state.json").is_file():
            return str(d)
        logger.warning("skipping incomplete checkpoint %s (the job was killed while saving it)", d)
    return None


def resume_from(script_args, out: Path) -> str | None:
    ckpt = last_checkpoint(out)
    if script_args.resume and ckpt is None:
        raise RecipeError(
            f"--resume: no checkpoint-* directory in {out}; run without --resume to start afresh"
        )
    if ckpt and (script_args.resume or script_args.auto_resume):
        logger.warning("resuming from %s", ckpt)
        return ckpt
    return None


def build_trainer(
    method: str, model, tokenizer, training_args, peft_config, train_ds, eval_ds, callbacks=None,
    append_eos: bool = True,
):  # fmt: skip
    """The trl trainer of ``method``; the tokenizer goes in as ``processing_class``."""
    spec = method_spec(method)
    _, trainer_cls = spec.classes()
    if not append_eos and spec.no_eos_trainer is not None:
        trainer_cls = spec.no_eos_trainer()
    return trainer_cls(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def _load_data(method: str, script_args, training_args):
    name = script_args.dataset_name
    config = script_args.dataset_config
    ref = tdata.resolve_dataset(name, config, script_args.dataset_revision)
    rev = ref.pinned

    def split(s: str):
        raw = tdata.load_split(name, config, rev, s)
        return tdata.prepare(method, raw, script_args.directions, script_args.unpair_triples,
                             script_args.max_train_samples if s == script_args.dataset_train_split else None)  # fmt: skip

    train_ds = split(script_args.dataset_train_split)
    if method_spec(method).shuffle:
        # e.g. KTO reads its rows in order (its KL term pairs each row with its batch neighbours), so
        # mix prompts, directions and labels here, reproducibly.
        train_ds = train_ds.shuffle(seed=training_args.seed)
    eval_ds = None
    if str(getattr(training_args, "eval_strategy", "no")) not in ("no", "IntervalStrategy.NO"):
        if not script_args.dataset_test_split:
            raise RecipeError("eval_strategy is set but dataset_test_split is not: name the validation split")
        eval_ds = split(script_args.dataset_test_split)  # every row: checkpoint selection sees all of it
    return ref, train_ds, eval_ds


def cpu_optimizer_fallback(training_args) -> str | None:
    """Swap a paged bitsandbytes optimizer for torch AdamW when training on the CPU; return the old name.

    Paging (bitsandbytes' unified-memory optimizer states) exists only on CUDA. paged_adamw_32bit
    is AdamW with 32-bit states, so torch AdamW is the same update without the paging.
    """
    import torch
    from transformers.training_args import OptimizerNames

    name = str(getattr(training_args.optim, "value", training_args.optim))
    on_gpu = torch.cuda.is_available() and not getattr(training_args, "use_cpu", False)
    if on_gpu or not name.startswith("paged_adamw"):
        return None
    training_args.optim = OptimizerNames.ADAMW_TORCH
    logger.warning("optim %s needs CUDA; training on the CPU with adamw_torch (the same AdamW update)", name)
    return name


def quiet_defaults(method: str, training_args) -> None:
    """Settings trl/accelerate would otherwise change or warn about on every run (unless the recipe sets them)."""
    for name, value in method_spec(method).settings.items():  # e.g. CPO's raw columns (registry.py)
        setattr(training_args, name, value)
    if getattr(training_args, "ddp_find_unused_parameters", False) is None:
        # LoRA weights all take part in every forward: DDP's unused-parameter search finds nothing,
        # costs a graph walk per step and warns about it. A recipe can still set it to true.
        training_args.ddp_find_unused_parameters = False


def merged_repo(script_args, repo_id: str) -> str:
    return script_args.merged_hub_model_id or f"{repo_id}-merged"


def run(method: str, script_args, training_args, model_args, recipe_path: str | None = None,
        overrides: list[str] | None = None, callbacks: list | None = None) -> dict[str, Any]:  # fmt: skip
    """Train ``method`` as the parsed recipe says; save (and push) the adapter; return a summary."""
    from accelerate import PartialState
    from transformers import set_seed

    from lmolt_hub.prompts import DIRECTIONS, TEMPLATE_VERSION

    overrides = list(overrides or [])
    state = PartialState()
    out = check_output_dir(training_args.output_dir)
    ckpt = resume_from(script_args, out)  # a bad --resume fails here, before any loading
    repo_id, revision = publish.hub_target(method, script_args, training_args)
    if repo_id and state.is_main_process:  # fail before training, not after hours of it
        publish.check_push_access(repo_id)  # endpoint up, Xet off for a local Hub, token may write
        publish.check_revision_free(repo_id, revision, script_args.overwrite_hub_revision)
        if script_args.push_merged:
            publish.check_revision_free(
                merged_repo(script_args, repo_id), revision, script_args.overwrite_hub_revision
            )
    # We push ourselves (card, template, run info): keep the Trainer from creating repos or pushing.
    training_args.push_to_hub = False
    quiet_defaults(method, training_args)

    batch = run_info.announce_batch(
        training_args, state.num_processes, printer=state.print, warn=state.is_main_process
    )
    ds_ref, train_ds, eval_ds = _load_data(method, script_args, training_args)
    with state.main_process_first():  # rank 0 builds a tiny:// model once; the others reuse it
        if repo_id and model_args.model_name_or_path.startswith(TINY_SCHEME):
            model_args.model_name_or_path = models.publish_tiny_base(
                model_args.model_name_or_path, repo_id.split("/")[0]
            )
        base_ref = models.resolve_base_model(model_args.model_name_or_path, model_args.model_revision)
    tokenizer = models.load_tokenizer(base_ref, script_args.tokenizer_pad_token)

    # CPO in trl 1.16 reads quantisation etc. only from model_init_kwargs when it loads the model
    # itself; we load it here, so those kwargs go to from_pretrained and the trainer gets none.
    extra = dict(getattr(training_args, "model_init_kwargs", None) or {})
    if hasattr(training_args, "model_init_kwargs"):
        training_args.model_init_kwargs = None
    set_seed(training_args.seed)  # LoRA init is random: seed before the adapter is created
    model = models.load_base_model(base_ref, model_args, training_args, extra)
    peft_config = models.lora_config(model_args)
    # FSDP-QLoRA: CPO's trainer would cast norms to fp32, which FSDP cannot flatten (training/fsdp.py)
    in_fsdp = fsdp.fsdp_enabled(training_args)
    model, peft_config = fsdp.adapt_for_fsdp_qlora(method, model, peft_config, in_fsdp)
    optim_fallback = cpu_optimizer_fallback(training_args)
    trainer = build_trainer(method, model, tokenizer, training_args, peft_config, train_ds, eval_ds, callbacks,
                            append_eos=script_args.append_eos)  # fmt: skip
    # Wrapping may create new Linear4bit references; enforce the trainable layout once more.
    models.disable_cpu_inference_repack(trainer.model)
    models.keep_trainable_fp32(trainer.model, training_args)  # before the optimiser exists (train())

    trainer.train(resume_from_checkpoint=ckpt)
    trainer.save_model(str(out))

    result: dict[str, Any] = {"output_dir": str(out), "hub_model_id": repo_id, "hub_revision": None,
                              "hub_branch": revision, "merged_hub_model_id": None, "merged_hub_revision": None,
                              "base_model": base_ref.id, "base_sha": base_ref.sha,
                              "resumed_from": ckpt, "global_batch_size": batch["global_batch_size"]}  # fmt: skip
    if state.is_main_process:
        directions = script_args.directions or list(DIRECTIONS)
        publish.save_generation_config(trainer.model, tokenizer, out)
        publish.save_instruction_template(tokenizer, out)
        info = run_info.build_run_info(method, script_args, training_args, model_args, batch, base_ref, ds_ref,
                                       str(recipe_path) if recipe_path else None, overrides)  # fmt: skip
        info["train_rows"] = len(train_ds)
        info["distributed"] = {"num_processes": state.num_processes, "backend": state.backend}
        info["log_history"] = trainer.state.log_history
        info["optim_fallback"] = optim_fallback
        selection = run_info.checkpoint_selection(trainer.state, training_args)
        info["checkpoint_selection"] = selection
        run_info.save_run_info(info, out)
        recipe_text = Path(recipe_path).read_text(encoding="utf-8") if recipe_path else "# (no recipe file)"
        card.write_model_card(out, card.CardContext(
            repo_id=repo_id or str(out), revision=revision, method=method, base=base_ref,
            dataset=ds_ref, train_split=script_args.dataset_train_split, n_train=len(train_ds),
            directions=directions, template_version=TEMPLATE_VERSION,
            quantized=bool(model_args.load_in_4bit), double_quant=bool(model_args.use_bnb_nested_quant),
            compute_dtype=model_args.dtype or "bfloat16",
            hyperparameters=card.hyperparameters(training_args, model_args),
            curve=card.curve_summary(trainer.state.log_history), versions=info["versions"],
            reproduce_command=card.reproduce_command(method, recipe_path, overrides),
            recipe_yaml=recipe_text, overrides=overrides, seed=training_args.seed, batch=batch,
            git_sha=info["git_sha"], license=script_args.model_license,
            selection=selection, objective=run_info.objective(method, training_args, script_args),
            eval_split=script_args.dataset_test_split if eval_ds is not None else None,
            n_eval=len(eval_ds) if eval_ds is not None else 0,
        ))  # fmt: skip
        if repo_id:
            result["hub_revision"] = publish.push_run(out, repo_id, revision, training_args.hub_private_repo,
                                                     f"lmolt-hub: {method} adapter")  # fmt: skip
            state.print(f"pushed {repo_id}@{revision or 'main'} ({result['hub_revision']})")
        if script_args.push_merged:
            merged_dir = publish.save_merged(base_ref, model_args, out, out / "merged", tokenizer)
            if repo_id:
                mid = merged_repo(script_args, repo_id)
                result["merged_hub_model_id"] = mid
                result["merged_hub_revision"] = publish.push_run(merged_dir, mid, revision,
                                                                training_args.hub_private_repo,
                                                                f"lmolt-hub: base + {method} adapter, merged", [])  # fmt: skip
        result["run_info"] = str(out / run_info.RUN_INFO)
    state.wait_for_everyone()
    return result
