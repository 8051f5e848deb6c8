"""What produced an artefact: library versions, git sha, the command line."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

TRACKED_LIBRARIES = (
    "lmolt-hub",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "huggingface_hub",
    "trl",
    "peft",
    "accelerate",
    "bitsandbytes",
    "mergekit",
    "evaluate",
    "rdkit",
    "fcd",
    "nltk",
    "rouge_score",
    "numpy",
)


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str | None]:
    """Installed versions of ``names`` (None when not installed)."""
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_sha(path: Path | None = None) -> str | None:
    """The commit of the lmolt-hub checkout (None outside a git checkout)."""
    where = path or Path(__file__).resolve().parent
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
