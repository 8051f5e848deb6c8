"""Benchmark: a harness run that generates vs one that re-scores from the generation cache.

On the quickstart's local Hub (``--root``, default a fresh temporary root built with
``lmolt-hub quickstart --limit 16``), ``lmolt/lmolt-slerp-cpo`` is evaluated as the quickstart does
(16 pairs, both directions, NLI hallucination metrics, 200 bootstrap resamples), each run a fresh
process with its own in-process Hub server:

- ``first``: an empty generation cache and an empty Hugging Face cache (downloads, loads, generates);
- ``cached``: the same again, every generation now cached (goal: >= 3x faster than ``first``);
- ``floor``: a process that only imports lmolt-hub and scores the first run's outputs with the same
  options (``score_direction``, both directions): what a re-score cannot go below.

Prints the three wall times (the fastest of ``--repeat`` runs for ``cached`` and ``floor``), the
ratio first / cached, and the machine's load average (the build machines are shared).
Usage: python bench/rescore.py [--root DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = "lmolt/lmolt-slerp-cpo"
EVAL = "lmolt/lmolt-eval-3k"
NLI = "lmolt/tiny-nli-deberta"


def _evaluate(root: Path, work: Path) -> dict:
    from lmolt_hub.evaluation import evaluate_model
    from lmolt_hub.generation.backends import GenerationParams
    from lmolt_hub.localhub import use_local_hub
    from lmolt_hub.pipelines.quickstart import BOOTSTRAP_RESAMPLES

    with use_local_hub(root / "hub"):
        doc = evaluate_model(
            MODEL,
            eval_dataset=EVAL,
            output_dir=str(work / "results"),
            cache_dir=str(work / "generations"),
            nli_model=NLI,
            bootstrap_resamples=BOOTSTRAP_RESAMPLES,
            generation=GenerationParams(max_new_tokens=64),
            show_progress=False,
        )
    return {
        "generated": doc["generation"]["generated"],
        "results": doc["results"],
        "path": doc["results_path"],
    }


def _floor(root: Path, results_path: str) -> dict:
    """Import + scoring only: the first run's outputs scored with the options it recorded."""
    from lmolt_hub.formats import results as R
    from lmolt_hub.localhub import use_local_hub
    from lmolt_hub.metrics.scoring import resolve_nli, score_direction

    doc = R.read_results(results_path)
    out = {}
    with use_local_hub(root / "hub"):  # the NLI model comes from the Hub cache, as in the harness
        nli = resolve_nli(NLI)
        for d in doc["directions"]:
            rows = R.read_samples(Path(results_path).parent / doc["samples"][d])
            opts = {
                k: v for k, v in doc["metric_options"]["by_direction"][d].items() if k not in ("nli_model",)
            }
            opts.pop("nli_revision", None)
            s = score_direction(d, [r["output"] for r in rows], [r["reference"] for r in rows], options=opts,
                                bootstrap_resamples=doc["bootstrap"]["n_resamples"], nli=nli)  # fmt: skip
            out[d] = s.corpus
    return {"results": out}


def _child(kind: str, root: Path, work: Path, results_path: str | None) -> None:
    out = _evaluate(root, work) if kind in ("first", "cached") else _floor(root, results_path or "")
    print("RESULT " + json.dumps(out))


def _run(kind: str, root: Path, work: Path, env: dict, results_path: str = "") -> tuple[float, dict]:
    cmd = [sys.executable, __file__, "--_child", kind, "--root", str(root), "--_work", str(work)]
    if results_path:
        cmd += ["--_results", results_path]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines()[::-1] if ln.startswith("RESULT "))
    return wall, json.loads(line.removeprefix("RESULT "))


def _quickstart_root(tmp: Path) -> Path:
    root = tmp / "qs"
    cmd = [sys.executable, "-m", "lmolt_hub.cli", "quickstart", "--root", str(root), "--fresh"]
    print(f"building the quickstart's Hub in {root} (a few minutes) ...", flush=True)
    subprocess.run(cmd, check=True, capture_output=True)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="an existing quickstart root")
    parser.add_argument("--repeat", type=int, default=2, help="runs of cached and floor; the fastest counts")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_results", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        _child(args._child, args.root, args._work, args._results)
        return 0
    with tempfile.TemporaryDirectory(prefix="lmolt-rescore-") as tmp:
        tmp = Path(tmp)
        root = args.root or _quickstart_root(tmp)
        env = {**os.environ, "HF_HOME": str(tmp / "hf_home"), "LMOLT_CACHE": str(tmp / "cache")}
        load = os.getloadavg()
        first, res = _run("first", root, tmp / "work", env)
        cached, again = min(_run("cached", root, tmp / "work", env) for _ in range(args.repeat))
        floor, scored = min(_run("floor", root, tmp / "work", env, res["path"]) for _ in range(args.repeat))
        load_after = os.getloadavg()
    assert again["generated"] == dict.fromkeys(res["generated"], 0), "the cached run generated"
    assert again["results"] == res["results"] == scored["results"], "a re-score changed a value"
    print(f"{MODEL}, {sum(res['generated'].values())} generations (16 pairs x 2 directions)")
    print(f"  first run (downloads, loads, generates)   {first:6.1f} s")
    print(f"  cached run (re-score, no weights loaded)  {cached:6.1f} s")
    print(f"  floor (import + scoring only)             {floor:6.1f} s")
    print(f"ratio first / cached: {first / cached:.2f}x (goal >= 3x); cached - floor: {cached - floor:.1f} s")
    print(f"load average before {load[0]:.1f}, after {load_after[0]:.1f} on {os.cpu_count()} cores")
    print("BENCH " + json.dumps({"first_s": round(first, 1), "cached_s": round(cached, 1),
                                 "floor_s": round(floor, 1), "load": [load[0], load_after[0]]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
