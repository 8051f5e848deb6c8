"""On-disk cache of raw generations, written as they are produced so a killed run resumes.

Layout: ``<cache_dir>/<key[:2]>/<key>/`` holds ``key.json`` (what the key is made
of, for humans) and one or more ``gen-*.jsonl`` files of ``{"h": prompt_hash,
"raw": text}`` rows. Each writer (each process of an ``accelerate`` run, each
run) appends to its own file and fsyncs every batch, so concurrent writers never
interleave and a crash loses at most the batch in flight. Readers merge all
files and skip a torn last line.

The key is a hash of the model sha, adapter sha, base sha, dtype/quantisation,
backend and generation parameters: not the number of processes or the batch
size, so a rerun with another layout reuses everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lmolt_hub.io import write_json
from lmolt_hub.resources import cache_dir as lmolt_cache_dir

ENV_VAR = "LMOLT_CACHE"


def default_cache_dir() -> Path:
    """``$LMOLT_CACHE`` or ``~/.cache/lmolt-hub/generations``."""
    return lmolt_cache_dir() if os.environ.get(ENV_VAR) else lmolt_cache_dir("generations")


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def cache_key(fields: Mapping[str, Any]) -> str:
    blob = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class GenerationCache:
    """Raw generations for one key; ``get`` what is there, ``append`` as you go."""

    def __init__(self, root: str | Path | None, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)
        self.key = cache_key(self.fields)
        self.dir = Path(root or default_cache_dir()) / self.key[:2] / self.key
        self._entries: dict[str, str] | None = None
        self._file = None

    def _ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "key.json"
        if not meta.exists():
            write_json(meta, self.fields, indent=2, sort_keys=True, default=str)

    def load(self) -> dict[str, str]:
        """All cached generations, prompt hash -> raw text (re-read from disk)."""
        entries: dict[str, str] = {}
        if self.dir.is_dir():
            for f in sorted(self.dir.glob("gen-*.jsonl")):
                with open(f, encoding="utf-8") as fh:
                    for line in fh:
                        try:
                            row = json.loads(line)
                            entries[row["h"]] = row["raw"]
                        except (json.JSONDecodeError, KeyError, TypeError):
                            continue  # a torn line from a killed writer
        self._entries = entries
        return entries

    def get(self, prompts: Iterable[str]) -> dict[str, str]:
        """Cached raw outputs of those ``prompts`` that have one (prompt text -> raw)."""
        entries = self._entries if self._entries is not None else self.load()
        out = {}
        for p in prompts:
            h = prompt_hash(p)
            if h in entries:
                out[p] = entries[h]
        return out

    def extra(self, name: str) -> Any:
        """A small JSON file kept beside the generations (None when absent or unreadable)."""
        try:
            return json.loads((self.dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put_extra(self, name: str, value: Any) -> None:
        self._ensure_dir()
        write_json(self.dir / name, value)

    def append(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Add (prompt, raw) pairs durably (flush + fsync) before returning."""
        pairs = list(pairs)
        if not pairs:
            return
        if self._file is None:
            self._ensure_dir()
            name = f"gen-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._file = open(self.dir / name, "a", encoding="utf-8")  # noqa: SIM115 (kept open across batches)
        for prompt, raw in pairs:
            h = prompt_hash(prompt)
            self._file.write(json.dumps({"h": h, "raw": raw}, ensure_ascii=False) + "\n")
            if self._entries is not None:
                self._entries[h] = raw
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> GenerationCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
