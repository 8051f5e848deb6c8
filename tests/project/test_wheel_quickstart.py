"""The quickstart runs from an installed wheel (issue 16), through bench/wheel_quickstart.sh.

The script builds the wheel, installs it into a fresh venv (dependencies from this environment,
nothing downloaded) and runs ``lmolt-hub quickstart`` from another directory. Slow (the whole
quickstart, about 2 minutes on 2 cores): ``pytest -m slow tests/project/test_wheel_quickstart.py``. The fast
test checks what the wheel ships: every YAML recipe, the card templates and the bundled data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tracked(*patterns: str) -> set[str]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_wheel_ships_recipes_templates_and_data(tmp_path):
    src = tmp_path / "src-copy"  # a clean copy: no build/ or egg-info of the checkout leaks in
    for name in ("pyproject.toml", "README.md"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("src", "recipes"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=ignore)
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
           "-w", str(tmp_path / "dist")]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    names = set(zipfile.ZipFile(next((tmp_path / "dist").glob("lmolt_hub-*.whl"))).namelist())
    recipes = {f"lmolt_hub/resources/{p}" for p in _tracked("recipes/*.yaml")}
    assert len(recipes) > 30 and recipes - names == set()
    assert "lmolt_hub/resources/recipes/tiny/slerp-cpo/chain.yaml" in names
    shipped = {
        p.removeprefix("src/") for p in _tracked("src/lmolt_hub/resources/data", "src/lmolt_hub/hub_cards")
    }
    assert len(shipped) > 10 and shipped - names == set()


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
