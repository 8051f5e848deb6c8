"""Resume state of a multi-step job (chain, quickstart): finished steps and their outputs.

A small JSON file rewritten atomically after each step, so an interrupted job
restarts after its last finished step.
"""

from __future__ import annotations

import json
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
