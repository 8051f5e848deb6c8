"""Atomic file writes: the one place that writes a file so a crash never leaves half of it.

Every write goes to a temporary file in the target's own folder (same file system, so the final
``os.replace`` is atomic), is flushed and fsync'ed, then replaces the target. On any failure the
temporary file (``.tmp-<name>.*``) is removed and the previous file, if any, is untouched.

``atomic_dir`` does the same for a folder (a model, a dataset build, a cache entry): built beside
the target, renamed into place when complete.

Standard library only: the local Hub (``localhub.storage.write_json_atomic``) writes through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(
    path: str | Path, *, suffix: str = ".tmp", tmp_dir: str | Path | None = None
) -> Iterator[Path]:
    """Yield a fresh temporary path; once the block ends without error it replaces ``path``.

    For writers that need a file name rather than a file object (``np.savez``, ``shutil.copyfile``).
    ``suffix`` lets a writer that insists on an extension (``.npz``) keep it. ``tmp_dir`` must be on
    the target's file system (default: the target's folder).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=f".tmp-{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_with(
    path: str | Path, fill: Callable[[IO[bytes]], Any], *, tmp_dir: str | Path | None = None
) -> Path:
    """Atomically write ``path`` with whatever ``fill(binary_file)`` writes; return ``path``."""
    path = Path(path)
    with atomic_path(path, tmp_dir=tmp_dir) as tmp, open(tmp, "wb") as f:
        fill(f)
        f.flush()
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically replace ``path`` with ``data``."""
    return write_with(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Atomically replace ``path`` with ``text`` (no newline translation)."""
    return write_bytes(path, text.encode(encoding))


def write_json(path: str | Path, obj: Any, *, newline: bool = True, **dumps: Any) -> Path:
    """Atomically replace ``path`` with ``json.dumps(obj, **dumps)`` (plus a final newline)."""
    return write_text(path, json.dumps(obj, **dumps) + ("\n" if newline else ""))


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield a fresh (not yet created) folder path beside ``path``; when the block ends without
    error it becomes ``path``, in one rename. On error it is removed and ``path`` is untouched.

    ``keep_existing=False``: an existing ``path`` is replaced (moved aside first, then deleted).
    ``keep_existing=True`` (caches that concurrent processes may fill): if ``path`` already exists
    when the block ends, another process won the race; its copy stays and ours is dropped.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_existing:
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # lost the race: the winner's copy is the same
        return
    old = path.with_name(f".old-{path.name}.{uuid.uuid4().hex[:8]}")
    if path.exists():
        os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
