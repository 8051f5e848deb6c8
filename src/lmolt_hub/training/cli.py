"""``lmolt-hub train <method> --config RECIPE [--flag value ...]``."""

from __future__ import annotations

import argparse

from lmolt_hub.training.registry import METHODS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train with a recipe. Any field of the recipe (script, trl config of the method, model config) "
        "can be overridden as --field value; run `lmolt-hub train <method> --help` for the full list."
    )
    parser.add_argument("method", choices=list(METHODS), help="training objective")
    parser.add_argument(
        "options", nargs=argparse.REMAINDER, help="--config RECIPE.yaml, then --field value overrides"
    )


def main(args: argparse.Namespace) -> int:
    from lmolt_hub.training import main_for

    return main_for(args.method, list(args.options))
