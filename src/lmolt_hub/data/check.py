"""Check a built dataset (a local folder or a Hub repo) against the dataset contract.

Triples: exact columns, both configs, prompts rebuilt from the recorded
template, rejected == chosen only where the recipe keeps such rows (and exactly as
many as the card counts), ids unique, two KTO rows per triple. Eval: exact
columns, InChIKeys recomputed and unique, FCD statistics present when the
recipe asked for them. Every failure is a one-line ``DataError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from lmolt_hub.data.built import BUILD_INFO, shard_path
from lmolt_hub.data.chem import inchikey
from lmolt_hub.data.config import DataError
from lmolt_hub.prompts import DIRECTIONS, TEMPLATE_VERSION, build_prompt


def _read(path: Path, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"missing data file {path}")
    table = pq.read_table(path)
    if tuple(table.column_names) != columns:
        raise DataError(f"{path.name}: columns {table.column_names}, expected {list(columns)}")
    return table.to_pylist()


def _check_triples(root: Path, info: dict[str, Any]) -> dict[str, int]:
    from lmolt_hub.formats.triples import KTO_COLUMNS, TRIPLE_COLUMNS

    counts = {}
    for split in info["summary"]["splits"]:
        rows = _read(root / shard_path("default", split), TRIPLE_COLUMNS)
        kto = _read(root / shard_path("kto", split), KTO_COLUMNS)
        ids = [r["id"] for r in rows]
        if len(set(ids)) != len(ids):
            raise DataError(f"{split}: duplicate ids")
        for r in rows:
            if r["direction"] not in DIRECTIONS:
                raise DataError(f"{split} row {r['id']}: unknown direction {r['direction']!r}")
            if r["template_version"] != TEMPLATE_VERSION:
                raise DataError(
                    f"{split} row {r['id']}: template {r['template_version']!r}, this lmolt-hub has {TEMPLATE_VERSION!r}"
                )
            if r["prompt"] != build_prompt(r["direction"], r["source"]):
                raise DataError(f"{split} row {r['id']}: prompt does not match the template")
        _check_rules(split, rows, info)
        if len(kto) != 2 * len(rows) or sum(r["label"] is True for r in kto) != len(rows):
            raise DataError(f"{split}: kto config must hold one True and one False row per triple")
        counts[split] = len(rows)
    return counts


def _check_rules(split: str, rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    """Empty and identical rejected outputs appear only where the recipe keeps them, as counted."""
    neg = info["recipe"]["negatives"]
    drop_identical, drop_empty = neg.get("drop_identical", True), neg.get("drop_empty", True)
    counted = info["summary"]["splits"][split].get("directions", {})
    for direction in DIRECTIONS:
        of_dir = [r for r in rows if r["direction"] == direction]
        empty = [r["id"] for r in of_dir if not r["rejected"].strip()]
        equal = [r["id"] for r in of_dir if r["rejected"] and r["rejected"].strip() == r["chosen"].strip()]
        if empty and drop_empty:
            raise DataError(f"{split} row {empty[0]}: rejected is empty (the recipe drops empty ones)")
        if equal and drop_identical:
            raise DataError(f"{split} row {equal[0]}: rejected equals chosen (the recipe drops these)")
        rules = (counted.get(direction) or {}).get("rules")
        if rules and len(equal) != rules["rejected_equals_chosen"]["kept"]:
            raise DataError(
                f"{split} {direction}: {len(equal)} rows with rejected == chosen, the card counts "
                f"{rules['rejected_equals_chosen']['kept']}"
            )


def _check_eval(root: Path, info: dict[str, Any]) -> dict[str, int]:
    from lmolt_hub.formats.eval_set import EVAL_COLUMNS

    rows = _read(root / shard_path("default", "test"), EVAL_COLUMNS)
    keys = [r["inchikey"] for r in rows]
    if len(set(keys)) != len(keys):
        raise DataError("test: a molecule appears more than once (one caption per molecule)")
    for r in rows:
        if inchikey(r["molecule"]) != r["inchikey"]:
            raise DataError(f"test row {r['id']}: inchikey does not match its molecule")
    fcd = info["sources"].get("fcd_stats") or {}
    if info["recipe"].get("fcd_stats") and not (root / fcd.get("file", "<none>")).is_file():
        raise DataError("FCD reference statistics missing (fcd_stats/)")
    return {"test": len(rows)}


def check_dir(root: Path) -> dict[str, Any]:
    """Counts per split when ``root`` satisfies the contract; raises ``DataError`` otherwise."""
    root = Path(root)
    if not (root / "README.md").is_file() or not (root / BUILD_INFO).is_file():
        raise DataError(f"{root}: not a built lmolt dataset (README.md and {BUILD_INFO} expected)")
    info = json.loads((root / BUILD_INFO).read_text(encoding="utf-8"))
    counts = _check_triples(root, info) if info["kind"] == "triples" else _check_eval(root, info)
    return {"kind": info["kind"], "name": info["name"], "rows": counts}


def check_dataset(ref: str, revision: str | None = None) -> dict[str, Any]:
    """Check a local folder, or download a Hub dataset repo and check it."""
    if Path(ref).exists():
        return check_dir(Path(ref))
    from huggingface_hub import snapshot_download

    from lmolt_hub.data.sources import first_line

    try:
        local = snapshot_download(ref, repo_type="dataset", revision=revision)
    except Exception as exc:  # noqa: BLE001
        from lmolt_hub.hub.errors import hub_error_message

        raise DataError(
            f"dataset {ref!r}: cannot download ({hub_error_message(exc) or first_line(exc)})"
        ) from None
    return check_dir(Path(local))
