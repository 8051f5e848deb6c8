"""Resume state of a multi-step job (chain, quickstart, study): finished steps and their outputs.

A small JSON file rewritten atomically after each step, so an interrupted job
restarts after its last finished step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmolt_hub.io import write_json


class StepState:
    def __init__(self, path: Path, fresh: bool = False):
        self.path = path
        self.data: dict[str, Any] = {}
        if path.is_file() and not fresh:
            self.data = json.loads(path.read_text(encoding="utf-8"))

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        write_json(self.path, self.data, indent=2, default=str)


class Stages:
    """Timed, resumable stages of a pipeline (quickstart, study): a finished stage's output is kept
    in ``state`` and reused by the next run."""

    def __init__(self, state: StepState, prefix: str, log: Callable[[str], None] = print):
        self.state, self.prefix, self.log = state, prefix, log
        self.timings: list[tuple[str, float, bool]] = []

    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` unless a previous run completed this stage (resume)."""
        if (done := self.state.get(name)) is not None:
            self.log(f"[{self.prefix}] {name}: done in a previous run, reusing it")
            self.timings.append((name, 0.0, True))
            return done
        self.log(f"[{self.prefix}] {name} ...")
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        self.state.put(name, out)
        self.timings.append((name, seconds, False))
        self.log(f"[{self.prefix}] {name}: {seconds:.1f} s")
        return out

    def seconds(self) -> dict[str, float]:
        """Seconds of each stage: this run's, or for a reused stage what the run that finished it
        recorded (``record``), so re-running a finished pipeline keeps its cost record. A stage done by
        a separate command that records nothing (the study's ``--ancestor``) counts 0."""
        recorded = self.state.get("stage_seconds") or {}
        return {name: round(recorded.get(name, 0.0) if reused else s, 1) for name, s, reused in self.timings}

    def record(self, seconds: dict[str, float]) -> None:
        self.state.put("stage_seconds", seconds)
