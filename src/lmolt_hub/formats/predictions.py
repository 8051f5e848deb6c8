"""Read prediction files (the one reader): the official TSV format or JSONL.

TSV (as the official scripts read it: ``csv.DictReader(f, delimiter="\\t", quoting=csv.QUOTE_NONE)``):
- smiles2caption: columns ``SMILES``, ``ground truth``, ``output``;
- caption2smiles: columns ``description``, ``ground truth``, ``output``.
JSONL: one object per line with ``prediction`` (or ``output``), ``reference`` (or ``ground truth``)
and optionally ``source`` (or the TSV source column name) and ``id``.

Every problem is reported as ``PredictionFileError`` naming the file, the row (1-based line number)
and what is wrong: undecodable bytes, missing columns, ragged rows, missing or non-string values,
JSON nested too deeply. Empty outputs are allowed (they score as empty captions / invalid molecules).
Accepted as they come: a UTF-8 byte-order mark, ``\n``, ``\r\n`` or bare ``\r`` line endings (as
Python's universal newlines, which the official scripts read with), and fields of any length
(``csv``'s 131,072-character default is lifted; over-long SMILES are then invalid molecules, see
``molecules.MAX_SMILES_CHARS``). :func:`decode_lines`, :func:`json_line` and :func:`tsv_reader` are
shared with the evaluation-set reader.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.formats.direction import Direction
from lmolt_hub.provenance import file_sha256

SOURCE_COLUMN = {d.value: d.tsv_header[0] for d in Direction}
REFERENCE_COLUMN, OUTPUT_COLUMN = Direction.SMILES2CAPTION.tsv_header[1:]


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


BOM = b"\xef\xbb\xbf"
_NEWLINE = re.compile(rb"\r\n|\r|\n")  # universal newlines, as open(..., newline=None) reads


def decode_lines(path: Path, error: type[ValueError] | None = None) -> list[str]:
    """UTF-8 lines of ``path`` without their endings (BOM dropped; ``\n``, ``\r\n`` or ``\r``).

    A row that is not UTF-8 raises ``error`` (default :class:`PredictionFileError`) naming it.
    """
    error = error or PredictionFileError
    raw = path.read_bytes().removeprefix(BOM)
    lines = _NEWLINE.split(raw)
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for n, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise error(
                f"{path}: row {n}: not valid UTF-8 (byte {line[err.start : err.start + 1]!r} at column "
                f"{err.start + 1}); re-encode the file as UTF-8"
            ) from None
    return out


def json_line(text: str, where: str, error: type[ValueError] | None = None) -> Any:
    """``json.loads`` whose failures, including nesting too deep for the parser, are one line."""
    error = error or PredictionFileError
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{where}: not JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply to read (a row is one flat object)") from None


@contextlib.contextmanager
def csv_field_limit(chars: int) -> Iterator[None]:
    """Lift ``csv``'s field-size limit to ``chars`` for the block (restored afterwards): a long
    caption or SMILES is data, not an error."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, chars))
    try:
        yield
    finally:
        csv.field_size_limit(old)


@contextlib.contextmanager
def tsv_reader(lines: list[str], dict_reader: bool = False, **kwargs: Any) -> Iterator[Any]:
    """``csv.reader``/``DictReader`` over ``lines``, fields as long as the longest line."""
    with csv_field_limit(max((len(line) for line in lines), default=0) + 1):
        yield (csv.DictReader if dict_reader else csv.reader)(lines, **kwargs)


def read_predictions(path: str | Path, direction: str) -> Predictions:
    """Read ``path`` (``.jsonl``/``.json`` as JSONL, anything else as the official TSV)."""
    if direction not in SOURCE_COLUMN:
        raise ValueError(f"unknown direction {direction!r}; use one of {tuple(SOURCE_COLUMN)}")
    path = Path(path)
    if not path.is_file():
        raise PredictionFileError(f"{path}: no such file")
    lines = decode_lines(path)
    if not lines:
        raise PredictionFileError(f"{path}: the file is empty")
    reader = _read_jsonl if path.suffix.lower() in {".jsonl", ".json"} else _read_tsv
    preds = reader(path, lines, direction)
    if preds.n_rows == 0:
        raise PredictionFileError(f"{path}: no data rows")
    preds.sha256 = file_sha256(path)
    return preds


def _read_tsv(path: Path, lines: list[str], direction: str) -> Predictions:
    with tsv_reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE) as rows:
        return _tsv_rows(path, rows, direction)


def _tsv_rows(path: Path, rows: Iterator[list[str]], direction: str) -> Predictions:
    src_col = SOURCE_COLUMN[direction]
    header = next(rows)
    need = [src_col, REFERENCE_COLUMN, OUTPUT_COLUMN]
    missing = [c for c in need if c not in header]
    if missing:
        other = SOURCE_COLUMN[Direction(direction).other]
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
        obj = json_line(line, f"{path}: row {n}")
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
