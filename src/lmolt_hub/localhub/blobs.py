"""The content-addressed blob store of the local Hub: ``blobs/<sha256[:2]>/<sha256>``, shared by
all repos.

A blob is written to ``tmp/`` and renamed into place only after its sha256 is verified, so a
partial upload never becomes visible. Which blobs a repo may use, and which ones gc may delete,
is decided by ``storage`` (it knows the commits); this module only stores, opens and deletes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from lmolt_hub import io as atomic_io
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.names import validate_sha256

UPLOAD_CHUNK = 4 << 20


class BlobStore:
    """The blob methods of ``Storage`` (a base class: callers use ``storage.put_bytes(...)``).

    Needs ``root`` (with ``blobs/`` and ``tmp/``); safe to call from many threads.
    """

    root: Path

    def blob_path(self, sha256: str) -> Path:
        validate_sha256(sha256)
        return self.root / "blobs" / sha256[:2] / sha256

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        p = self.blob_path(sha256)
        return p.is_file() and (size is None or p.stat().st_size == size)

    def touch_blob(self, sha256: str) -> None:
        """Restart gc's grace period: an existing blob is about to be referenced again."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.blob_path(sha256))

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if self.has_blob(sha, len(data)):
            self.touch_blob(sha)
        else:
            self._install(sha, lambda f: f.write(data))
        return sha

    def put_stream(self, read_chunk: Callable[[int], bytes], size: int, expected_sha256: str) -> None:
        """Stream ``size`` bytes from ``read_chunk(n)`` into a blob, verifying the sha256.

        Raises HubError on a short body (client died) or a hash mismatch; the
        partial temp file is removed and nothing becomes visible.
        """
        validate_sha256(expected_sha256)

        def fill(f: BinaryIO) -> None:
            h = hashlib.sha256()
            # Hashing and writing run in their own threads (both release the GIL) while
            # this one receives: the three stages overlap instead of adding up.
            with _Pipeline([h.update, f.write]) as pipe:
                left = size
                while left > 0:
                    chunk = read_chunk(min(UPLOAD_CHUNK, left))
                    if not chunk:
                        raise HubError(400, f"Upload body ended after {size - left} of {size} bytes")
                    pipe.put(chunk)
                    left -= len(chunk)
            if h.hexdigest() != expected_sha256:
                raise HubError(400, f"sha256 mismatch: got {h.hexdigest()}, expected {expected_sha256}")

        self._install(expected_sha256, fill)

    def _install(self, sha: str, fill: Callable[[BinaryIO], object]) -> None:
        target = self.blob_path(sha)
        atomic_io.write_with(target, fill, tmp_dir=self.root / "tmp")  # partial uploads stay in tmp/

    def open_blob(self, sha256: str) -> BinaryIO:
        return open(self.blob_path(sha256), "rb")

    def _delete_unreferenced(self, referenced: set[str], cutoff: float) -> tuple[int, int]:
        """Delete blobs not in ``referenced`` and untouched since ``cutoff``; returns (files, bytes).
        The caller (``Storage.gc``) holds the gc lock alone."""
        removed = freed = 0
        for blob in (self.root / "blobs").glob("*/*"):
            with contextlib.suppress(FileNotFoundError):
                stat = blob.stat()  # fresh: a re-upload or a dedup touch restarts the grace period
                if blob.name not in referenced and stat.st_mtime < cutoff:
                    blob.unlink()
                    removed, freed = removed + 1, freed + stat.st_size
        return removed, freed


class _Pipeline:
    """Feeds each chunk, in order, to every consumer, each consumer in its own thread."""

    def __init__(self, consumers: list, depth: int = 4):
        self.queues = [queue.Queue(maxsize=depth) for _ in consumers]
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(q, fn), daemon=True)
            for q, fn in zip(self.queues, consumers, strict=True)
        ]

    def _run(self, q: queue.Queue, fn) -> None:
        while (chunk := q.get()) is not None:
            if not self.errors:
                try:
                    fn(chunk)
                except BaseException as e:  # re-raised in the receiving thread
                    self.errors.append(e)

    def put(self, chunk: bytes) -> None:
        if self.errors:
            raise self.errors[0]
        for q in self.queues:
            q.put(chunk)

    def __enter__(self) -> _Pipeline:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for q in self.queues:
            q.put(None)
        for t in self.threads:
            t.join()
        if self.errors and exc[0] is None:
            raise self.errors[0]
