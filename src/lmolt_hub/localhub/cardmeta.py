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


# ---------------------------------------------------------------- validation (/api/validate-yaml)

# Card fields the Hub types, and what each must be. Anything else is free-form (our own ``lmolt:``
# block included), as on the Hub.
_STR, _STR_LIST = "a string", "a string or a list of strings"
KNOWN_TYPES: dict[str, str] = {
    "license": _STR_LIST,
    "license_name": _STR,
    "license_link": _STR,
    "language": _STR_LIST,
    "tags": _STR_LIST,
    "datasets": _STR_LIST,
    "metrics": _STR_LIST,
    "base_model": _STR_LIST,
    "library_name": _STR,
    "pipeline_tag": _STR,
    "thumbnail": _STR,
    "new_version": _STR,
    "pretty_name": _STR,
    "task_categories": _STR_LIST,
    "task_ids": _STR_LIST,
    "size_categories": _STR_LIST,
    "title": _STR,
    "sdk": _STR,
    "app_file": _STR,
}
LICENSES = {
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl",
    "lgpl-2.1", "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl",
    "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openmdw-1.0", "openrail++", "osl-3.0", "postgresql",
    "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "fair-noncommercial-research-license",
    "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma", "unknown", "other",
}  # fmt: skip


def _is_str_list(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))


def validate_metadata(meta: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(errors, warnings) for a card's metadata: the known fields' types and the model-index shape."""
    errors: list[str] = []
    for key, kind in KNOWN_TYPES.items():
        if key in meta and meta[key] is not None:
            ok = isinstance(meta[key], str) if kind == _STR else _is_str_list(meta[key])
            if not ok:
                errors.append(f'"{key}" must be {kind}')
    warnings = []
    licenses = meta.get("license")
    for lic in [licenses] if isinstance(licenses, str) else licenses if _is_str_list(licenses) else []:
        if lic.lower() not in LICENSES:
            warnings.append(f'"license": {lic!r} is not a known license id; use "other" with license_name')
    if "model-index" in meta:
        errors.extend(_model_index_errors(meta["model-index"]))
    return errors, warnings


def _model_index_errors(index: Any) -> list[str]:
    """``model-index``: a list of {name, results: [{task: {type}, dataset: {type, name}, metrics:
    [{type, value}]}]}, as the Hub's validator requires (it drives the eval results widget)."""
    if not isinstance(index, list) or not index:
        return ['"model-index" must be a non-empty list']
    errors = []
    for i, model in enumerate(index):
        where = f"model-index[{i}]"
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            errors.append(f'"{where}" must be a mapping with a string "name"')
            continue
        results = model.get("results")
        if not isinstance(results, list):
            errors.append(f'"{where}.results" must be a list')
            continue
        for j, res in enumerate(results):
            errors.extend(_result_errors(res, f"{where}.results[{j}]"))
    return errors


def _result_errors(res: Any, where: str) -> list[str]:
    if not isinstance(res, dict):
        return [f'"{where}" must be a mapping']
    errors = []
    task = res.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("type"), str):
        errors.append(f'"{where}.task.type" is required (a string)')
    dataset = res.get("dataset")
    if not isinstance(dataset, dict) or not all(isinstance(dataset.get(k), str) for k in ("type", "name")):
        errors.append(f'"{where}.dataset" must have string "type" and "name"')
    metrics = res.get("metrics")
    if not isinstance(metrics, list):
        errors.append(f'"{where}.metrics" must be a list')
        return errors
    for k, m in enumerate(metrics):
        if not isinstance(m, dict) or not isinstance(m.get("type"), str) or "value" not in m:
            errors.append(f'"{where}.metrics[{k}]" must have a string "type" and a "value"')
    return errors
