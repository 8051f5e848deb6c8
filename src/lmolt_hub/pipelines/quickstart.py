"""`lmolt-hub quickstart`: the whole method, offline, on tiny models, in one command.

Stages (each timed, each resumable; ``--fresh`` starts over):

1. ``hub``: start the local Hub in-process on ``DIR/hub`` (servable later with
   ``lmolt-hub serve --root DIR/hub``), publish the metric modules as Spaces (``<org>/lmolt_caption``,
   ...) and push a tiny NLI stand-in for the hallucination metric;
2. ``datasets``: build the triple and evaluation datasets from the bundled data and push them (the
   eval set pins the metric modules' commits);
3. ``chain``: tiny L->M and M->L SFT models, their SLERP merge (19:1) and CPO on the merge,
   each pushed with its card (``recipes/tiny/slerp-cpo/chain.yaml``);
4. ``evaluate``: the harness scores ``<org>/lmolt-slerp-cpo`` and both SFT models by Hub id;
5. ``leaderboard``: the results go in as pull requests, are reviewed, and the leaderboard page,
   ``leaderboard.json`` and plots are rebuilt into ``DIR/hub/site/leaderboard`` and published as
   the static Space ``<org>/lmolt-leaderboard``;
6. ``report``: the reproduction report (verified rows vs the paper) in ``DIR/report.md``.

``DIR/quickstart.json`` lists every repository pushed (id, type, revision, role) and every results file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmolt_hub.naming import DEFAULT_ORG, eval_dataset
from lmolt_hub.pipelines.state import Stages, StepState
from lmolt_hub.resources import cache_dir as lmolt_cache_dir
from lmolt_hub.resources import recipe as shipped_recipe

NLI_NAME = "tiny-nli-deberta"
BOOTSTRAP_RESAMPLES = 200  # the small eval set's pinned bootstrap (its metric_config.json)


def default_root() -> Path:
    return lmolt_cache_dir("quickstart")


def _recipe(relative: str) -> Path:
    """A recipe shipped in the package (recipes/ of a clone, package data of a wheel)."""
    try:
        return shipped_recipe(relative)
    except FileNotFoundError as e:
        raise SystemExit(f"lmolt-hub quickstart: {e}") from None


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024  # ru_maxrss is in KiB on Linux


class Quickstart:
    def __init__(
        self, root: Path, org: str, limit: int, max_new_tokens: int, log: Callable[[str], None] = print
    ):
        self.root, self.org, self.limit, self.log = root, org, limit, log
        self.max_new_tokens = max_new_tokens
        self.state = StepState(root / "quickstart_state.json")
        self.stages = Stages(self.state, "quickstart", log)
        self.stage, self.timings = self.stages.stage, self.stages.timings

    # -- stages ------------------------------------------------------------------------------

    def push_nli(self) -> dict[str, Any]:
        return push_nli(self.org)

    def push_hub(self) -> dict[str, Any]:
        """The NLI stand-in, then the metric modules as Spaces (``lmolt-hub metrics push``)."""
        from lmolt_hub.metrics.spaces import push_modules

        pins = push_modules(self.org)
        spaces = [
            _repo(p["id"], "space", p["revision"], "metric module (evaluate.load)") for p in pins.values()
        ]
        nli = self.push_nli()
        return {"repos": nli["repos"] + spaces, "metric_modules": pins}

    def datasets(
        self, nli_revision: str | None = None, modules: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        from lmolt_hub.data import build_from_config

        repos = []
        # The evaluation set keeps `limit` pairs so that results cover it whole (the leaderboard
        # accepts only complete runs); the real recipe keeps 3,000. Its metric configuration
        # (metric_config.json) names the local NLI stand-in, pinned, so scoring works offline.
        eval_overrides = [
            f"n={self.limit}",
            f"metrics.nli_model={self.org}/{NLI_NAME}",
            f"metrics.nli_revision='{nli_revision}'" if nli_revision else "metrics.nli_revision=",  # a string
            f"metrics.bootstrap_resamples={BOOTSTRAP_RESAMPLES}",
            # results on it are scored by the metric module Spaces, pinned at their commits
            *(f"metrics.modules.{n}={p['id']}@{p['revision']}" for n, p in (modules or {}).items()),
        ]
        for recipe, role, overrides in (
            ("triples.yaml", "training triples", []),
            ("eval.yaml", "unseen evaluation set (small)", eval_overrides),
        ):
            out = build_from_config(
                _recipe(f"data/default/{recipe}"),
                overrides,
                output_dir=self.root / "work" / "data" / Path(recipe).stem,
                push_to=self.org,
            )
            repos.append(_repo(out["repo_id"], "dataset", out["revision"], role))
        return {"repos": repos}

    def chain(self) -> dict[str, Any]:
        from lmolt_hub.pipelines.chain import run_chain

        marks: list[tuple[str, float]] = []

        def log(msg: str) -> None:  # time each chain step by its start message
            marks.append((msg, time.perf_counter()))
            self.log(msg)

        out = run_chain(
            _recipe("tiny/slerp-cpo/chain.yaml"), org=self.org, work_dir=self.root / "work" / "chain", log=log
        )
        marks.append(("end", time.perf_counter()))
        steps = {m: round(t1 - t0, 1) for (m, t0), (_, t1) in zip(marks, marks[1:], strict=False)}
        roles = ["L->M SFT (caption2smiles)", "M->L SFT (smiles2caption)"]
        repos = [
            _repo(p["hub_model_id"], "model", p["hub_revision"], role)
            for p, role in zip(out["parents"], roles, strict=False)
        ]
        repos.append(
            _repo(out["merge"]["hub_model_id"], "model", out["merge"]["hub_revision"], "SLERP merge 19:1")
        )
        repos.append(
            _repo(
                out["train"]["hub_model_id"], "model", out["train"]["hub_revision"], "CPO on the SLERP merge"
            )
        )
        return {"repos": repos, "step_seconds": steps}

    def evaluate(self, models: list[str]) -> dict[str, Any]:
        from lmolt_hub.evaluation import evaluate_model
        from lmolt_hub.generation.backends import GenerationParams

        files = []
        for model in models:
            doc = evaluate_model(
                model,
                eval_dataset=eval_dataset(self.org),
                output_dir=str(self.root / "results"),
                cache_dir=str(self.root / "work" / "generations"),
                nli_model=f"{self.org}/{NLI_NAME}",
                bootstrap_resamples=BOOTSTRAP_RESAMPLES,
                generation=GenerationParams(max_new_tokens=self.max_new_tokens),
            )
            files.append({"model": model, "results": doc["results_path"]})
        return {"results": files}

    def leaderboard(self, results: list[dict[str, str]]) -> dict[str, Any]:
        from lmolt_hub.leaderboard import ReviewPolicy, leaderboard_repo
        from lmolt_hub.leaderboard.run import run

        repo = leaderboard_repo(self.org)
        site = self.root / "hub" / "site" / "leaderboard"
        done = run(
            [r["results"] for r in results], repo, org=self.org, site=site,
            work_dir=self.root / "work" / "leaderboard-repo",
            policy=ReviewPolicy(rate_limit=1_000_000),  # the local leaderboard is ours alone: no rate limit
            # the aggregate's baseline: the L->M SFT parent of the chain (the quickstart has no lmolt-sft)
            baseline=f"{self.org}/lmolt-sft-caption2smiles",
        )  # fmt: skip
        outcomes, doc, sha = done["outcomes"], done["document"], done["sha"]
        space_sha = self.publish_space(site, repo)
        return {
            "repos": [
                _repo(repo, "dataset", sha, "leaderboard (submissions arrive as pull requests)"),
                _repo(repo, "space", space_sha, "leaderboard Space (static page, served at /spaces/<id>/)"),
            ],
            "reviews": [{"pr": o.pr_num, "state": o.state, "reason": o.reason} for o in outcomes],
            "site": str(site),
            "rows": len(doc["rows"]),
        }

    def publish_space(self, site: Path, dataset_repo: str) -> str:
        """The built page as the static Space ``<org>/lmolt-leaderboard``, as `build --push-space` does."""
        from lmolt_hub.leaderboard.space import push_space, space_repo

        return push_space(site, space_repo(self.org), dataset_repo=dataset_repo)

    def report(self, site: str) -> dict[str, Any]:
        from lmolt_hub.leaderboard.report import write_report

        path = self.root / "report.md"
        write_report(Path(site) / "leaderboard.json", path)
        return {"report": str(path)}


def push_nli(org: str) -> dict[str, Any]:
    """Push the tiny NLI stand-in of the hallucination metric to ``<org>/tiny-nli-deberta``."""
    import tempfile

    from lmolt_hub.hub.push import push_folder
    from lmolt_hub.tiny import save_tiny_nli

    repo = f"{org}/{NLI_NAME}"
    with tempfile.TemporaryDirectory() as tmp:
        save_tiny_nli(Path(tmp))
        sha = push_folder(tmp, repo, message="tiny NLI stand-in")
    return {"repos": [_repo(repo, "model", sha, "NLI stand-in for the hallucination metric")]}


def _repo(repo_id: str, repo_type: str, revision: str | None, role: str) -> dict[str, Any]:
    return {"id": repo_id, "type": repo_type, "revision": revision, "role": role}


def prepare_root(root: Path, fresh: bool) -> None:
    """Create ``root`` (emptied first with ``fresh``); a run that has not imported the Hub clients yet
    keeps its Hub cache in ``root`` so the user's own cache stays untouched."""
    if fresh and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    if "huggingface_hub.constants" not in sys.modules:
        os.environ.setdefault("HF_HOME", str(root / "hf_home"))


