"""`lmolt-hub study cpu`: arguments and entry point of the laptop-scale study."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmolt_hub.pipelines.study.run import STUDY_ORG, default_root, rerender, run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scale", choices=["cpu"], help="the study to run (cpu: the laptop-scale ChEBI-20 study)"
    )
    parser.add_argument("--tiny", action="store_true", help="the CI version: a few steps, about a minute")
    parser.add_argument(
        "--root", type=Path, default=None, help="where everything goes (default: the lmolt cache)"
    )
    parser.add_argument("--org", default=STUDY_ORG, help="namespace of everything pushed to the local Hub")
    parser.add_argument(
        "--jobs", type=int, default=None, help="worker processes per stage (default 3; tiny 1)"
    )
    parser.add_argument("--no-dpo", dest="dpo", action="store_false", default=None,
                        help="skip both DPO runs (full scale runs them; --tiny never does)")  # fmt: skip
    parser.add_argument("--docs", type=Path, default=None,
                        help="also copy the report and figures here (e.g. docs/ writes docs/cpu-study.md)")  # fmt: skip
    parser.add_argument("--ancestor", action="store_true",
                        help="train and push the generalist ancestor only (the study then reuses it from the same --root)")  # fmt: skip
    parser.add_argument("--report-only", action="store_true",
                        help="re-render DIR/cpu-study.md (and --docs) from a finished run's DIR/study.json; runs nothing")  # fmt: skip
    parser.add_argument("--port", type=int, default=0, help="port of the in-process local Hub")
    parser.add_argument("--fresh", action="store_true", help="delete DIR and start over")


def main(args: argparse.Namespace) -> int:
    if args.jobs is not None and args.jobs < 1:
        print("lmolt-hub study: --jobs must be at least 1", file=sys.stderr)
        return 2
    root = (args.root or default_root(args.tiny)).resolve()
    if args.report_only:
        return rerender(root, args.docs)
    run(
        root,
        args.org,
        tiny=args.tiny,
        fresh=args.fresh,
        jobs=args.jobs,
        dpo=args.dpo,
        docs=args.docs,
        port=args.port,
        ancestor_only=args.ancestor,
    )
    return 0
