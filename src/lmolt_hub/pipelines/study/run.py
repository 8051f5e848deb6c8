"""`lmolt-hub study cpu`: the whole method at laptop scale on real data (ChEBI-20), one command.

A bigger, real-data sibling of the quickstart, through the same recipes, chain and harness as the
Meditron path (``recipes/cpu-study/``); only model size and data differ. Stages (each timed and
resumable through ``DIR/study_state.json``; ``--fresh`` starts over):

1. ``hub``: the local Hub in-process on ``DIR/hub``; the NLI stand-in for the hallucination metric;
2. ``ancestor``: the generalist ancestor (``ancestor.py``): a small Llama pretrained on unpaired
   English (WordNet) and unpaired SMILES (ZINC, ChEBI-20 test.txt), pushed as
   ``${org}/lmolt-cpu-ancestor`` with its random init (``${org}/lmolt-cpu-init``, the "learnt
   nothing" reference); ``--ancestor`` runs this stage alone, and the study reuses it;
3. ``datasets``: all test.txt triples, the preference slice, the held-out set (validation.txt minus
   every training molecule), each pushed;
4. ``bases``: one full fine-tune of the ancestor per direction on all training pairs, best epoch by
   validation loss (``recipes/cpu-study/base/*.yaml``), the analogs of the LPM24 Meditrons;
5. ``methods``: SFT, CPO (and both DPO losses) on the slice, and the SLERP/TIES 19:1 chains with
   CPO on the merge (``recipes/cpu-study/*-cpo*/chain.yaml``: SLERP with our and the authors' CPO
   schedule, TIES with normalize true and false);
6. ``evaluate``: the harness on every model, bases included, with CIs and hallucination metrics;
   at most as many new tokens as the longest references need (``token_cap``);
7. ``leaderboard``: results go in as pull requests, are reviewed, and a leaderboard of this track
   alone ("cpu-scale, ChEBI-20") is built into ``DIR/hub/site/leaderboard-cpu-study``;
8. ``report``: ``DIR/cpu-study.md`` and its figures (``lmolt_hub.pipelines.study.report``), claims
   decided by a paired bootstrap with a Holm correction (``paired.py``).

Independent jobs of a stage run as ``--jobs`` worker processes (``lmolt_hub.pipelines.study.jobs``);
each finished job is recorded at once, so an interrupted stage redoes only unfinished jobs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lmolt_hub.formats.direction import DIRECTION_NAMES
from lmolt_hub.pipelines.quickstart import NLI_NAME, _repo, prepare_root, push_nli
from lmolt_hub.pipelines.state import Stages, StepState
from lmolt_hub.pipelines.study.ancestor import TINY_ANCESTOR, AncestorScale
from lmolt_hub.pipelines.study.jobs import MemorySampler, run_jobs
from lmolt_hub.resources import cache_dir as lmolt_cache_dir
from lmolt_hub.resources import recipe as shipped_recipe

TRACK = "cpu-scale, ChEBI-20"
# The study's own namespace: its eval set is <org>/lmolt-eval-3k there (the name the leaderboard
# reviewer scores), so its track can never mix with the L+M-24 rows of the main namespace.
STUDY_ORG = "lmolt-cpu"
RANDOM_LIMIT = 64  # pairs the random init is scored on (the "learns at all" reference; not submitted)
INIT = "lmolt-cpu-init"
ANCESTOR = "lmolt-cpu-ancestor"
BASES = {
    "caption2smiles": "lmolt-cpu-base-caption2smiles",
    "smiles2caption": "lmolt-cpu-base-smiles2caption",
}
# (zoo name, method, recipe, role) of the single-model runs on the slice, all from the L->M base
RUNS = [
    ("lmolt-cpu-sft", "sft", "sft/lora.yaml", "SFT"),
    ("lmolt-cpu-cpo", "cpo", "cpo/lora.yaml", "CPO"),
    ("lmolt-cpu-dpo", "dpo", "dpo/sigmoid.yaml", "DPO (sigmoid)"),
    ("lmolt-cpu-dpo-kto-pair", "dpo", "dpo/kto_pair.yaml", "DPO (kto_pair)"),
]
CHAINS = [
    ("lmolt-cpu-slerp-cpo", "slerp-cpo/chain.yaml", "SLERP+CPO"),
    ("lmolt-cpu-slerp-cpo-authors", "slerp-cpo-authors/chain.yaml", "SLERP+CPO (authors' schedule)"),
    ("lmolt-cpu-ties-cpo", "ties-cpo/chain.yaml", "TIES+CPO"),
    ("lmolt-cpu-ties-cpo-exact", "ties-cpo-exact/chain.yaml", "TIES (exact 19:1)+CPO"),
]


@dataclass
class Scale:
    """Everything the full study and its CI version (``--tiny``) differ in."""

    ancestor: AncestorScale = field(default_factory=AncestorScale)
    eval_n: int = 1000
    max_new_tokens: int = 200  # the ceiling; token_cap lowers it to what the references need
    eval_batch_size: int = 64  # tiny models: a decode step costs about the same for 32 or 64 rows
    bootstrap_resamples: int = 1000
    dpo: bool = True  # both DPO losses (sigmoid, kto_pair) (--no-dpo skips)
    jobs: int = 2  # one per core: 3 workers on 2 cores only thrash
    data_overrides: dict[str, list[str]] = field(default_factory=dict)
    train_args: list[str] = field(default_factory=list)


FULL = Scale()
TINY = Scale(
    ancestor=TINY_ANCESTOR,
    eval_n=6,
    max_new_tokens=12,
    eval_batch_size=8,
    bootstrap_resamples=50,
    dpo=False,
    jobs=1,
    data_overrides={
        "triples": ["splits.train.limit=24", "splits.validation.limit=8"],
        "slice": ["splits.train.limit=6", "splits.validation.limit=4"],
    },
    train_args=["--num_train_epochs", "1", "--logging_steps", "1"],
)


def default_root(tiny: bool = False) -> Path:
    return lmolt_cache_dir("cpu-study-tiny" if tiny else "cpu-study")


def recipe(relative: str) -> Path:
    """A cpu-study recipe shipped as package data (``recipes/cpu-study/<relative>``)."""
    return shipped_recipe(f"cpu-study/{relative}")


# -- the study ------------------------------------------------------------------------------


class Study:
    """The study's stages; timing and resume come from the shared ``Stages`` helper."""

    def __init__(self, root: Path, org: str, scale: Scale, tiny: bool, log: Callable[[str], None] = print):
        self.root, self.org, self.scale, self.tiny, self.log = root, org, scale, tiny, log
        self.state = StepState(root / "study_state.json")
        self.stages = Stages(self.state, "study", log)
        self.stage, self.timings = self.stages.stage, self.stages.timings

    def push_nli(self) -> dict[str, Any]:
        return push_nli(self.org)

    def _jobs(self, stage: str, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        logs = self.root / "logs"
        return run_jobs(jobs, self.state, stage, self.scale.jobs, logs, self.log)

    def ancestor(self) -> dict[str, Any]:
        """Pretrain the ancestor (resumable from its checkpoint) and push it with its random init."""
        from lmolt_hub.hub.push import push_folder
        from lmolt_hub.pipelines.study.ancestor import train_ancestor

        work = self.root / "work" / "ancestor"
        t0 = time.perf_counter()
        info = train_ancestor(work, self.scale.ancestor, self.log)
        info["seconds"] = round(time.perf_counter() - t0, 1)
        repos = []
        for folder, name, role in (("init", INIT, "random init of the ancestor (the 'learnt nothing' reference)"),
                                   ("ancestor", ANCESTOR, "generalist ancestor (Meditron-7B analog)")):  # fmt: skip
            sha = push_folder(work / folder, f"{self.org}/{name}", message=f"cpu-study {folder}")
            repos.append(_repo(f"{self.org}/{name}", "model", sha, role))
        return {"repos": repos, "info": info}

    def datasets(self, nli_revision: str | None = None) -> dict[str, Any]:
        from lmolt_hub.data import build_from_config

        eval_overrides = [
            f"n={self.scale.eval_n}",
            f"metrics.nli_model={self.org}/{NLI_NAME}",
            f"metrics.nli_revision={nli_revision}" if nli_revision else "metrics.nli_revision=",
            f"metrics.bootstrap_resamples={self.scale.bootstrap_resamples}",
        ]
        repos, counts = [], {}
        for key, role, extra in (
            ("triples", "all training triples (test.txt)", []),
            ("slice", "preference slice", []),
            ("eval", "held-out set (validation.txt minus training molecules)", eval_overrides),
        ):
            out = build_from_config(
                recipe(f"data/{key}.yaml"),
                [*self.scale.data_overrides.get(key, []), *extra],
                output_dir=self.root / "work" / "data" / key,
                push_to=self.org,
            )
            repos.append(_repo(out["repo_id"], "dataset", out["revision"], role))
            counts[key] = out.get("summary")
        return {"repos": repos, "counts": counts}

    def _train_spec(self, method: str, config: str, name: str, model: str, revision: str | None,
                    dataset: str) -> dict[str, Any]:  # fmt: skip
        overrides = ["--model_name_or_path", model, "--dataset_name", dataset]
        overrides += ["--model_revision", revision] if revision else []
        overrides += ["--push_to_hub", "true", "--hub_model_id", f"{self.org}/{name}"]
        out = str(self.root / "work" / "train" / name)
        overrides += ["--output_dir", out, *self.scale.train_args]
        return {"kind": "train", "method": method, "config": str(recipe(config)), "overrides": overrides,
                "output_dir": out}  # fmt: skip

    def bases(self, ancestor_revision: str) -> dict[str, Any]:
        jobs = {
            name: self._train_spec(
                "sft",
                f"base/{d}.yaml",
                name,
                f"{self.org}/{ANCESTOR}",
                ancestor_revision,
                f"{self.org}/lmolt-cpu-triples",
            )  # fmt: skip
            for d, name in BASES.items()
        }
        return self._jobs("bases", jobs)

    def methods(self, l2m_revision: str) -> dict[str, Any]:
        jobs: dict[str, dict[str, Any]] = {}
        # chains first: they are the longest jobs (merge + CPO), so the pool ends evenly
        for name, config, _ in CHAINS:
            jobs[name] = {"kind": "chain", "config": str(recipe(config)), "org": self.org,
                          "work_dir": str(self.root / "work" / "chains" / name),
                          "train_args": self.scale.train_args}  # fmt: skip
        for name, method, config, _ in RUNS:
            if method == "dpo" and not self.scale.dpo:
                continue
            jobs[name] = self._train_spec(method, config, name, f"{self.org}/{BASES['caption2smiles']}",
                                          l2m_revision, f"{self.org}/lmolt-cpu-triples-slice")  # fmt: skip
        return self._jobs("methods", jobs)

    def token_cap(self, ancestor_revision: str) -> int:
        """New tokens the longest references need: 1.1 x the 99th percentile of the held-out references'
        lengths in the study tokenizer (both directions), at most ``scale.max_new_tokens``. A model that
        never stops then costs that many tokens, not the ceiling."""
        import numpy as np
        from transformers import AutoTokenizer

        from lmolt_hub.formats.eval_set import load_eval_set

        tok = AutoTokenizer.from_pretrained(f"{self.org}/{ANCESTOR}", revision=ancestor_revision)
        rows = load_eval_set(f"{self.org}/lmolt-eval-3k").rows
        texts = [r["molecule"] for r in rows] + [r["caption"] for r in rows]
        lengths = [len(x) for x in tok(texts, add_special_tokens=False)["input_ids"]]
        return int(min(self.scale.max_new_tokens, np.ceil(1.1 * np.percentile(lengths, 99)) + 1))

    def evaluate(self, models: dict[str, list[str]], max_new_tokens: int) -> dict[str, Any]:
        kwargs = {
            "eval_dataset": f"{self.org}/lmolt-eval-3k",
            "output_dir": str(self.root / "results"),
            "cache_dir": str(self.root / "work" / "generations"),
            "nli_model": f"{self.org}/{NLI_NAME}",
            "bootstrap_resamples": self.scale.bootstrap_resamples,
            "batch_size": self.scale.eval_batch_size,
            "generation": {"max_new_tokens": max_new_tokens},
            "show_progress": False,
        }
        jobs = {
            model.split("/")[-1]: {"kind": "eval", "model": model, "kwargs": kwargs | {"directions": dirs}}
            for model, dirs in models.items()
        }
        # the random init: what "learnt nothing" scores (a slice, so not a leaderboard row)
        jobs[INIT] = {"kind": "eval", "model": f"{self.org}/{INIT}",
                      "kwargs": kwargs | {"limit": min(RANDOM_LIMIT, self.scale.eval_n),
                                          "output_dir": str(self.root / "results-random")}}  # fmt: skip
        done = self._jobs("evaluate", jobs)
        return {"results": [done[k] for k in jobs if k != INIT], "random": done[INIT]}

    def leaderboard(self, results: list[dict[str, str]]) -> dict[str, Any]:
        from lmolt_hub.leaderboard import ReviewPolicy
        from lmolt_hub.leaderboard.run import run

        repo = f"{self.org}/lmolt-leaderboard-cpu-study"
        site = self.root / "hub" / "site" / "leaderboard-cpu-study"
        done = run(
            [r["results"] for r in results], repo, org=self.org, site=site,
            work_dir=self.root / "work" / "leaderboard-repo", policy=ReviewPolicy(rate_limit=1_000_000),
            # its own track: built from this repo alone, without the paper's L+M-24 rows
            include_paper=False, baseline=f"{self.org}/lmolt-cpu-sft",
        )  # fmt: skip
        outcomes, doc = done["outcomes"], done["document"]
        (site / "track.json").write_text(json.dumps({"track": TRACK, "rows": len(doc["rows"])}) + "\n")
        return {
            "repos": [_repo(repo, "dataset", done["sha"], f"leaderboard, track {TRACK!r}")],
            "reviews": [{"pr": o.pr_num, "state": o.state, "reason": o.reason} for o in outcomes],
            "site": str(site),
            "rows": len(doc["rows"]),
        }


def _cpu_s() -> float:
    """CPU seconds of this process and every worker it has waited for (what 2 free cores would need)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def model_roles(org: str, scale: Scale) -> dict[str, dict[str, Any]]:
    """Hub id -> {role, directions} of every evaluated model.

    Every model is scored in both directions (the leaderboard takes only complete rows); a base's
    "own" direction is the one its Table row reports, the other shows what a one-direction model
    does outside it.
    """
    both = list(DIRECTION_NAMES)
    roles = {
        f"{org}/{name}": {"role": f"Base ({d})", "directions": both, "own": d} for d, name in BASES.items()
    }
    for name, method, _, role in RUNS:
        if method != "dpo" or scale.dpo:
            roles[f"{org}/{name}"] = {"role": role, "directions": list(DIRECTION_NAMES)}
    for name, _, role in CHAINS:
        roles[f"{org}/{name}"] = {"role": role, "directions": list(DIRECTION_NAMES)}
    return roles


def rerender(root: Path, docs: Path | None = None) -> int:
    """Write ``DIR/cpu-study.md`` again from ``DIR/study.json`` (e.g. after a change to the report code),
    keeping the recorded timings; nothing is trained or evaluated."""
    import sys

    from lmolt_hub.pipelines.study.report import publish_docs, write_study_report

    path = root / "study.json"
    if not path.is_file():
        print(f"lmolt-hub study: no finished run in {root} (no study.json); run `lmolt-hub study cpu --root {root}` "
              "first", file=sys.stderr)  # fmt: skip
        return 2
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["report"] = write_study_report(summary, root / "cpu-study.md")
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if docs is not None:
        publish_docs(root, docs)
    print(f"report: {summary['report']['report']}")
    return 0


def run(
    root: Path,
    org: str = STUDY_ORG,
    tiny: bool = False,
    fresh: bool = False,
    jobs: int | None = None,
    dpo: bool | None = None,
    docs: Path | None = None,
    port: int = 0,
    ancestor_only: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the study in ``root``; returns the content of ``DIR/study.json`` (with
    ``ancestor_only``: train and push the ancestor alone, its cost in ``DIR/ancestor.json``)."""
    from lmolt_hub.localhub import use_local_hub
    from lmolt_hub.pipelines.study.report import write_study_report

    scale = TINY if tiny else FULL
    if jobs is not None or dpo is not None:
        scale = replace(scale, jobs=jobs or scale.jobs, dpo=scale.dpo if dpo is None else dpo)
    first = fresh or not (root / "study_state.json").is_file()
    prepare_root(root, fresh)
    started = time.perf_counter()
    before = StepState(root / "study_state.json")
    if first:  # how the timed run began: a fresh root, and whether the lmolt cache held anything
        cache = lmolt_cache_dir()
        held = sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []
        before.put("cache_state", f"fresh root {root}; lmolt cache {cache} "
                   + (f"held {', '.join(held)}" if held else "empty") + " at the start")  # fmt: skip
    previous, previous_cpu = before.get("elapsed_s") or 0.0, before.get("cpu_s") or 0.0
    cpu0 = _cpu_s()
    with MemorySampler() as mem, use_local_hub(root / "hub", port=port) as hub:
        st = Study(root, org, scale, tiny)
        st.log(f"[study] local Hub at {hub.url} (store: {root / 'hub'}); {'tiny' if tiny else 'full'} scale")
        nli = st.stage("hub", st.push_nli)
        anc = st.stage("ancestor", st.ancestor)
        if ancestor_only:
            cost = {"wall_s": round(time.perf_counter() - started, 1), "cpu_s": round(_cpu_s() - cpu0, 1),
                    "peak_rss_mb": mem.peak_mb, "repos": anc["repos"], "ancestor": anc["info"]}  # fmt: skip
            (root / "ancestor.json").write_text(json.dumps(cost, indent=2, default=str) + "\n")
            st.log(f"[study] ancestor pushed ({cost['wall_s']:.0f} s wall, peak {cost['peak_rss_mb']:.0f} MB); "
                   "`lmolt-hub study cpu` with the same --root reuses it")  # fmt: skip
            return cost
        ancestor_rev = anc["repos"][1]["revision"]
        data = st.stage("datasets", lambda: st.datasets(nli["repos"][0]["revision"]))
        bases = st.stage("bases", lambda: st.bases(ancestor_rev))
        l2m = bases[BASES["caption2smiles"]]["hub_revision"]
        methods = st.stage("methods", lambda: st.methods(l2m))
        roles = model_roles(org, scale)
        cap = st.stage("token_cap", lambda: {"max_new_tokens": st.token_cap(ancestor_rev)})["max_new_tokens"]
        evaluated = st.stage(
            "evaluate", lambda: st.evaluate({m: r["directions"] for m, r in roles.items()}, cap)
        )
        board = st.stage("leaderboard", lambda: st.leaderboard(evaluated["results"]))
        elapsed = previous + time.perf_counter() - started
        cpu = previous_cpu + _cpu_s() - cpu0
        summary = {
            "track": TRACK,
            "tiny": tiny,
            "root": str(root),
            "org": org,
            "scale": asdict(scale),
            "model": anc["info"]["shape"],
            "ancestor": anc["info"],
            "ancestor_run": _read_json(root / "ancestor.json"),
            "cache_state": before.get("cache_state"),
            "max_new_tokens": cap,
            "data": data["counts"],
            "repos": nli["repos"] + anc["repos"] + data["repos"] + board["repos"],
            "trained": {**bases, **methods},
            "roles": roles,
            "results": evaluated["results"],
            "random": evaluated["random"],
            "leaderboard": {"site": board["site"], "reviews": board["reviews"], "rows": board["rows"]},
            "timings_s": st.stages.seconds(),
            "wall_s_this_run": round(time.perf_counter() - started, 1),
            "wall_s_total": round(elapsed, 1),
            "cpu_s_total": round(cpu, 1),
            # an interrupted or repeated run: the peak of all its runs (a no-op re-run peaks low)
            "peak_rss_mb": max(mem.peak_mb, before.get("peak_rss_mb") or 0.0),
        }
        report = st.stage("report", lambda: write_study_report(summary, root / "cpu-study.md"))
    st.state.put("elapsed_s", elapsed)
    st.stages.record(summary["timings_s"])
    st.state.put("peak_rss_mb", summary["peak_rss_mb"])
    st.state.put("cpu_s", cpu)
    summary["report"] = report
    (root / "study.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if docs is not None:
        from lmolt_hub.pipelines.study.report import publish_docs

        publish_docs(root, docs)
    print(f"\nreport: {report['report']}\nsummary: {root / 'study.json'}\n"
          f"wall: {summary['wall_s_total']:.0f} s in all, peak RSS {summary['peak_rss_mb']:.0f} MB")  # fmt: skip
    return summary
