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

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("lmolt_hub.localhub.cli", "run the local Hub-compatible server"),
    "setup-wordnet": ("lmolt_hub.metrics.wordnet", "install WordNet for METEOR offline"),
    "data": ("lmolt_hub.data.cli", "build, check and push the triple and evaluation datasets"),
    "train": ("lmolt_hub.training.cli", "train with a recipe (sft, dpo, cpo, kto)"),
    "merge": ("lmolt_hub.merging.cli", "merge models with a mergekit recipe"),
    "chain": ("lmolt_hub.chain", "run merge -> push -> train -> push from a chain recipe"),
    "lineage": ("lmolt_hub.lineage", "print the tree of parents of a Hub model"),
    "eval": ("lmolt_hub.evaluation.cli", "evaluate a checkpoint (same as eval_harness/run.py)"),
    "leaderboard": ("lmolt_hub.leaderboard.cli", "submit, review, build the leaderboard"),
    "report": ("lmolt_hub.report", "compare verified results with the paper's tables"),
    "quickstart": ("lmolt_hub.quickstart", "run the whole pipeline offline on tiny models"),
}


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
        print(f"lmolt-hub: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"lmolt-hub {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
