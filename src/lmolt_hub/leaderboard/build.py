"""``lmolt-hub leaderboard build``: regenerate ``leaderboard.json``, the page and the plots.

Inputs are the accepted results only: the ``main`` branch of the leaderboard
dataset repository (or a local copy of it), where every merged submission lives
under ``submissions/<namespace>/<submission>/`` (``results.json`` + samples),
plus the paper's tables as ``reported`` rows. The output is deterministic: the
same inputs give the same bytes (sorted keys, sorted rows, no timestamps, PNGs
written without variable metadata).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from lmolt_hub.leaderboard import plots
from lmolt_hub.leaderboard.aggregate import default_spec, score_records
from lmolt_hub.leaderboard.records import Record, higher_is_better, reported_records, verified_record
from lmolt_hub.prompts import DIRECTIONS
from lmolt_hub.provenance import file_sha256
from lmolt_hub.resources import PAPER_TABLES

FORMAT_VERSION = "1"
STATIC_DIR = Path(str(files("lmolt_hub") / "leaderboard" / "static"))
SUBMISSIONS_DIR = "submissions"
RESULTS_FILE = "results.json"
VERIFICATION_FILE = "verification.json"


def load_accepted(root: Path | str) -> list[tuple[Record, Path]]:
    """(record, results path) for every accepted submission under ``root/submissions``."""
    root = Path(root)
    out: list[tuple[Record, Path]] = []
    for path in sorted((root / SUBMISSIONS_DIR).glob(f"**/{RESULTS_FILE}")):
        verification_path = path.parent / VERIFICATION_FILE
        verification = json.loads(verification_path.read_text()) if verification_path.exists() else {}
        results = json.loads(path.read_text())
        out.append(
            (
                verified_record(results, source=path.relative_to(root).as_posix(), verification=verification),
                path,
            )
        )
    return out


def load_samples(record: Record, results_path: Path) -> dict[str, list[dict[str, Any]]]:
    """direction -> sample rows of an accepted record (missing files give no rows)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for direction, name in sorted(record.samples.items()):
        path = results_path.parent / name
        if path.exists():
            rows[direction] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def _metric_columns(records: Sequence[Record]) -> dict[str, list[dict[str, Any]]]:
    from lmolt_hub.metrics import METRIC_INFO

    columns: dict[str, list[dict[str, Any]]] = {}
    for direction in DIRECTIONS:
        present = {m for r in records for m in r.results.get(direction, {})}
        ordered = [k for k in METRIC_INFO if k in present] + sorted(present - set(METRIC_INFO))
        columns[direction] = [
            {
                "key": key,
                "label": METRIC_INFO.get(key, {}).get("label", key),
                "higher_is_better": METRIC_INFO.get(key, {}).get("higher_is_better", True),
            }
            for key in ordered
        ]
    return columns


def _dedupe(records: Sequence[Record]) -> list[Record]:
    """Keep the first record of each key (accepted data is never overwritten by a later one)."""
    seen: set[tuple] = set()
    out = []
    for record in records:
        if record.key() not in seen:
            seen.add(record.key())
            out.append(record)
    return out


def leaderboard_document(
    records: Sequence[Record], spec: dict[str, Any], inputs: dict[str, Any], plot_files: dict[str, str]
) -> dict[str, Any]:
    hib = higher_is_better()
    scores = score_records(records, spec, hib)
    rows = []
    for record in records:
        row = record.to_dict()
        row.pop("samples")
        row["win_rate"] = {d: h.get("win_rate") for d, h in sorted(record.hallucination.items())}
        row.update(scores[record.row_id])
        rows.append(row)

    def order(row: dict[str, Any]) -> tuple:
        rank = row["rank"].get("overall")
        return (row["kind"] != "verified", rank is None, rank or 0, row["model"], row["revision"] or "")

    rows.sort(key=order)
    return {
        "format_version": FORMAT_VERSION,
        "aggregate": spec,
        "directions": list(DIRECTIONS),
        "metrics": _metric_columns(records),
        "rows": rows,
        "plots": plot_files,
        "inputs": inputs,
    }


def build(
    output_dir: Path | str,
    results_root: Path | str | None = None,
    include_paper: bool = True,
    spec: dict[str, Any] | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Write leaderboard.json, the static page and the plots to ``output_dir``; return the document."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    spec = spec or default_spec()
    if baseline:
        spec["baseline"]["verified"] = {"model": baseline}
    accepted = load_accepted(results_root) if results_root else []
    records = _dedupe([r for r, _ in accepted])
    if include_paper:
        records = reported_records() + records
    inputs = {
        "paper_tables_sha256": file_sha256(PAPER_TABLES) if include_paper else None,
        # accepted is already ordered by path, so this list is deterministic
        "verified": [{"source": r.source, "sha256": file_sha256(p)} for r, p in accepted],
    }
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for record, path in accepted:
        if record.row_id not in samples:  # duplicates: the first accepted one counts
            samples[record.row_id] = load_samples(record, path)
    plot_files = plots.write_plots(records, samples, output_dir)
    doc = leaderboard_document(records, spec, inputs, plot_files)
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    # Atomic: a page being served never reads a half-written file.
    tmp = output_dir / ".leaderboard.json.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output_dir / "leaderboard.json")
    copy_static(output_dir)
    return doc


def copy_static(output_dir: Path) -> None:
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            shutil.copyfile(path, output_dir / path.name)
