"""``--dry-run``: the recipe's memory plan and global batch, before any weights are downloaded."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lmolt_hub.memory import (
    CUDA_OVERHEAD,
    DTYPE_BYTES,
    LORA_BYTES_PER_PARAM,
    MemoryPlan,
    ModelShape,
    activation_bytes_per_token,
    logits_bytes_per_token,
    lora_params,
    weight_bytes,
)
from lmolt_hub.training.config import parse_recipe
from lmolt_hub.training.registry import method_spec


def _dtype(model_args, training_args) -> str:
    if model_args.dtype not in (None, "auto"):
        return model_args.dtype
    return "bfloat16" if training_args.bf16 else "float16" if training_args.fp16 else "float32"


def plan_training(
    shape: ModelShape,
    *,
    method: str,
    dtype: str = "bfloat16",
    load_in_4bit: bool = True,
    double_quant: bool = True,
    lora_r: int | None = 64,
    lora_target_modules: str | Sequence[str] | None = "all-linear",
    lora_dropout: float = 0.1,
    per_device_batch: int = 1,
    max_length: int = 1024,
    gradient_checkpointing: bool = True,
    fsdp_processes: int = 1,
) -> MemoryPlan:
    """Peak memory of one training step on one device (``fsdp_processes`` > 1: weights sharded)."""
    spec = method_spec(method)
    rows = per_device_batch * spec.rows_per_example
    tokens = rows * max_length
    shard = max(1, fsdp_processes)
    parts: dict[str, float] = {}
    label = "NF4 + double quant" if load_in_4bit and double_quant else "NF4" if load_in_4bit else dtype
    parts[f"weights ({label})"] = weight_bytes(shape, dtype, load_in_4bit, double_quant) / shard
    if lora_r:
        n = lora_params(shape, lora_r, lora_target_modules)
        parts[f"LoRA r={lora_r}: {n / 1e6:.1f}M params+grads+AdamW"] = n * LORA_BYTES_PER_PARAM / shard
    else:
        n = shape.total_params()
        parts["full fine-tuning: grads + AdamW"] = n * (DTYPE_BYTES[dtype] + 8) / shard
    ckpt = "with" if gradient_checkpointing else "without"
    parts[f"activations ({tokens} tokens, {ckpt} checkpointing)"] = tokens * activation_bytes_per_token(
        shape, dtype, gradient_checkpointing, lora_r, lora_target_modules, lora_dropout
    )
    parts["logits + loss"] = tokens * logits_bytes_per_token(shape, dtype)
    parts["CUDA context + workspace"] = CUDA_OVERHEAD
    notes = [f"{rows} row(s) of {max_length} tokens per device step"
             + (" (chosen + rejected)" if spec.rows_per_example == 2 else "")]  # fmt: skip
    if spec.reference_pass:
        notes.append("the reference pass (adapter off, no gradients) adds a short-lived copy of the logits")
    return MemoryPlan(parts, notes)


def plan_for_recipe(method: str, shape, training_args, model_args, num_processes: int = 1):
    """The ``memory.MemoryPlan`` of one training step of this recipe on one device."""
    from lmolt_hub.training.fsdp import fsdp_enabled

    return plan_training(
        shape,
        method=method,
        dtype=_dtype(model_args, training_args),
        load_in_4bit=bool(model_args.load_in_4bit),
        double_quant=bool(model_args.use_bnb_nested_quant),
        lora_r=model_args.lora_r if model_args.use_peft else None,
        lora_target_modules=model_args.lora_target_modules,
        lora_dropout=float(model_args.lora_dropout or 0.0),
        per_device_batch=int(training_args.per_device_train_batch_size),
        max_length=int(getattr(training_args, "max_length", None) or 1024),
        gradient_checkpointing=bool(training_args.gradient_checkpointing),
        fsdp_processes=num_processes if fsdp_enabled(training_args) else 1,
    )


def dry_run(
    method: str, config_path: str | None, overrides: list[str], printer: Callable | None = None
) -> int:
    """Print the estimated peak GPU memory and the effective global batch; train nothing.

    Only the base model's config.json is fetched. Without a GPU here the plan is still made
    for one (the recipe is parsed with ``--use_cpu true`` so its bf16 setting is accepted).
    """
    import torch
    from accelerate import PartialState
    from transformers import AutoConfig

    from lmolt_hub.memory import report
    from lmolt_hub.training import models, run_info

    state = PartialState()
    printer = printer or state.print
    extra = [] if torch.cuda.is_available() or "--use_cpu" in overrides else ["--use_cpu", "true"]
    _, training_args, model_args = parse_recipe(method, config_path, [*overrides, *extra])
    base = models.resolve_base_model(model_args.model_name_or_path, model_args.model_revision)
    config = AutoConfig.from_pretrained(base.source, revision=base.pinned)
    n = state.num_processes
    plan = plan_for_recipe(method, ModelShape.from_config(config), training_args, model_args, n)
    report(plan, printer=printer, title=f"{method} on {base.id}: memory per device")
    run_info.announce_batch(training_args, n, printer=printer, warn=state.is_main_process)
    printer("dry run: nothing was trained or downloaded besides the base model's config.json")
    return 0
