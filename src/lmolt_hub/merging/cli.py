"""`lmolt-hub merge --config X [--out DIR] [--push-to ORG/NAME]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="mergekit-schema merge recipe (YAML)")
    parser.add_argument(
        "--out", default=None, help="output directory (default: outputs/merges/<recipe name>)"
    )
    parser.add_argument("--push-to", default=None, metavar="ORG/NAME", help="push the merge to this Hub repo")
    parser.add_argument("--org", default=None, help="value of ${org} placeholders in the recipe")
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="value of another ${KEY} placeholder (repeatable)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    parser.add_argument(
        "--no-generation-check",
        action="store_true",
        help="skip loading the merge and generating a few tokens (weights are still checked)",
    )
    parser.add_argument(
        "--device", default="cpu", help="where mergekit does the arithmetic: cpu, cuda or auto"
    )
    parser.add_argument("--no-lazy", action="store_true", help="turn mergekit's lazy loading off")


def variables_from_args(args: argparse.Namespace) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in args.var:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--var expects KEY=VALUE, got {item!r}")
        out[key] = value
    if args.org:
        out["org"] = args.org
    return out


def main(args: argparse.Namespace) -> int:
    from lmolt_hub.merging import MergeConfigError, merge_from_config

    out = args.out or str(Path("outputs") / "merges" / Path(args.config).stem)
    try:
        result = merge_from_config(
            args.config,
            out,
            push_to=args.push_to,
            variables=variables_from_args(args),
            overwrite=args.overwrite,
            check_generation=not args.no_generation_check,
            lazy=not args.no_lazy,
            device=args.device,
        )
    except MergeConfigError as e:
        print(f"lmolt-hub merge: error: {e}", file=sys.stderr)
        return 2
    shown = {k: result[k] for k in ("method", "output_dir", "hub_model_id", "hub_revision", "reused")}
    shown["parents"] = [f"{p['id']}@{p['revision'] or 'local'}" for p in result["parents"]]
    print(json.dumps(shown, indent=2))
    return 0