def run(
    root: Path,
    org: str = DEFAULT_ORG,
    limit: int = 16,
    max_new_tokens: int = 64,
    fresh: bool = False,
    port: int = 0,
) -> dict[str, Any]:
    """Run (or resume) the quickstart in ``root``; returns the content of ``quickstart.json``."""
    from lmolt_hub.localhub import use_local_hub

    prepare_root(root, fresh)
    started = time.perf_counter()
    with use_local_hub(root / "hub", port=port) as hub:
        qs = Quickstart(root, org, limit, max_new_tokens)
        qs.log(f"[quickstart] local Hub at {hub.url} (store: {root / 'hub'})")
        nli = qs.stage("hub", qs.push_hub)
        data = qs.stage(
            "datasets", lambda: qs.datasets(nli["repos"][0]["revision"], nli.get("metric_modules"))
        )
        chain = qs.stage("chain", qs.chain)
        models = [
            f"{org}/lmolt-slerp-cpo",
            f"{org}/lmolt-sft-caption2smiles",
            f"{org}/lmolt-sft-smiles2caption",
        ]
        evaluated = qs.stage("evaluate", lambda: qs.evaluate(models))
        board = qs.stage("leaderboard", lambda: qs.leaderboard(evaluated["results"]))
        rep = qs.stage("report", lambda: qs.report(board["site"]))
        summary = {
            "root": str(root),
            "hub_store": str(root / "hub"),
            "org": org,
            "repos": nli["repos"] + data["repos"] + chain["repos"] + board["repos"],
            "results": evaluated["results"],
            "leaderboard": {"site": board["site"], "reviews": board["reviews"]},
            "report": rep["report"],
            "timings_s": {name: round(s, 1) for name, s, _ in qs.timings},
            "chain_step_seconds": chain.get("step_seconds", {}),
            "total_s": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
        }
    (root / "quickstart.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print_summary(summary, qs.timings)
    return summary


def _print_summary(summary: dict[str, Any], timings: list[tuple[str, float, bool]]) -> None:
    print("\nstage        seconds")
    for name, seconds, reused in timings:
        print(f"  {name:<11}{'reused' if reused else f'{seconds:7.1f}'}")
    print(f"  {'total':<11}{summary['total_s']:7.1f}   (peak RSS {summary['peak_rss_mb']:.0f} MB)")
    print("\npushed to the local Hub:")
    for r in summary["repos"]:
        print(f"  {r['type']:<8}{r['id']:<40}{(r['revision'] or '')[:10]}  {r['role']}")
    print("\nresults:")
    for r in summary["results"]:
        print(f"  {r['model']}: {r['results']}")
    root = summary["root"]
    print(
        f"\nreport:      {summary['report']}\n"
        f"summary:     {root}/quickstart.json\n"
        f"browse:      lmolt-hub serve --root {summary['hub_store']} --port 8088\n"
        f"             then open http://127.0.0.1:8088/ (the zoo) and the leaderboard Space "
        f"/spaces/{summary['org']}/lmolt-leaderboard/"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", type=Path, default=None, help=f"where everything goes (default {default_root()})"
    )
    parser.add_argument("--org", default=DEFAULT_ORG, help="namespace of everything pushed to the local Hub")
    parser.add_argument(
        "--limit", type=int, default=16, help="size of the evaluation set (pairs, both directions)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=64, help="generation length cap for the tiny models"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port of the in-process local Hub (default: any free)"
    )
    parser.add_argument("--fresh", action="store_true", help="delete DIR and start over")


def main(args: argparse.Namespace) -> int:
    if args.limit < 1 or args.max_new_tokens < 1:
        print("lmolt-hub quickstart: --limit and --max-new-tokens must be at least 1", file=sys.stderr)
        return 2
    root = (args.root or default_root()).resolve()
    run(root, args.org, args.limit, args.max_new_tokens, fresh=args.fresh, port=args.port)
    return 0
