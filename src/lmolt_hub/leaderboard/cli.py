"""``lmolt-hub leaderboard {init,submit,review,status,build}``."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from lmolt_hub.hub.errors import ensure_hub_reachable
from lmolt_hub.leaderboard import schedule
from lmolt_hub.leaderboard.validate import DEFAULT_SPOT_CHECK, MAX_SUBMISSION_BYTES, SubmissionError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # --org/--repo on every action, so they may follow it (`lmolt-hub leaderboard build --org x`).
    hub = argparse.ArgumentParser(add_help=False)
    hub.add_argument(
        "--org", default=None, help="Hub namespace of the leaderboard (default $LMOLT_ORG or lmolt)"
    )
    hub.add_argument(
        "--repo", default=None, help="leaderboard dataset repo id (default <org>/lmolt-leaderboard)"
    )
    sub = parser.add_subparsers(dest="action", required=True)

    sub.add_parser("init", parents=[hub], help="create the leaderboard dataset repo (maintainers)")
    schedule.add_arguments(sub, [hub])  # `leaderboard schedule ...`: the reviewer as a Hub scheduled Job

    p = sub.add_parser(
        "submit", parents=[hub], help="open a PR with a results file + samples, or an evaluation request"
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--results", type=Path, help="results_<ts>.json from the harness (samples next to it)")
    what.add_argument("--model", help="ask for an evaluation of this Hub model id")
    p.add_argument("--revision", default=None, help="model revision for --model (default main)")

    p = sub.add_parser(
        "review", parents=[hub], help="validate open PRs, comment, merge or close them (maintainers)"
    )
    p.add_argument("--max-bytes", type=int, default=MAX_SUBMISSION_BYTES, help="size limit of one submission")
    p.add_argument("--rate-limit", type=int, default=5, help="submissions per PR author per window")
    p.add_argument("--window-hours", type=float, default=24.0)
    p.add_argument("--spot-check", type=int, default=DEFAULT_SPOT_CHECK, metavar="N",
                   help=f"regenerate N secretly drawn pairs per direction with the submitted model; outputs must "
                        f"match exactly (default {DEFAULT_SPOT_CHECK}: catches a 5%% forged share with prob >= 99%%; "
                        "0: off, results then count as re-scored only)")  # fmt: skip
    p.add_argument(
        "--full",
        action="store_true",
        help="regenerate every pair, not a random draw (for rows that would rank first)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        metavar="S",
        help="wall-clock limit of each step that runs a submitted model (child process)",
    )
    p.add_argument(
        "--memory-gib", type=float, default=16.0, help="address-space cap of that child on the CPU (GiB)"
    )
    p.add_argument("--evaluate", action="store_true", help="run the harness for evaluation requests")
    p.add_argument("--device", default="cpu", help="device for --spot-check / --evaluate")

    p = sub.add_parser(
        "status", parents=[hub], help="state of every submission (pending, running, verified, rejected)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("build", parents=[hub], help="regenerate leaderboard.json, the page and the plots")
    p.add_argument("--output-dir", type=Path, default=Path("leaderboard"))
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--results-dir", type=Path, help="local copy of the leaderboard repo (default: download main)"
    )
    src.add_argument("--offline", action="store_true", help="paper rows only, no Hub access")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's reported rows")
    p.add_argument(
        "--baseline",
        default=None,
        help="model id of the verified baseline of the aggregate (default <org>/lmolt-sft)",
    )
    p.add_argument(
        "--aggregate-spec", type=Path, default=None, help="JSON file replacing the aggregate definition"
    )
    p.add_argument(
        "--push-space", nargs="?", const="", default=None, metavar="SPACE",
        help="publish the built page as a static Space, one commit (default SPACE <org>/lmolt-leaderboard)",
    )  # fmt: skip


def _repo(args: argparse.Namespace) -> str:
    from lmolt_hub.leaderboard.layout import leaderboard_repo

    return args.repo or leaderboard_repo(args.org)


def _limits(args: argparse.Namespace):
    from lmolt_hub.leaderboard.sandbox import GIB, Limits

    return Limits(timeout_s=args.timeout, memory_bytes=int(args.memory_gib * GIB))


def _harness_hooks(args: argparse.Namespace):
    """The spot check's generation, and the evaluation-request runner the top level wired in
    (``args.evaluator``, set by ``lmolt_hub.cli``: the leaderboard never imports the evaluation stage)."""
    from lmolt_hub.leaderboard.validate import regenerator

    regenerate = regenerator(device=args.device, limits=_limits(args)) if args.spot_check else None
    evaluate = None
    if args.evaluate:
        make = getattr(args, "evaluator", None)
        if make is None:
            raise SystemExit(
                "lmolt-hub leaderboard review: error: --evaluate needs the evaluation harness; "
                "run it as `lmolt-hub leaderboard review --evaluate`"
            )
        evaluate = make(org=args.org, device=args.device)
    return regenerate, evaluate


def _build(args: argparse.Namespace) -> int:
    from lmolt_hub.leaderboard.build import build, hub_card_lookup

    if args.offline and args.push_space is not None:
        raise SystemExit("lmolt-hub leaderboard build: error: --offline builds without the Hub, --push-space "
                         "publishes to it: drop one of them")  # fmt: skip
    spec = json.loads(args.aggregate_spec.read_text()) if args.aggregate_spec else None
    # an explicit id, never a pattern: default <--org, else $LMOLT_ORG, else lmolt>/lmolt-sft
    baseline = args.baseline or (f"{args.org}/lmolt-sft" if args.org and not spec else None)
    common = {"include_paper": not args.no_paper, "spec": spec, "baseline": baseline}
    if args.offline or args.results_dir:
        doc = build(args.output_dir, results_root=args.results_dir, **common)
    else:
        from huggingface_hub import snapshot_download

        with tempfile.TemporaryDirectory(prefix="lmolt-leaderboard-") as tmp:
            snapshot_download(_repo(args), repo_type="dataset", revision="main", local_dir=tmp)
            # method/fusion of models not named like the zoo come from their cards
            doc = build(args.output_dir, results_root=tmp, cards=hub_card_lookup(), **common)
    n_verified = sum(r["kind"] == "verified" for r in doc["rows"])
    print(f"wrote {args.output_dir}/leaderboard.json ({len(doc['rows'])} rows, {n_verified} verified), "
          f"index.html and plots {', '.join(doc['plots'].values())}")  # fmt: skip
    for skipped in doc["inputs"].get("not_counted", []):
        print(f"not counted: {skipped['source']}: {skipped['reason']}")
    for warning in doc["inputs"].get("sample_warnings", []):
        print(f"warning: {warning}")
    _warn_missing_baseline(doc)
    if args.push_space is not None:
        _push_space(args)
    return 0


def _push_space(args: argparse.Namespace) -> None:
    from lmolt_hub.hub.push import PushError
    from lmolt_hub.leaderboard.space import push_space, space_repo

    space = args.push_space or space_repo(args.org)
    try:
        sha = push_space(args.output_dir, space, dataset_repo=_repo(args))
    except PushError as e:  # no token, a read token, a namespace the token may not write
        raise SystemExit(f"lmolt-hub leaderboard build --push-space: error: {e}") from None
    from huggingface_hub import constants

    print(f"published the Space {space} at {sha[:12]}: {constants.ENDPOINT}/spaces/{space}/")


def _warn_missing_baseline(doc: dict) -> None:
    """Without its baseline row no verified row is ranked: say so, rather than a page with no ranks."""
    verified = {r["model"] for r in doc["rows"] if r["kind"] == "verified"}
    baseline = (doc["aggregate"].get("baseline") or {}).get("verified", {}).get("model")
    if verified and baseline and baseline not in verified:
        print(f"verified rows not ranked: the aggregate's baseline {baseline} has no verified row; "
              "pass --baseline MODEL (the quickstart's is <org>/lmolt-sft-caption2smiles)")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from lmolt_hub import leaderboard

    if args.action == "build":
        return _build(args)
    if args.action == "schedule":
        return schedule.main(args)
    if args.action == "submit" and args.results and not args.results.is_file():
        raise SystemExit(
            f"lmolt-hub leaderboard submit: error: --results {args.results}: no such file; "
            "pass the results_<timestamp>.json that eval_harness/run.py wrote"
        )
    repo = _repo(args)
    ensure_hub_reachable(f"lmolt-hub leaderboard {args.action}")  # one line, not ~25 s of upload retries
    if args.action == "init":
        print(leaderboard.create_leaderboard_repo(repo))
        return 0
    if args.action == "submit":
        if args.results:
            try:
                done = leaderboard.submit_results(args.results, repo_id=repo)
            except SubmissionError as e:  # a broken results file: say why, no traceback
                raise SystemExit(f"lmolt-hub leaderboard submit: error: {e}") from None
        else:
            done = leaderboard.submit_request(args.model, args.revision, repo_id=repo)
        from lmolt_hub.hub.links import discussion_link

        print(
            f"opened PR #{done.pr_num} on {repo}: {discussion_link(done.pr_url) or ''}\nfolder: {done.folder}"
        )
        print(f"follow it with: lmolt-hub leaderboard status{' --repo ' + repo if args.repo else ''}")
        return 0
    if args.action == "review":
        regenerate, evaluate = _harness_hooks(args)
        policy = leaderboard.ReviewPolicy(
            spot_check_n=args.spot_check, max_bytes=args.max_bytes, rate_limit=args.rate_limit,
            window_hours=args.window_hours, device=args.device, spot_check_full=args.full, limits=_limits(args),
        )  # fmt: skip
        outcomes = leaderboard.review(
            repo, org=args.org, policy=policy, regenerate=regenerate, evaluate=evaluate
        )
        for o in outcomes:
            print(f"PR #{o.pr_num}: {o.state} - {o.reason}")
        if not outcomes:
            print("no open submissions")
        return 0
    if args.action == "status":
        rows = leaderboard.status(repo)
        if args.json:
            json.dump(rows, sys.stdout, indent=1)
            print()
        else:
            for r in rows:
                print(
                    f"#{r['pr']:<4} {r['state']:<9} {r['title']}"
                    + (f"  ({r['reason']})" if r["reason"] else "")
                )
        return 0
    raise ValueError(f"unknown action {args.action!r}")
