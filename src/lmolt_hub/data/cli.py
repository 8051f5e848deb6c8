"""``lmolt-hub data build|check``: build, check and push the triple and evaluation datasets."""

from __future__ import annotations

import argparse
import json
import sys


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="recipe YAML (recipes/data/*.yaml) or a dataset card README.md"
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="where to write (default: recipe output_dir or outputs/data/<name>)",
    )
    parser.add_argument(
        "--push-to", default=None, metavar="ORG[/NAME]", help="push the built dataset to this Hub repo"
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. splits.train.fraction=0.05"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    add_build_arguments(sub.add_parser("build", help="build a dataset from a recipe (and push it)"))
    check = sub.add_parser(
        "check",
        help="--config: validate a recipe and its sources (no generation, nothing written); "
        "--dataset: check a built folder or Hub dataset against the contract",
    )
    what = check.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", help="recipe to validate")
    what.add_argument("--dataset", help="built dataset folder or Hub id to check")
    check.add_argument("--revision", default=None, help="Hub revision of --dataset")
    check.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides (with --config)")


def _check_config(path: str, overrides: list[str]) -> dict:
    from pathlib import Path

    from lmolt_hub.data.config import TriplesRecipe, load_recipe
    from lmolt_hub.data.sources import load_pairs

    recipe = load_recipe(path, overrides)
    base = Path(path).resolve().parent
    if isinstance(recipe, TriplesRecipe):
        from lmolt_hub.data.negatives import make_rejecter
        from lmolt_hub.data.triples import load_sources, select_pairs

        loaded = load_sources(recipe, base)
        neg = recipe.negatives
        for d in recipe.directions:
            make_rejecter(d, getattr(neg, d), neg.generation, base)
        _, counts = select_pairs(recipe, loaded)
        return {"kind": "triples", "name": recipe.name, "splits": counts}
    from lmolt_hub.data.eval_set import excluded_keys, fcd_api

    if recipe.fcd_stats:
        fcd_api()
    pairs, info = load_pairs(recipe.source, base)
    exclusions = [excluded_keys(ex, base)[1] for ex in recipe.exclude]
    return {"kind": "eval", "name": recipe.name, "source": info, "exclude": exclusions}


def main(args: argparse.Namespace) -> int:
    from lmolt_hub.data import DataError, build_from_config

    try:
        if args.action == "build":
            result = build_from_config(
                args.config, args.overrides, output_dir=args.output_dir, push_to=args.push_to
            )
            print(
                f"wrote {result['output_dir']}"
                + (f"; pushed {result['repo_id']}@{result['revision']}" if result["repo_id"] else "")
            )
            return 0
        if args.dataset:
            from lmolt_hub.data.check import check_dataset

            print(json.dumps(check_dataset(args.dataset, args.revision), indent=2))
        else:
            print(json.dumps(_check_config(args.config, args.overrides), indent=2))
        print("ok")
        return 0
    except DataError as exc:
        print(f"lmolt-hub data: error: {exc}", file=sys.stderr)
        return 2
