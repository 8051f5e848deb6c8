"""Time and peak memory of `lmolt-hub quickstart` from scratch (goal: < 5 min, < 4 GB on 2 cores).

Runs the quickstart with ``--fresh`` in a child process (a fresh temporary root unless --root is
given), then prints the per-stage times it recorded and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="quickstart root (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lmolt-qs-bench-") as tmp:
        root = args.root or Path(tmp) / "qs"
        cmd = [sys.executable, "-m", "lmolt_hub.cli", "quickstart", "--root", str(root), "--fresh"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            return proc.returncode
        summary = json.loads((root / "quickstart.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for stage, seconds in summary["timings_s"].items():
        print(f"{stage:<12}{seconds:8.1f} s")
    print(f"{'total':<12}{wall:8.1f} s   peak RSS {peak_mb:.0f} MB   (goal: < 300 s, < 4096 MB)")
    figures = {"wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb), **summary["timings_s"]}
    print("BENCH " + json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
