"""The leaderboard's data model: one record per evaluated configuration.

A record is keyed by (model, revision, eval set, eval set revision, prompt
template version, metric-code version). Two kinds never share a row:

* ``reported``: numbers printed in a paper, with the citation. Seeded from the
  paper's Tables 1-4 (``lmolt_hub.resources.PAPER_TABLES``). No samples, no CIs.
* ``verified``: results computed by the harness (``lmolt_hub.formats.results`` schema),
  accepted with their per-sample outputs.

Metric keys are the harness's (``lmolt_hub.metrics.METRIC_INFO``); the paper's
column names are mapped onto them through each metric's ``table``/``label``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.formats.direction import Direction
from lmolt_hub.hub.cards import AdapterMeta, MergeMeta, read_meta
from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.naming import FUSIONS, METHODS, PREFIX
from lmolt_hub.prompts import DIRECTIONS
from lmolt_hub.resources import PAPER_TABLES

KINDS = ("reported", "verified")
# The paper's table keys (mol2text, text2mol) -> our direction names.
PAPER_DIRECTIONS = {d.paper_table: d.value for d in Direction}
PAPER_CITATION = (
    "Gkoumas & Liakata, 'Feedback-aligned Mixed LLMs for Machine Language-Molecule Translation', "
    "arXiv:2405.13984 (2024), Tables 1-4"
)
PAPER_EVAL_SET = "L+M-24 3k unseen pairs (paper)"


@dataclass
class Record:
    """One leaderboard row (see module docstring)."""

    kind: str
    model: str
    revision: str | None
    eval_dataset: str
    eval_revision: str | None
    template_version: str | None
    metrics_version: str | None
    method: str | None = None
    fusion: str | None = None
    results: dict[str, dict[str, float | None]] = field(default_factory=dict)
    confidence_intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    hallucination: dict[str, dict[str, Any]] = field(default_factory=dict)
    citation: str | None = None
    samples: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    verification: dict[str, Any] = field(default_factory=dict)
    # direction -> metric -> reason, for metrics the run could not compute (the row is incomplete)
    not_computed: dict[str, dict[str, str]] = field(default_factory=dict)
    # generation settings the eval set does not pin (a row with other settings is another row)
    settings: dict[str, Any] = field(default_factory=dict)
    copy_of: str | None = None  # the model whose weights (content hash) this row's model has

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"record kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "reported" and (self.samples or not self.citation):
            raise ValueError(f"reported record {self.model!r} needs a citation and no samples")
        if self.kind == "verified" and self.citation:
            raise ValueError(f"verified record {self.model!r} must not carry a paper citation")
        for direction in self.results:
            if direction not in DIRECTIONS:
                raise ValueError(f"record {self.model!r}: unknown direction {direction!r}")

    def key(self) -> tuple[str | None, ...]:
        """The identity of a record; duplicates of a key are refused. A verified row's generation
        settings are part of it: someone else's run with crippled settings is not the owner's row."""
        key: tuple[str | None, ...] = (
            self.kind,
            self.model,
            self.revision,
            self.eval_dataset,
            self.eval_revision,
            self.template_version,
            self.metrics_version,
        )
        return key + (json.dumps(self.settings, sort_keys=True),) if self.settings else key

    @property
    def row_id(self) -> str:
        return hashlib.sha1(json.dumps(self.key()).encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.row_id, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        data = {k: v for k, v in data.items() if k != "id"}
        return cls(**data)


def parse_zoo_name(model_id: str) -> tuple[str | None, str | None]:
    """(method, fusion) from a zoo name ``<org>/lmolt-[<fusion>-]<method>[-suffix]``; (None, None) otherwise."""
    name = model_id.rsplit("/", 1)[-1].lower()
    parts = name.split("-")
    if not parts or parts[0] != PREFIX:
        return None, None
    rest = parts[1:]
    fusion = rest.pop(0) if rest and rest[0] in FUSIONS else None
    method = rest[0] if rest and rest[0] in METHODS else None
    return method, fusion


def card_method_fusion(card: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(method, fusion) from a model card's ``lmolt:`` block; (None, None) where it names none.

    Training cards say ``lmolt: {method: cpo}`` (optionally ``fusion: slerp``); merge cards say
    ``lmolt: {kind: merge, method: slerp}``, where the merge method is the fusion.
    """
    meta = read_meta(card)
    if not isinstance(meta, (AdapterMeta, MergeMeta)):
        return None, None
    name = str(meta.method or "").lower()
    if isinstance(meta, MergeMeta):
        return None, name if name in FUSIONS else None
    fusion = str(meta.fusion or "").lower()
    return (name if name in METHODS else None), (fusion if fusion in FUSIONS else None)


def _metric_info() -> dict[str, dict[str, Any]]:
    from lmolt_hub.metrics import METRIC_INFO

    return METRIC_INFO


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def paper_metric_key(direction: str, column: str) -> str:
    """Our metric key for a paper column (e.g. ("caption2smiles", "MACCS FTS") -> "maccs_fts")."""
    wanted = _norm(column)
    candidates = [
        key
        for key, info in _metric_info().items()
        if info.get("direction") in (direction, None, "both")
        and wanted in {_norm(str(info.get("table") or "")), _norm(str(info.get("label") or "")), _norm(key)}
    ]
    if len(candidates) != 1:
        raise KeyError(
            f"paper column {column!r} ({direction}) maps to {candidates or 'no metric'} in METRIC_INFO"
        )
    return candidates[0]


