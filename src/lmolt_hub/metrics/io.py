"""Read prediction files: the official TSV format or JSONL.

TSV (as the official scripts read it: ``csv.DictReader(f, delimiter="\\t", quoting=csv.QUOTE_NONE)``):
- smiles2caption: columns ``SMILES``, ``ground truth``, ``output``;
- caption2smiles: columns ``description``, ``ground truth``, ``output``.
JSONL: one object per line with ``prediction`` (or ``output``), ``reference`` (or ``ground truth``)
and optionally ``source`` (or the TSV source column name) and ``id``.

Every problem is reported as ``PredictionFileError`` naming the file, the row (1-based line number)
and what is wrong: undecodable bytes, missing columns, ragged rows, missing or non-string values.
Empty outputs are allowed (they score as empty captions / invalid molecules).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from lmolt_hub.provenance import file_sha256

SOURCE_COLUMN = {"smiles2caption": "SMILES", "caption2smiles": "description"}
REFERENCE_COLUMN, OUTPUT_COLUMN = "ground truth", "output"


class PredictionFileError(ValueError):
    """A predictions file that cannot be scored; the message names file, row and problem."""


@dataclass
class Predictions:
    """Rows of a predictions file, in file order."""

    path: Path
    direction: str
    sources: list[str]
    references: list[str]
    predictions: list[str]
    ids: list[str] = field(default_factory=list)
    sha256: str = ""

    @property
    def n_rows(self) -> int:
        return len(self.predictions)


def _decode_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    out = []
    for n, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise PredictionFileError(
                f"{path}: row {n}: not valid UTF-8 (byte {line[err.start : err.start + 1]!r} at column "
                f"{err.start + 1}); re-encode the file as UTF-8"
            ) from None
    if out and out[-1] == "":
        out.pop()
    return [line[:-1] if line.endswith("\r") else line for line in out]


def read_predictions(path: str | Path, direction: str) -> Predictions:
    """Read ``path`` (``.jsonl``/``.json`` as JSONL, anything else as the official TSV)."""
    if direction not in SOURCE_COLUMN:
        raise ValueError(f"unknown direction {direction!r}; use one of {tuple(SOURCE_COLUMN)}")
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"{path}: no such file")
    lines = _decode_lines(path)
    if not lines:
        raise PredictionFileError(f"{path}: the file is empty")
    reader = _read_jsonl if path.suffix.lower() in {".jsonl", ".json"} else _read_tsv
    preds = reader(path, lines, direction)
    if preds.n_rows == 0:
        raise PredictionFileError(f"{path}: no data rows")
    preds.sha256 = file_sha256(path)
    return preds


def _read_tsv(path: Path, lines: list[str], direction: str) -> Predictions:
    src_col = SOURCE_COLUMN[direction]
    rows = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(rows)
    need = [src_col, REFERENCE_COLUMN, OUTPUT_COLUMN]
    missing = [c for c in need if c not in header]
    if missing:
        other = SOURCE_COLUMN["caption2smiles" if direction == "smiles2caption" else "smiles2caption"]
        hint = f" (this looks like a {other!r} file: wrong --direction?)" if other in header else ""
        raise PredictionFileError(
            f"{path}: row 1 (header): missing column(s) {missing}; found {header}; a {direction} file "
            f"needs tab-separated columns {need}{hint}"
        )
    pos = [header.index(c) for c in need]
    out = Predictions(path, direction, [], [], [])
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header):
            if len(row) == 0 or row == [""]:
                raise PredictionFileError(f"{path}: row {n}: empty line inside the data")
            raise PredictionFileError(
                f"{path}: row {n}: {len(row)} tab-separated fields, the header has {len(header)} "
                "(a tab or newline inside a text field?)"
            )
        src, ref, pred = (row[p] for p in pos)
        if ref == "":
            raise PredictionFileError(f"{path}: row {n}: empty '{REFERENCE_COLUMN}'")
        out.sources.append(src)
        out.references.append(ref)
        out.predictions.append(pred)
        out.ids.append(str(n - 1))
    return out


def _field(obj: dict, names: tuple[str, ...]):
    for name in names:
        if name in obj:
            return obj[name], name
    return None, None


def _read_jsonl(path: Path, lines: list[str], direction: str) -> Predictions:
    out = Predictions(path, direction, [], [], [])
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise PredictionFileError(
                f"{path}: row {n}: not JSON ({err.msg} at column {err.colno})"
            ) from None
        if not isinstance(obj, dict):
            raise PredictionFileError(f"{path}: row {n}: expected a JSON object, got {type(obj).__name__}")
        pred, pname = _field(obj, ("prediction", OUTPUT_COLUMN))
        ref, rname = _field(obj, ("reference", REFERENCE_COLUMN))
        src, _ = _field(obj, ("source", SOURCE_COLUMN[direction]))
        if pname is None or rname is None:
            raise PredictionFileError(
                f"{path}: row {n}: needs keys 'prediction' and 'reference' (or 'output' and 'ground truth'); "
                f"found {sorted(obj)}"
            )
        if pred is None or (isinstance(pred, float) and math.isnan(pred)):
            pred = ""  # a missing output is an empty output (documented)
        for name, value in ((pname, pred), (rname, ref)):
            if not isinstance(value, str):
                raise PredictionFileError(f"{path}: row {n}: {name!r} is {value!r}, expected a string")
        if ref == "":
            raise PredictionFileError(f"{path}: row {n}: empty {rname!r}")
        out.predictions.append(pred)
        out.references.append(ref)
        out.sources.append(src if isinstance(src, str) else "")
        out.ids.append(str(obj.get("id", len(out.ids))))
    return out
