"""Run every benchmark and print one table.

Each benchmark is a standalone script under bench/ that prints its figures; its
last line is its headline (or a ``BENCH {json}`` line anywhere), which this runner
collects. Usage: ``python bench/run_all.py [--only NAME ...] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (script, extra args for --quick, goal)
BENCHMARKS: dict[str, tuple[str, list[str], str]] = {
    "localhub": ("localhub.py", ["--size-mb", "100"], ">= 200 MB/s each way; server RSS < 300 MB"),
    "metrics": ("metrics.py", ["--repeat", "1", "--skip-cached"], ">= 5x faster than the official scripts"),
    "metric_modules": (
        "metric_modules.py",
        ["--repeat", "1"],
        "scoring through the modules: < 5% over direct",
    ),
    "data": ("data_build.py", ["--skip-eval"], "validation rate, default builds, negatives (report)"),
    "train": ("train.py", ["--steps", "20", "--repeats", "1"], "our layer costs < 5% throughput"),
    "merge": ("merge.py", ["--sizes", "tiny"], "time and peak memory of SLERP/TIES (report)"),
    "generate": ("generate.py", ["--prompts", "64"], ">= 5x samples/s vs one prompt at a time"),
    "quickstart": ("quickstart.py", [], "< 5 min on 2 cores, peak RSS < 4 GB"),
}


def run_one(name: str, quick: bool) -> dict:
    script, quick_args, goal = BENCHMARKS[name]
    cmd = [sys.executable, str(HERE / script), *(quick_args if quick else [])]
    print(f"== {name}: {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    sys.stdout.write(proc.stdout[-4000:])
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    bench = [line for line in lines if line.startswith("BENCH ")]
    # a benchmark's headline: its BENCH {json} line, else its last line of output
    figures = (
        json.loads(bench[-1][len("BENCH ") :]) if bench else {"last line": lines[-1][:120] if lines else "-"}
    )
    if proc.returncode != 0:
        sys.stdout.write(proc.stderr[-2000:])
    return {"name": name, "goal": goal, "rc": proc.returncode, "wall_s": round(wall, 1), "figures": figures}


def _fmt(figures: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in figures.items() if k != "name") or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--quick", action="store_true", help="smaller sizes where a benchmark has them")
    args = parser.parse_args()
    rows = [run_one(name, args.quick) for name in (args.only or BENCHMARKS)]
    print("\n| benchmark | goal | figures | wall s | status |\n|---|---|---|---|---|")
    for r in rows:
        status = "ok" if r["rc"] == 0 else f"failed ({r['rc']})"
        print(f"| {r['name']} | {r['goal']} | {_fmt(r['figures'])} | {r['wall_s']} | {status} |")
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
