"""The `lmolt-hub` console command.

Each subcommand lives in its own module, which exposes
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only
when their subcommand runs, so `lmolt-hub --help` stays fast and one command's
heavy imports (torch, trl, mergekit) never slow down another.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from lmolt_hub.hub.errors import did_you_mean, user_errors
from lmolt_hub.pipelines.requests import evaluator

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("lmolt_hub.localhub.cli", "run the local Hub-compatible server"),
    "setup-wordnet": ("lmolt_hub.metrics.wordnet", "install WordNet for METEOR offline"),
    "data": ("lmolt_hub.data.cli", "build, check and push the triple and evaluation datasets"),
    "train": ("lmolt_hub.training.cli", "train with a recipe (sft, dpo, cpo, kto)"),
    "push": ("lmolt_hub.training.push", "push a finished training output_dir to the Hub"),
    "merge": ("lmolt_hub.merging.cli", "merge models with a mergekit recipe"),
    "chain": ("lmolt_hub.pipelines.chain", "run merge -> push -> train -> push from a chain recipe"),
    "lineage": ("lmolt_hub.hub.lineage", "print the tree of parents of a Hub model"),
    "eval": ("lmolt_hub.evaluation.cli", "evaluate a checkpoint (same as eval_harness/run.py)"),
    "metrics": ("lmolt_hub.metrics.spaces", "publish the metric modules as Hub Spaces (metrics push)"),
    "leaderboard": ("lmolt_hub.leaderboard.cli", "submit, review, build the leaderboard"),
    "report": ("lmolt_hub.leaderboard.report", "compare verified results with the paper's tables"),
    "quickstart": ("lmolt_hub.pipelines.quickstart", "run the whole pipeline offline on tiny models"),
    "study": ("lmolt_hub.pipelines.study", "laptop-scale replication study on ChEBI-20 (study cpu [--tiny])"),
}

# What the top level hands a stage's command that needs another stage's work (argparse defaults).
WIRING: dict[str, dict[str, Any]] = {"leaderboard": {"evaluator": evaluator}}


class Parser(argparse.ArgumentParser):
    """No prefix matching (`--learning-rat` is an error, never a silent expansion), and "did you
    mean" for an unknown option. Subparsers are built from the same class, so they inherit both."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if message.startswith("unrecognized arguments:"):
            options = _option_strings(self)
            unknown = [w for w in message.split(":", 1)[1].split() if w.startswith("-")]
            message += "".join(did_you_mean(w.split("=")[0], options, "--") for w in unknown[:1])
        super().error(message)


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option of ``parser`` and of its subcommands."""
    out = []
    for action in parser._actions:
        out += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _option_strings(sub)
    return out


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: lmolt-hub <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `lmolt-hub <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        from lmolt_hub import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        hint = did_you_mean(name, COMMANDS)
        print(f"lmolt-hub: unknown command {name!r}{hint}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    prog = f"lmolt-hub {name}"
    parser = Parser(prog=prog, description=COMMANDS[name][1])
    module.add_arguments(parser)
    parser.set_defaults(**WIRING.get(name, {}))
    args = parser.parse_args(rest)
    with user_errors(prog):
        return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