def _paper_display_name(row: dict[str, Any]) -> str:
    if row.get("method") in (None, "baseline"):
        return row["model"]
    combo = "+".join(p for p in (row.get("fusion"), row["method"]) if p)
    return f"{row['model']} {combo}"


def reported_records(path: Path | str = PAPER_TABLES) -> list[Record]:
    """The paper's Tables 1-4 as ``reported`` records, one per (model, fusion, method)."""
    tables = json.loads(Path(path).read_text())
    merged: dict[str, Record] = {}
    for paper_dir, direction in PAPER_DIRECTIONS.items():
        columns = tables[paper_dir]["metrics"]
        for row in tables[paper_dir]["rows"]:
            name = _paper_display_name(row)
            record = merged.get(name)
            if record is None:
                method = None if row.get("method") in (None, "baseline") else row["method"].lower()
                record = merged[name] = Record(
                    kind="reported",
                    model=name,
                    revision=None,
                    eval_dataset=PAPER_EVAL_SET,
                    eval_revision=None,
                    template_version=None,
                    metrics_version="paper",
                    method=method or "baseline",
                    fusion=row["fusion"].lower() if row.get("fusion") else None,
                    citation=PAPER_CITATION,
                    source=f"{Path(path).name}:{paper_dir}",
                )
            record.results[direction] = {paper_metric_key(direction, c): float(row[c]) for c in columns}
    return list(merged.values())


def _finite_results(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Copy of ``results`` with floats; null (undefined) stays null, NaN/inf/non-numbers are refused."""
    out: dict[str, dict[str, float | None]] = {}
    for direction, metrics in results.items():
        out[direction] = {}
        for name, value in metrics.items():
            if value is None:
                out[direction][name] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"results.{direction}.{name} is not a finite number: {value!r}")
            out[direction][name] = float(value)
    return out


def verified_record(
    results: dict[str, Any],
    source: str | None = None,
    verification: dict | None = None,
    card: dict[str, Any] | None = None,
) -> Record:
    """A ``verified`` record from a harness results object (``lmolt_hub.formats.results`` schema).

    Method and fusion come from the model card's ``lmolt:`` block (``card``, else the card the
    reviewer recorded in ``verification["card"]``), else from a zoo name.
    """
    model = results["model"]
    card_method, card_fusion = card_method_fusion(card or (verification or {}).get("card"))
    name_method, name_fusion = parse_zoo_name(model["id"])
    method, fusion = card_method or name_method, card_fusion or name_fusion
    return Record(
        kind="verified",
        model=model["id"],
        revision=pinned_revision(model),
        eval_dataset=results["eval_dataset"]["id"],
        # the commit the harness resolved; "revision" may be a branch name or null
        eval_revision=pinned_revision(results["eval_dataset"]),
        template_version=results.get("template_version"),
        metrics_version=results.get("metrics_version"),
        method=method,
        fusion=fusion,
        results=_finite_results(results.get("results", {})),
        confidence_intervals={
            d: {m: [None if x is None else float(x) for x in ci] for m, ci in metrics.items()}
            for d, metrics in (results.get("confidence_intervals") or {}).items()
        },
        hallucination=results.get("hallucination") or {},
        samples=dict(results.get("samples") or {}),
        source=source,
        verification=verification or {},
        not_computed={
            d: {m: str(reason) for m, reason in metrics.items()}
            for d, metrics in (results.get("not_computed") or {}).items()
        },
        settings=generation_settings(results),
        copy_of=(verification or {}).get("copy_of"),
    )


# What changes outputs but is not pinned by the eval set (sampling is refused by the spot check).
SETTING_KEYS = ("max_new_tokens", "num_beams", "repetition_penalty", "length_penalty", "no_repeat_ngram_size")


def generation_settings(results: dict[str, Any]) -> dict[str, Any]:
    """The generation settings that are part of a verified row's key (prompt format, dtype, and the
    generation parameters that change outputs)."""
    params = (results.get("generation") or {}).get("params") or {}
    model = results.get("model") or {}
    settings = {k: params[k] for k in SETTING_KEYS if k in params}
    for key, value in (("prompt_format", results.get("prompt_format")), ("dtype", model.get("dtype")),
                       ("load_in_4bit", model.get("load_in_4bit"))):  # fmt: skip
        if value is not None:
            settings[key] = value
    return settings


def paper_table_metrics(path: Path | str = PAPER_TABLES) -> dict[str, list[str]]:
    """direction -> our metric keys of the paper's table columns, in the paper's order."""
    tables = json.loads(Path(path).read_text())
    return {
        direction: [paper_metric_key(direction, c) for c in tables[paper_dir]["metrics"]]
        for paper_dir, direction in PAPER_DIRECTIONS.items()
    }


def higher_is_better() -> dict[str, bool]:
    return {key: bool(info["higher_is_better"]) for key, info in _metric_info().items()}
