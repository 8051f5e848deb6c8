"""Request framing and input parsing for the local Hub: bodies, chunks, NDJSON commit lines, ranges.

Everything here treats its input as hostile: sizes are bounded, framing is strict (a malformed
chunk is a 400, never a read to end of stream), and bad values become a ``HubError`` 4xx.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from lmolt_hub.localhub.errors import HubError

CHUNK = 1 << 20  # bytes read from the socket at a time
MAX_CHUNK = 1 << 30  # one chunk of a chunked body


class Body:
    """Reads a request body of known length or in chunked transfer encoding."""

    def __init__(self, rfile, length: int | None, chunked: bool):
        self.rfile, self.left, self.chunked, self.done = rfile, length, chunked, False
        self.chunk_left = 0

    def read(self, n: int) -> bytes:
        if self.chunked:
            return self._read_chunked(n)
        if not self.left:
            return b""
        data = self.rfile.read(min(n, self.left))
        self.left -= len(data)
        return data

    def _read_chunked(self, n: int) -> bytes:
        if self.done:
            return b""
        if self.chunk_left == 0:
            self.chunk_left = _chunk_size(self.rfile.readline(1024))
            if self.chunk_left == 0:
                for _ in range(64):  # trailers, bounded
                    line = self.rfile.readline(1024)
                    if line in (b"\r\n", b"\n"):
                        break
                    if not line or not line.endswith(b"\n"):
                        raise HubError(400, "Malformed chunked body: bad trailer")
                else:
                    raise HubError(400, "Malformed chunked body: too many trailers")
                self.done = True
                return b""
        data = self.rfile.read(min(n, self.chunk_left))
        if not data:
            raise HubError(400, "Request body ended inside a chunk")
        self.chunk_left -= len(data)
        if self.chunk_left == 0 and self.rfile.readline(3) not in (b"\r\n", b"\n"):
            raise HubError(400, "Malformed chunked body: chunk data longer than its size")
        return data

    def at_end(self) -> bool:
        """True once the whole body was read (the connection can carry the next request)."""
        if self.chunked:
            if not self.done and self.chunk_left == 0:
                with contextlib.suppress(HubError, OSError):
                    self.read(1)  # only the terminating chunk may remain
            return self.done
        return not self.left

    def read_all(self, limit: int) -> bytes:
        parts, total = [], 0
        while chunk := self.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise HubError(413, f"Request body larger than the limit of {limit} bytes")
            parts.append(chunk)
        self.check_complete()
        return b"".join(parts)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def check_complete(self) -> None:
        """Refuse a body cut short (client died): applying part of a commit would lose data."""
        if (self.chunked and not self.done) or (not self.chunked and self.left):
            raise HubError(400, "Request body ended before its announced length")

    def lines(self, limit: int) -> Iterator[bytes]:
        """NDJSON lines, one at a time (a commit body never sits in memory whole)."""
        parts: list[bytes] = []
        total = 0
        while chunk := self.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise HubError(413, f"Request body larger than the limit of {limit} bytes")
            start = 0
            while (end := chunk.find(b"\n", start)) >= 0:
                parts.append(chunk[start:end])
                if any(p.strip() for p in parts):
                    line, parts = b"".join(parts), []
                    yield line
                    del line  # the consumer decides how long a (large) line lives
                parts = []
                start = end + 1
            parts.append(chunk[start:])
        self.check_complete()
        if any(p.strip() for p in parts):
            yield b"".join(parts)


def attachment(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _chunk_size(line: bytes) -> int:
    """Size of a chunk from its header line: hex digits only (no sign, no '0x'), bounded."""
    size = line.split(b";")[0].strip()
    if not line.endswith(b"\n") or not size or len(size) > 8 or size.strip(b"0123456789abcdefABCDEF"):
        raise HubError(400, f"Malformed chunked body: invalid chunk size {size[:20]!r}")
    n = int(size, 16)
    if n > MAX_CHUNK:
        raise HubError(413, f"Chunk of {n} bytes is larger than the limit of {MAX_CHUNK} bytes")
    return n


def int_field(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise HubError(400, f"{name!r} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise HubError(400, f"{name!r} must be an integer, got {str(value)[:40]!r}") from None


def dict_list(body: dict, key: str) -> list[dict]:
    items = body.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise HubError(400, f"{key!r} must be a list of objects")
    return items


def ndjson_item(line: bytes | str) -> tuple[str, dict]:
    """(key, value) of one commit line; anything but ``{"key": str, "value": object}`` is a 400."""
    try:
        item = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise HubError(400, "Commit body must be NDJSON lines of {key, value}: a line is not JSON") from None
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("key"), str)
        or not isinstance(item.get("value"), dict)
    ):
        raise HubError(400, 'Commit body must be NDJSON lines of {"key": string, "value": object}')
    return item["key"], item["value"]


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single ``bytes=`` range; None if unsatisfiable or malformed."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or start < 0 or end < start:
        return None
    return start, min(end, size - 1)
