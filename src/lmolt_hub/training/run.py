"""The training stage's entry: ``train(method, recipe, overrides, settings=...)`` and the recipe scripts' main.

``overrides`` are a user's ``--flag value`` strings (recipe scripts, ``lmolt-hub train``, a chain
recipe's ``overrides``). ``settings`` (``TrainSettings``) are typed values a program sets, such as
the chain's merge id, revision, output folder and push target: they are applied to the parsed
recipe directly (never rendered to argv and parsed back) and win over the recipe and overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainSettings:
    """Typed recipe values set by a program; None leaves the recipe's value."""

    model_name_or_path: str | None = None
    model_revision: str | None = None
    output_dir: str | None = None
    push_to_hub: bool | None = None
    hub_model_id: str | None = None

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def as_flags(self) -> list[str]:
        """The same values as ``--flag value`` text, only to show how to reproduce the run (card)."""
        return [
            s
            for k, v in self.values().items()
            for s in (f"--{k}", str(v).lower() if isinstance(v, bool) else str(v))
        ]


def train(method: str, config_path: str | None, overrides: list[str] | None = None,
          callbacks: list | None = None, *, settings: TrainSettings | None = None) -> dict[str, Any]:  # fmt: skip
    """Train ``method`` with the recipe at ``config_path``, ``--flag value`` overrides and typed
    ``settings`` (applied last).

    Returns at least ``output_dir``, ``hub_model_id`` and ``hub_revision`` (the
    pushed commit sha, or None when nothing was pushed).
    """
    from lmolt_hub.training.config import parse_recipe
    from lmolt_hub.training.methods import run, torch_threads

    overrides = list(overrides or [])
    values = settings.values() if settings else {}
    script_args, training_args, model_args = parse_recipe(method, config_path, overrides, values)
    shown = [*overrides, *(settings.as_flags() if settings else [])]  # the card's reproduce command
    with torch_threads(script_args.torch_threads):
        return run(method, script_args, training_args, model_args, config_path, shown, callbacks)


def main_for(method: str, argv: list[str] | None = None) -> int:
    """Entry point of the thin ``recipes/<method>.py`` scripts (``--config`` + overrides)."""
    import sys

    from lmolt_hub.hub.errors import user_errors
    from lmolt_hub.training.config import RecipeError, split_config_flag

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
