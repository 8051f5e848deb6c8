"""The quickstart runs from an installed wheel (issue 16), through bench/wheel_quickstart.sh.

The script builds the wheel, installs it into a fresh venv (dependencies from this environment,
nothing downloaded) and runs ``lmolt-hub quickstart`` from another directory. Slow (the whole
quickstart, several minutes on 2 cores): ``pytest -m slow tests/test_wheel_quickstart.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_runs_from_an_installed_wheel(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop("HF_ENDPOINT", None)  # the quickstart starts its own Hub
    cmd = ["bash", str(ROOT / "bench" / "wheel_quickstart.sh"), str(tmp_path), "--",
           "--limit", "8", "--max-new-tokens", "24"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print("\n".join(line for line in proc.stdout.splitlines() if line.startswith("[wheel]")))  # timings (-s)
    venv = tmp_path / "venv"
    where = next(line for line in proc.stdout.splitlines() if line.startswith("[wheel] lmolt_hub: "))
    assert Path(where.split(": ", 1)[1]).is_relative_to(venv.resolve())
    assert (venv / "bin" / "lmolt-hub").exists()
    summary = json.loads((tmp_path / "quickstart" / "quickstart.json").read_text())
    assert {"lmolt/lmolt-slerp-cpo", "lmolt/lmolt-triples", "lmolt/lmolt-eval-3k"} <= {
        r["id"] for r in summary["repos"]
    }
    assert len(summary["results"]) == 3 and Path(summary["report"]).is_file()
    assert "[wheel] total:" in proc.stdout
