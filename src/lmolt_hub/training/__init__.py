"""Training recipes: SFT, DPO, CPO and KTO with QLoRA, pushed to the Hub with model cards.

``train(method, config_path, overrides)`` is the one entry point used by the
recipe scripts (``recipes/<method>.py``), ``lmolt-hub train`` and ``lmolt-hub chain``.
"""

from __future__ import annotations

from typing import Any

from lmolt_hub.training.config import RecipeError, parse_recipe

__all__ = ["RecipeError", "parse_recipe", "train", "main_for"]


def train(method: str, config_path: str | None, overrides: list[str] | None = None,
          callbacks: list | None = None) -> dict[str, Any]:  # fmt: skip
    """Train ``method`` with the recipe at ``config_path`` and ``--flag value`` overrides.

    Returns at least ``output_dir``, ``hub_model_id`` and ``hub_revision`` (the
    pushed commit sha, or None when nothing was pushed).
    """
    from lmolt_hub.training.methods import run, torch_threads

    overrides = list(overrides or [])
    script_args, training_args, model_args = parse_recipe(method, config_path, overrides)
    with torch_threads(script_args.torch_threads):
        return run(method, script_args, training_args, model_args, config_path, overrides, callbacks)


def main_for(method: str, argv: list[str] | None = None) -> int:
    """Entry point of the thin ``recipes/<method>.py`` scripts (``--config`` + overrides)."""
    import sys

    from lmolt_hub.errors import user_errors
    from lmolt_hub.training.config import split_config_flag

    args = list(sys.argv[1:] if argv is None else argv)
    if "--help-all" in args:
        from lmolt_hub.training.config import make_parser

        make_parser(method).print_help()
        return 0
    if any(a in ("-h", "--help") for a in args):
        from lmolt_hub.training.help import short_help

        print(short_help(method))
        return 0
    dry = "--dry-run" in args  # memory plan + global batch only (training/dry_run.py)
    config, rest = split_config_flag([a for a in args if a != "--dry-run"])
    try:
        with user_errors(f"lmolt-hub train {method}"):  # no Hub server / bad token: one line, exit 1
            if dry:
                from lmolt_hub.training.dry_run import dry_run

                return dry_run(method, config, rest)
            result = train(method, config, rest)
    except RecipeError as e:
        print(f"lmolt-hub train {method}: error: {e}", file=sys.stderr)
        return 2
    if "run_info" not in result:  # not the main process: it saved and pushed nothing
        return 0
    print(f"adapter: {result['output_dir']}")
    if result.get("hub_model_id"):
        print(
            f"pushed: {result['hub_model_id']} @ {result.get('hub_branch') or 'main'} ({result['hub_revision']})"
        )
    return 0
