"""The model card of a trained adapter: what the run did, in the words of ``hub_cards/model_adapter.md.j2``.

``CardContext`` is everything the template reads; ``training/methods.py`` fills it at the end of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lmolt_hub.hub.cards import AdapterMeta


@dataclass(kw_only=True)
class CardContext:
    """What the adapter card says about one run (each field is a template variable)."""

    repo_id: str
    revision: str | None
    method: str
    base: Any  # training.models' pinned base model ref (id, pinned, source, is_hub)
    dataset: Any  # training.datasets.DatasetRef
    train_split: str
    n_train: int
    directions: list[str]
    template_version: str
    quantized: bool
    double_quant: bool
    compute_dtype: str
    hyperparameters: dict[str, Any]
    curve: dict[str, Any]
    versions: dict[str, str | None]
    reproduce_command: str
    recipe_yaml: str
    overrides: list[str]
    seed: int
    batch: dict[str, Any]
    git_sha: str | None
    license: str
    selection: dict[str, Any] | None = None
    objective: str | None = None
    eval_split: str | None = None
    n_eval: int = 0


def curve_summary(log_history: list[dict[str, Any]], max_points: int = 12) -> dict[str, Any]:
    losses = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    end = next((h for h in reversed(log_history) if "train_runtime" in h), {})
    if not losses:
        return {"n_logged": 0}
    stride = max(1, math.ceil(len(losses) / max_points))
    points = losses[::stride]
    if points[-1] != losses[-1]:
        points.append(losses[-1])
    fmt = lambda x: float(f"{x:.4g}")  # noqa: E731
    return {
        "n_logged": len(losses),
        "global_steps": losses[-1][0],
        "epochs": round(float(next((h["epoch"] for h in reversed(log_history) if "epoch" in h), 0)), 3),
        "runtime_s": round(float(end.get("train_runtime", 0.0)), 1),
        "first_loss": fmt(losses[0][1]),
        "last_loss": fmt(losses[-1][1]),
        "min_loss": fmt(min(v for _, v in losses)),
        "points": [(s, fmt(v)) for s, v in points],
    }


HYPER_KEYS = (
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "learning_rate", "lr_scheduler_type", "warmup_steps", "max_grad_norm", "optim", "bf16", "weight_decay",
    "max_length", "beta", "loss_type", "cpo_alpha", "desirable_weight", "undesirable_weight",
    "completion_only_loss", "seed", "fp16", "eval_strategy", "save_strategy", "load_best_model_at_end",
    "metric_for_best_model",
)  # fmt: skip
MODEL_KEYS = ("load_in_4bit", "bnb_4bit_quant_type", "use_bnb_nested_quant", "dtype", "lora_r", "lora_alpha",
              "lora_dropout", "lora_target_modules", "use_dora")  # fmt: skip


def hyperparameters(training_args, model_args) -> dict[str, Any]:
    out = {k: getattr(training_args, k) for k in HYPER_KEYS if hasattr(training_args, k)}
    out.update({k: getattr(model_args, k) for k in MODEL_KEYS})
    out["lora_bias"] = "none"
    return {k: (v.value if hasattr(v, "value") else v) for k, v in out.items()}


def portable_recipe_path(recipe_path: str) -> str:
    """``recipes/...`` for a recipe inside a checkout, so the command works in anyone's clone."""
    p = Path(recipe_path).resolve()
    parts = p.parts
    if "recipes" in parts:
        return str(Path(*parts[len(parts) - 1 - parts[::-1].index("recipes") :]))
    return recipe_path


def reproduce_command(method: str, recipe_path: str | None, overrides: list[str]) -> str:
    cfg = f" --config {portable_recipe_path(recipe_path)}" if recipe_path else ""
    extra = (" " + " ".join(overrides)) if overrides else ""
    return f"accelerate launch recipes/{method}.py{cfg}{extra}\n# or: lmolt-hub train {method}{cfg}{extra}"


def write_model_card(out_dir: Path, ctx: CardContext) -> Path:
    from lmolt_hub.hub.render import render_card

    base, dataset = ctx.base, ctx.dataset
    card_data: dict[str, Any] = {
        "license": ctx.license,
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "tags": [
            "lmolt",
            "chemistry",
            "molecule-captioning",
            "text-to-molecule",
            "trl",
            ctx.method,
            "lora",
        ]
        + (["qlora"] if ctx.quantized else []),
    }
    if base.is_hub:
        card_data["base_model"] = base.id
        card_data["base_model_relation"] = "adapter"
    if dataset.is_hub:
        card_data["datasets"] = [dataset.id]
    selection = ctx.selection or {}
    card_data |= AdapterMeta(
        method=ctx.method, parent=base.id, parent_revision=base.pinned, dataset=dataset.id,
        dataset_config=dataset.config, dataset_revision=dataset.pinned, directions=list(ctx.directions),
        template_version=ctx.template_version, git_sha=ctx.git_sha,
        # which objective, and which checkpoint (cards are compared by these)
        objective=ctx.objective, checkpoint_rule=selection.get("rule"),
        kept_epoch=selection.get("kept_epoch"), kept_eval_loss=selection.get("kept_value"),
    ).to_front_matter()  # fmt: skip
    values = {f.name: getattr(ctx, f.name) for f in fields(ctx)}  # shallow: base/dataset stay refs
    text = render_card("model_adapter.md.j2", card_data, **values)
    path = out_dir / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
