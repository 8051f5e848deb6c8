"""Molecule-caption pairs from the bundled ChEBI-20, a Hub dataset, or a local file.

Loading a source is also its check: a missing column, a wrong split name or an
unreachable repository raises a one-line ``DataError`` before any generation
or writing starts. What was read is described (id, split, resolved commit or
file sha256) so the dataset card can say exactly how to rebuild.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmolt_hub.data.config import DataError, SourceConfig
from lmolt_hub.hub.ref import is_local, repo_info
from lmolt_hub.provenance import file_sha256
from lmolt_hub.resources import chebi20_split

SOURCE_INFO_KEYS = ("type", "path", "file", "name", "split", "revision", "sha", "sha256")
FILE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}


@dataclass(frozen=True)
class Pair:
    id: str
    molecule: str
    caption: str


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


def read_table(path: Path) -> list[dict[str, Any]]:
    """Rows of a csv/tsv/jsonl/json/parquet file as dicts (tsv is read without quoting, like the
    official ChEBI-20 and MolT5 files, whose captions contain quote characters)."""
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file format {path.suffix!r}; use one of {', '.join(FILE_FORMATS)}")
    if not path.is_file():
        raise DataError(f"source file not found: {path}")
    try:
        if fmt in ("csv", "tsv"):
            with open(path, newline="", encoding="utf-8") as f:
                if fmt == "tsv":
                    return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
                return list(csv.DictReader(f))
        if fmt == "jsonl":
            with open(path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        if fmt == "json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise DataError(f"{path}: a .json source must hold a list of objects")
            return data
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    except (OSError, ValueError, csv.Error) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot read ({first_line(exc)})") from None


def _columns_check(columns: list[str], src: SourceConfig, what: str) -> None:
    for role in ("molecule_column", "caption_column", "id_column"):
        col = getattr(src, role)
        if col is not None and col not in columns:
            raise DataError(
                f"{what}: no column {col!r} ({role}); columns are {', '.join(columns) or '(none)'}"
            )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _load_chebi20(src: SourceConfig) -> tuple[list[Pair], dict[str, Any]]:
    path = chebi20_split(src.split or "")
    rows = read_table(path)
    # The MolT5 repository's ChEBI-20 TSVs write every SMILES backslash twice; the official
    # MolT5 outputs and evaluation scripts use single ones (same InChIKey either way).
    pairs = [
        Pair(
            f"chebi20-{src.split}-{r['CID']}",
            _text(r["SMILES"]).replace("\\\\", "\\"),
            _text(r["description"]),
        )
        for r in rows
    ]
    info = {
        "type": "chebi20",
        "split": src.split,
        "file": f"bundled:chebi20/{path.name}",
        "sha256": file_sha256(path),
    }
    return pairs, info


def _load_file(src: SourceConfig, base_dir: Path) -> tuple[list[Pair], dict[str, Any]]:
    path = resolve_path(src.path or "", base_dir)
    rows = read_table(path)
    _columns_check(list(rows[0]) if rows else [], src, f"source file {src.path}")
    pairs = [
        Pair(
            _text(r[src.id_column]) if src.id_column else f"{path.stem}-{i}",
            _text(r[src.molecule_column]),
            _text(r[src.caption_column]),
        )
        for i, r in enumerate(rows)
    ]
    return pairs, {"type": "file", "path": src.path, "sha256": file_sha256(path)}


def _resolve_hub_revision(src: SourceConfig) -> str | None:
    """The commit sha behind ``src.revision`` (None for a local dataset directory)."""
    if is_local(src.path or ""):
        return None
    try:
        info = repo_info(
            src.path, src.revision, repo_type="dataset", error=DataError, offline_is_missing=True
        )
        return info.sha
    except DataError as exc:  # the Hub's answer (or none), said in one line
        raise DataError(
            f"source {src.path!r} (revision {src.revision or 'main'}) is not reachable: {first_line(exc)}"
        ) from None


def _load_hub(src: SourceConfig) -> tuple[list[Pair], dict[str, Any]]:
    import datasets

    sha = _resolve_hub_revision(src)
    where = f"source {src.path!r} split {src.split!r}"
    try:
        ds = datasets.load_dataset(src.path, src.name, split=src.split, revision=sha)
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise DataError(f"{where}: no such split ({first_line(exc)})") from None
        raise DataError(f"{where}: cannot load ({first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{where}: cannot load ({first_line(exc)})") from None
    _columns_check(ds.column_names, src, where)
    ids = ds[src.id_column] if src.id_column else None
    mols, caps = ds[src.molecule_column], ds[src.caption_column]
    tag = src.path.rstrip("/").split("/")[-1]
    pairs = [
        Pair(_text(ids[i]) if ids is not None else f"{tag}-{src.split}-{i}", _text(m), _text(c))
        for i, (m, c) in enumerate(zip(mols, caps, strict=True))
    ]
    info = {
        "type": "hub",
        "path": src.path,
        "name": src.name,
        "split": src.split,
        "revision": src.revision,
        "sha": sha,
    }
    return pairs, info


def resolve_path(path: str, base_dir: Path) -> Path:
    """A recipe path: absolute, or relative to the recipe's directory (else to the working directory)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return base_dir / p if (base_dir / p).exists() else p


def load_pairs(src: SourceConfig, base_dir: Path = Path(".")) -> tuple[list[Pair], dict[str, Any]]:
    """All pairs of a source (unvalidated) and a description of what exactly was read."""
    if src.type == "chebi20":
        pairs, info = _load_chebi20(src)
    elif src.type == "file":
        pairs, info = _load_file(src, base_dir)
    else:
        local = resolve_path(src.path or "", base_dir)
        if local.exists():  # a local dataset directory, loaded like a Hub dataset
            src = dataclasses.replace(src, path=str(local))
        pairs, info = _load_hub(src)
    info = {key: info.get(key) for key in SOURCE_INFO_KEYS}  # same keys for every type (cards rely on it)
    info.update(
        {"molecule_column": src.molecule_column, "caption_column": src.caption_column, "rows": len(pairs)}
    )
    where = f"source {info.get('path') or info.get('file')}"
    if not pairs:
        raise DataError(f"{where}: no rows")
    if len({p.id for p in pairs}) != len(pairs):
        raise DataError(f"{where}: id column {src.id_column!r} has duplicate values; ids must be unique")
    return pairs, info
