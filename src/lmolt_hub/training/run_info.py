"""What a run was: resolved config, seed, batch geometry, versions, git sha.

Saved as ``run_info.json`` beside the adapter (and pushed with it), so a
result can always be traced back to the exact recipe and environment.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmolt_hub.io import write_json
from lmolt_hub.provenance import command_line, git_sha, library_versions

logger = logging.getLogger(__name__)
RUN_INFO = "run_info.json"


def global_batch(training_args, num_processes: int) -> dict[str, int]:
    per_device = int(training_args.per_device_train_batch_size)
    accum = int(training_args.gradient_accumulation_steps)
    return {
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": accum,
        "num_processes": num_processes,
        "global_batch_size": per_device * accum * num_processes,
    }


def announce_batch(training_args, num_processes: int, printer=print, warn: bool = True) -> dict[str, int]:
    """Print the global batch; warn when the number of processes changes it from the recipe's."""
    g = global_batch(training_args, num_processes)
    printer(
        f"global batch = {g['per_device_train_batch_size']} per device x {g['gradient_accumulation_steps']} "
        f"accumulation x {num_processes} processes = {g['global_batch_size']}"
    )
    if num_processes != 1 and warn:
        single = g["per_device_train_batch_size"] * g["gradient_accumulation_steps"]
        msg = (
            f"{num_processes} processes make the global batch {g['global_batch_size']} instead of the recipe's "
            f"single-process {single}; to keep {single}, set gradient_accumulation_steps to "
            f"{max(1, single // (g['per_device_train_batch_size'] * num_processes))}"
        )
        warnings.warn(msg, stacklevel=2)
        logger.warning(msg)
    return g


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def resolved_config(script_args, training_args, model_args) -> dict[str, Any]:
    # to_dict() hides tokens; the remaining fields are exactly what ran.
    targs = (
        training_args.to_dict() if hasattr(training_args, "to_dict") else dataclasses.asdict(training_args)
    )
    return {
        "script": _jsonable(script_args),
        "training": _jsonable(targs),
        "model": _jsonable(model_args),
    }


def build_run_info(method: str, script_args, training_args, model_args, batch: dict[str, int],
                   base: Any, dataset: Any, recipe_path: str | None, overrides: list[str]) -> dict[str, Any]:  # fmt: skip
    return {
        "method": method,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": training_args.seed,
        "batch": batch,
        "base_model": _jsonable(base),
        "dataset": _jsonable(dataset),
        "recipe": recipe_path,
        "overrides": list(overrides),
        "command": command_line(),
        "config": resolved_config(script_args, training_args, model_args),
        "versions": library_versions(),
        "git_sha": git_sha(),
    }


def save_run_info(info: dict[str, Any], out_dir: str | Path) -> Path:
    path = Path(out_dir) / RUN_INFO
    write_json(path, info, indent=2, sort_keys=False)  # never a half-written file beside the adapter
    return path


def _metric_key(metric: str | None) -> str:
    metric = metric or "loss"
    return metric if metric.startswith("eval_") else f"eval_{metric}"


def _epoch(x: float | None) -> float | int | None:
    """1.0 -> 1: epochs at epoch boundaries read as whole numbers in cards."""
    if x is None:
        return None
    x = round(float(x), 4)
    return int(x) if x.is_integer() else x


def checkpoint_selection(state, training_args) -> dict[str, Any]:
    """Which checkpoint the saved adapter is, and why: the best evaluation, or simply the last step.

    ``state`` is the Trainer's final TrainerState; with ``load_best_model_at_end`` the Trainer has
    already loaded ``state.best_model_checkpoint`` back, and that is what gets saved and pushed.
    """
    key = _metric_key(getattr(training_args, "metric_for_best_model", None))
    evals = [{"epoch": _epoch(h.get("epoch", 0.0)), "step": int(h["step"]), key: float(h[key])}
             for h in state.log_history if key in h and "step" in h]  # fmt: skip
    last = {"step": int(state.global_step), "epoch": _epoch(state.epoch or 0.0)}
    if not getattr(training_args, "load_best_model_at_end", False) or not state.best_model_checkpoint:
        at_last = next((e[key] for e in evals if e["step"] == last["step"]), None)
        return {"rule": "last", "metric": key, "kept_step": last["step"], "kept_epoch": last["epoch"],
                "kept_value": at_last, "checkpoint": None, "evaluations": evals, "last": last}  # fmt: skip
    step = int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1])
    kept = next((e for e in evals if e["step"] == step), {"epoch": None})
    direction = "highest" if getattr(training_args, "greater_is_better", False) else "lowest"
    return {"rule": f"{direction} {key}", "metric": key, "kept_step": step, "kept_epoch": kept["epoch"],
            "kept_value": float(state.best_metric) if state.best_metric is not None else None,
            "checkpoint": Path(state.best_model_checkpoint).name, "evaluations": evals, "last": last}  # fmt: skip


def objective(method: str, training_args, script_args) -> str:
    """One line saying exactly which loss was optimised (the card's answer to "which DPO?"): the
    method's own wording (training/registry.py)."""
    from lmolt_hub.training.registry import method_spec

    return method_spec(method).objective(training_args, script_args)
