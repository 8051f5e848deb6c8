"""Short ``--help`` for ``lmolt-hub train <method>`` and ``recipes/<method>.py``.

The full list (every field of trl's config, ~900 lines) needs trl, torch and transformers
imported (seconds); the keys people actually change fit on one screen and need none of them.
``--help-all`` prints the full list.
"""

from __future__ import annotations

from dataclasses import fields

from lmolt_hub.training import registry
from lmolt_hub.training.config import ScriptArguments

# trl/transformers/ModelConfig keys changed most often, with a one-line meaning.
COMMON_TRL = {
    "model_name_or_path": "base model: a Hub id, a local path or tiny://llama",
    "output_dir": "where the adapter, checkpoints and run_info.json go",
    "num_train_epochs": "passes over the training rows",
    "max_steps": "stop after N optimiser steps (overrides num_train_epochs when > 0)",
    "learning_rate": "peak learning rate",
    "per_device_train_batch_size": "rows per device per step",
    "gradient_accumulation_steps": "steps accumulated per optimiser update (global batch = both x devices)",
    "max_length": "truncate prompt+answer to this many tokens",
    "eval_strategy": "no | steps | epoch (needs dataset_test_split)",
    "save_strategy": "no | steps | epoch",
    "use_cpu": "train on the CPU (true for the tiny recipes)",
    "bf16": "bfloat16 mixed precision",
    "load_in_4bit": "QLoRA: 4-bit NF4 base weights",
    "lora_r": "LoRA rank",
    "lora_alpha": "LoRA scaling",
    "seed": "random seed (data order, LoRA init)",
    "push_to_hub": "push the adapter with its model card when training ends",
    "hub_model_id": "repository to push to (org/name); else hub_org + hub_name",
    "hub_revision": "branch to push to (default main)",
    "report_to": "none | tensorboard | wandb ...",
}
SCRIPT_KEYS = ("dataset_name", "dataset_config", "dataset_test_split", "directions", "max_train_samples",
               "hub_org", "hub_name", "hub_branch_per_run", "overwrite_hub_revision", "resume", "torch_threads")  # fmt: skip


def _rows(items: dict[str, str]) -> list[str]:
    width = max(map(len, items)) + 2
    return [f"  --{k.ljust(width)} {v}" for k, v in items.items()]


def short_help(method: str, prog: str | None = None) -> str:
    """Usage, --config and the common keys of ``method``: no trl import."""
    prog = prog or f"lmolt-hub train {method}"
    entry = registry.METHODS.get(method)
    method_keys = entry.help_keys if entry else {}
    script = {f.name: f.metadata.get("help", "") for f in fields(ScriptArguments) if f.name in SCRIPT_KEYS}
    lines = [
        f"usage: {prog} --config RECIPE.yaml [--KEY VALUE ...]",
        "",
        f"Train {method.upper()} with a recipe (recipes/<model>/{method}/<variant>.yaml). Every recipe key can",
        "be overridden on the command line as --key value (underscores or dashes; no abbreviations).",
        "",
        "options:",
        "  --config RECIPE.yaml        the recipe (YAML mapping of key: value)",
        "  -h, --help                  this help",
        "  --help-all                  every key of the recipe: trl's full config (slow: imports trl)",
        "",
        "keys people change:",
        *_rows(COMMON_TRL | dict(method_keys)),
        "",
        "lmolt-hub keys:",
        *_rows(script),
        "",
        "Pushing: set push_to_hub: true and HF_TOKEN; the token and endpoint are checked before training.",
        "Push a finished output_dir later with `lmolt-hub push OUTPUT_DIR --repo-id ORG/NAME`.",
    ]
    return "\n".join(lines)
