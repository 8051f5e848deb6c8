"""The README's commands are true: its fenced shell blocks marked ``tested=...`` are checked here.

- ``tested=tests``: the test command, which must be exactly what ``.ci/run`` runs;
- ``tested=setup``: the set-up command (CI runs it for real through ``.ci/run``; here its script
  must exist and parse);
- ``tested=quickstart``: the main job (run end to end by tests/pipelines/test_quickstart.py);
- ``tested=quick``: every line is run here and must exit 0.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(?:bash|sh|shell)[ \t]+tested=(\w+)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(kind: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [body for k, body in FENCE.findall(text) if k == kind]


def commands(body: str) -> list[str]:
    """Lines of a block, with backslash continuations joined and comments dropped."""
    joined = body.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_three_front_door_commands_come_first():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    kinds = [k for k, _ in FENCE.findall(text)]
    assert kinds[:3] == ["setup", "quickstart", "tests"], kinds[:3]


def test_test_command_is_what_ci_runs():
    (body,) = blocks("tests")
    (command,) = commands(body)
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci, f"README test command {command!r} is not a line of .ci/run"


def test_setup_command_script_exists_and_parses():
    (body,) = blocks("setup")
    script = shlex.split(commands(body)[0])[0]
    path = ROOT / script
    assert path.is_file() and os.access(path, os.X_OK), f"{script} is missing or not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)
    assert "setup.sh" in (ROOT / ".ci" / "run").read_text(), (
        ".ci/run must set up the machine as the README says"
    )


def test_quickstart_command_is_the_cli_entry_point():
    (body,) = blocks("quickstart")
    assert commands(body)[0].startswith("lmolt-hub quickstart")


QUICK = [c for body in blocks("quick") for c in commands(body)]


def test_there_are_quick_commands():
    assert len(QUICK) >= 5


@pytest.mark.parametrize("command", QUICK)
def test_quick_command_runs(command: str):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{command!r} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
