"""Bounded, JSON-safe parsing of model-card front matter for the local Hub.

Cards come from anyone with a token, and their metadata is served to every client
(``model_info``, ``list_models``, the zoo page). So the parse is bounded (size, no
aliases, nesting depth) and its result is always JSON-serialisable: YAML tags such as
``!!timestamp`` (a bare ``date: 2024-01-01``), ``!!binary`` or ``!!set`` become strings or
lists instead of Python objects that break ``json.dumps``.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from typing import Any

import yaml

MAX_FRONT_MATTER = 256 << 10  # bytes of YAML parsed per card
MAX_DEPTH = 32
MAX_NODES = 20_000


class CardError(ValueError):
    """Front matter refused: too large, aliases, too deep or invalid YAML."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader without aliases (an alias bomb expands 400 bytes into 100+ MB) and with a node cap."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._nodes = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise CardError(f"YAML aliases (*{event.anchor}) are not allowed in cards{_where(event)}")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise CardError(f"card metadata has more than {MAX_NODES} YAML nodes")
        return super().compose_node(parent, index)


def _where(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def split_card(text: str) -> tuple[str | None, str]:
    """(front matter text or None, body) of a card, without parsing the YAML."""
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        if len(parts) == 2:
            return parts[0][3:], parts[1].lstrip("-\n")
    return None, text


def _jsonable(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise CardError(f"card metadata nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(v, depth + 1) for v in value), key=str)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # .inf / .nan are not JSON
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def load_front_matter(text: str) -> dict[str, Any]:
    """The card's metadata as a JSON-compatible dict ({} without front matter); CardError if refused."""
    front, _ = split_card(text)
    if front is None:
        return {}
    if len(front.encode()) > MAX_FRONT_MATTER:
        raise CardError(f"card metadata is larger than {MAX_FRONT_MATTER >> 10} KiB")
    loader = _BoundedLoader(front)
    try:
        data = loader.get_single_data()
    except RecursionError:
        raise CardError("card metadata is nested too deeply") from None
    except yaml.YAMLError as e:
        raise CardError(f"Invalid YAML: {e}") from None
    finally:
        loader.dispose()
    return _jsonable(data) if isinstance(data, dict) else {}


def card_data(text: str) -> dict[str, Any] | None:
    """A card's metadata for listings, or None when it has none or it is refused (a bad card
    never breaks a listing)."""
    try:
        return load_front_matter(text) or None
    except CardError:
        return None
