"""``lmolt-hub leaderboard build``: regenerate ``leaderboard.json``, the page and the plots.

Inputs are the verified results only: the ``main`` branch of the leaderboard
dataset repository (or a local copy of it), where every merged submission lives
under ``submissions/<namespace>/<submission>/`` (``results.json`` + samples +
the reviewer's ``verification.json``), plus the paper's tables as ``reported``
rows. A results file counts only if its verification binds its sha256 and its
model is in the folder's namespace; files that do not count are listed with the
reason in ``inputs.not_counted``. Duplicates keep the first accepted row
(acceptance order: the verification's ``reviewed_at``, then the PR number). The output is deterministic: the
same inputs give the same bytes (sorted keys, sorted rows, no timestamps, PNGs
written without variable metadata).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.io import write_text
from lmolt_hub.leaderboard import plots
from lmolt_hub.leaderboard.aggregate import default_spec, score_records
from lmolt_hub.leaderboard.records import Record, higher_is_better, reported_records, verified_record
from lmolt_hub.prompts import DIRECTIONS
from lmolt_hub.provenance import file_sha256
from lmolt_hub.resources import PAPER_TABLES

log = logging.getLogger(__name__)
FORMAT_VERSION = "1"
STATIC_DIR = Path(str(files("lmolt_hub") / "leaderboard" / "static"))
SUBMISSIONS_DIR = "submissions"
RESULTS_FILE = "results.json"
VERIFICATION_FILE = "verification.json"


@dataclass
class Accepted:
    """One counted submission: its record, results path and the digest its verification binds."""

    record: Record
    path: Path
    sha256: str
    order: tuple


CardLookup = Callable[[str, "str | None"], "dict[str, Any] | None"]


def hub_card_lookup(api: Any = None) -> CardLookup:
    """Card metadata of a model at a revision from the Hub (None where it cannot be read)."""
    from huggingface_hub import HfApi

    api = api or HfApi()

    def lookup(model_id: str, revision: str | None) -> dict[str, Any] | None:
        try:
            card = api.model_info(model_id, revision=revision).card_data
        except Exception:  # noqa: BLE001 - a missing or unreadable card only loses the labels
            return None
        return card.to_dict() if card is not None else None

    return lookup


def _verified_submission(root: Path, path: Path, cards: CardLookup | None = None) -> Accepted:
    """The submission at ``path`` if it counts; raises ValueError with the reason if not.

    It counts when it sits at ``submissions/<namespace>/<id>/results.json``, its model belongs to
    ``<namespace>``, and the reviewer's ``verification.json`` next to it binds these exact bytes
    (``results_sha256``). A file written to main some other way, or changed after review, does not.
    """
    rel = path.relative_to(root)
    if len(rel.parts) != 4:
        raise ValueError(f"not at {SUBMISSIONS_DIR}/<namespace>/<id>/{RESULTS_FILE}")
    verification_path = path.parent / VERIFICATION_FILE
    if not verification_path.is_file():
        raise ValueError(f"no {VERIFICATION_FILE} (never reviewed)")
    payload = path.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    verification = json.loads(verification_path.read_text(encoding="utf-8"))
    if not isinstance(verification, dict) or verification.get("results_sha256") != digest:
        raise ValueError(f"{VERIFICATION_FILE} does not bind this {RESULTS_FILE} (results_sha256 differs)")
    results = json.loads(payload)
    namespace = rel.parts[1]
    model_id = str((results.get("model") or {}).get("id") or "")
    if not model_id.startswith(f"{namespace}/"):
        raise ValueError(f"model {model_id!r} is not in the folder's namespace {namespace!r}")
    card = None
    if cards is not None and "card" not in verification:
        model = results["model"]
        card = cards(model_id, pinned_revision(model))
    record = verified_record(results, source=rel.as_posix(), verification=verification, card=card)
    order = (str(verification.get("reviewed_at") or ""), int(verification.get("pr") or 0), rel.as_posix())
    return Accepted(record, path, digest, order)


def load_verified(
    root: Path | str, cards: CardLookup | None = None
) -> tuple[list[Accepted], list[dict[str, str]]]:
    """(counted submissions in acceptance order, [{"source", "reason"}] of files not counted).

    ``cards`` looks up a model's card (for method and fusion from its ``lmolt:`` block) where the
    verification did not record it.
    """
    root = Path(root)
    counted: list[Accepted] = []
    refused: list[dict[str, str]] = []
    for path in sorted((root / SUBMISSIONS_DIR).glob(f"**/{RESULTS_FILE}")):
        try:
            counted.append(_verified_submission(root, path, cards))
        except (ValueError, TypeError, KeyError, AttributeError, OSError, UnicodeDecodeError) as exc:
            # one bad file on main never stops the build; it is listed with its reason instead
            refused.append({"source": path.relative_to(root).as_posix(), "reason": str(exc) or repr(exc)})
    counted.sort(key=lambda a: a.order)
    return counted, refused


def load_accepted(root: Path | str) -> list[tuple[Record, Path]]:
    """(record, results path) for every verified submission under ``root/submissions``, in acceptance order."""
    return [(a.record, a.path) for a in load_verified(root)[0]]


# Per-sample values the figures plot, and the range a real one lies in: a value outside (1e308 as a
# dLen, a chrF of 7) or not finite is skipped with a warning, never plotted, never fatal.
SAMPLE_BOUNDS = {"dlen": 1e6, "chrf": 1.0 + 1e-9, "nli": 1.0 + 1e-9}


def _sane_row(row: Any) -> str | None:
    """Why a sample row cannot be plotted (None: it can)."""
    if not isinstance(row, dict):
        return "not an object"
    for name, bound in SAMPLE_BOUNDS.items():
        value = plots.sample_value(row, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} is not a number ({value!r:.40})"
        if not math.isfinite(value) or abs(value) > bound:
            return f"{name} = {value!r} is not finite or outside [-{bound:g}, {bound:g}]"
    win = plots.sample_value(row, "win")
    if win is not None and not isinstance(win, bool):
        return f"win is not true/false ({win!r:.40})"
    return None


def load_samples(
    record: Record, results_path: Path, warnings: list[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """direction -> sample rows of an accepted record (missing files give no rows).

    A file whose sha256 differs from the one its verification binds is skipped, and so is a row
    with a non-finite or absurd value; each skip is a line in ``warnings``."""
    warnings = warnings if warnings is not None else []
    bound = record.verification.get("samples_sha256") or {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for direction, name in sorted(record.samples.items()):
        path = results_path.parent / name
        if Path(name).name != name or not path.is_file():  # a plain file next to results.json only
            continue
        data = path.read_bytes()
        if name in bound and bound[name] != hashlib.sha256(data).hexdigest():
            warnings.append(f"{record.source}: {name} is not the file its verification binds; skipped")
            continue
        kept = []
        for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                why: str | None = f"not JSON ({exc})"
            else:
                why = _sane_row(row)
            if why:
                warnings.append(f"{record.source}: {name} line {n} skipped: {why}")
            else:
                kept.append(row)
        rows[direction] = kept
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
    """Keep the first record of each key in acceptance order (a later one never overwrites it)."""
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
    cards: CardLookup | None = None,
) -> dict[str, Any]:
    """Write leaderboard.json, the static page and the plots to ``output_dir``; return the document.

    ``baseline``: model id of the verified baseline of the aggregate (replaces the spec's);
    ``cards``: card lookup for method/fusion of models not named like the zoo (e.g.
    :func:`hub_card_lookup`).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    spec = copy.deepcopy(spec) if spec else default_spec()
    if baseline:
        spec["baseline"]["verified"] = {"model": baseline}
    accepted, refused = load_verified(results_root, cards) if results_root else ([], [])
    records = _dedupe([a.record for a in accepted])
    if include_paper:
        records = reported_records() + records
    inputs = {
        "paper_tables_sha256": file_sha256(PAPER_TABLES) if include_paper else None,
        # in acceptance order (reviewed_at, PR number, path): deterministic
        "verified": [{"source": a.record.source, "sha256": a.sha256} for a in accepted],
        "not_counted": refused,
    }
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    warnings: list[str] = []
    for a in accepted:
        if a.record.row_id not in samples:  # duplicates: the first accepted one counts
            try:  # one row never aborts a build
                samples[a.record.row_id] = load_samples(a.record, a.path, warnings)
            except (OSError, ValueError, TypeError) as exc:
                warnings.append(f"{a.record.source}: samples skipped: {exc}")
    for line in warnings:
        log.warning("leaderboard build: %s", line)
    inputs["sample_warnings"] = warnings
    plot_files = plots.write_plots(records, samples, output_dir)
    doc = leaderboard_document(records, spec, inputs, plot_files)
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    write_text(output_dir / "leaderboard.json", text)  # atomic: a served page never reads half a file
    copy_static(output_dir)
    return doc


def copy_static(output_dir: Path) -> None:
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            shutil.copyfile(path, output_dir / path.name)
