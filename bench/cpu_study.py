"""Wall time and peak memory of the cpu study from a fresh root with an empty lmolt cache (goal: the
ancestor <= 60 min, the study <= 45 min, peak < 6 GB, on 2 free cores).

Runs ``lmolt-hub study cpu --ancestor`` and then ``lmolt-hub study cpu`` in child processes with a
new temporary ``LMOLT_CACHE`` and root (unless given), then prints both commands' stage times, wall
and peak memory as the study recorded them (whole process tree, sampled). ``--tiny``: the CI scale.
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


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    # the study's own progress lines stream through, so a long run can be watched (and tee'd)
    proc = subprocess.run([sys.executable, "-m", "lmolt_hub.cli", "study", "cpu", *args], env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="study root (default: a temp dir)")
    parser.add_argument("--tiny", action="store_true", help="the CI scale (about a minute)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lmolt-study-bench-") as tmp:
        root = args.root or Path(tmp) / "study"
        env = os.environ | {"LMOLT_CACHE": str(Path(tmp) / "cache")}  # every cache empty
        scale = ["--tiny"] if args.tiny else []
        wall_anc = _run(["--ancestor", "--root", str(root), "--fresh", *scale], env)
        wall = _run(["--root", str(root), *scale], env)
        anc = json.loads((root / "ancestor.json").read_text())
        summary = json.loads((root / "study.json").read_text())
    print(f"ancestor    {wall_anc:8.1f} s   peak {anc['peak_rss_mb']:.0f} MB   (goal: <= 3600 s)")
    for stage, seconds in summary["timings_s"].items():
        print(f"  {stage:<12}{seconds:8.1f} s")
    print(f"study       {wall:8.1f} s   peak {summary['peak_rss_mb']:.0f} MB   (goal: <= 2700 s, < 6144 MB)")
    figures = {"ancestor_wall_s": round(wall_anc, 1), "study_wall_s": round(wall, 1),
               "peak_rss_mb": max(anc["peak_rss_mb"], summary["peak_rss_mb"]), **summary["timings_s"]}  # fmt: skip
    print("BENCH " + json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
