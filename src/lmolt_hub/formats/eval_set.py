"""The evaluation-set contract (its columns, the FCD reference statistics and the metric config) and
its loader: a Hub dataset (``<org>/lmolt-eval-3k``, split ``test``, columns ``id, molecule, caption``) or a
local file: JSONL/JSON/CSV/parquet with those columns, or a ChEBI-20-style TSV (``CID, SMILES,
description``), read with QUOTE_NONE.

The data stage writes an eval-set repo (``lmolt-hub data build``); the harness and the leaderboard
reviewer read it. Layout of the repo::

    data/test-*.parquet              EVAL_COLUMNS
    fcd_stats/<stats file>.npz       ChemNet statistics of the references (FCD_STATS_DIR)
    metric_config.json               how results on this set are scored (METRIC_CONFIG_FILE)
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.hub.ref import HubRef, is_local, repo_info
from lmolt_hub.naming import eval_dataset
from lmolt_hub.provenance import file_sha256

log = logging.getLogger(__name__)

EVAL_COLUMNS = ("id", "molecule", "caption", "inchikey")  # what the data stage writes
REQUIRED_COLUMNS = ("id", "molecule", "caption")  # what the harness needs of any eval set
# Accepted spellings of the required columns in other files (ChEBI-20 / MolT5 files, L+M-24).
COLUMN_ALIASES = {
    "id": ("id", "CID", "cid"),
    "molecule": ("molecule", "SMILES", "smiles"),
    "caption": ("caption", "description"),
}
FCD_STATS_DIR = "fcd_stats"
METRIC_CONFIG_FILE = "metric_config.json"
FCD_CONVENTION = "fcd_1.1"

EVAL_FILE_SUFFIXES = {".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet"}


def fcd_stats_path(filename: str) -> str:
    """The repo path of a statistics file (``metrics.fcd.stats_filename``)."""
    return f"{FCD_STATS_DIR}/{filename}"


def is_fcd_stats_path(name: str) -> bool:
    """Whether a repo path is a statistics file (not the optional activations beside it)."""
    return (
        name.startswith(FCD_STATS_DIR + "/")
        and name.endswith(".npz")
        and not name.endswith(".activations.npz")
    )


class EvalSetError(ValueError):
    """The evaluation set is missing, unreadable or lacks required columns."""


@dataclass(kw_only=True)
class EvalSet(HubRef):
    """The evaluation set, pinned (a local file's ``sha`` is its content sha256), with its rows."""

    repo_type: str = "dataset"
    split: str | None
    rows: list[dict[str, str]]
    limit: int | None = None
    fcd_stats_files: list[str] = field(default_factory=list)  # paths in the Hub repo under fcd_stats/

    @property
    def local(self) -> bool:
        return not self.is_hub

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "revision": self.revision,
            "sha": self.sha,
            "split": self.split,
            "n_samples": len(self.rows),
            "limit": self.limit,
        }

    def fcd_stats(self, references: list[str], convention: str = FCD_CONVENTION):
        """Precomputed ChemNet statistics of ``references`` from the repo's ``fcd_stats/``, or None."""
        if self.local or not self.fcd_stats_files:
            return None
        try:
            from lmolt_hub.metrics.fcd import load_stats, stats_filename
        except ImportError:
            return None
        name = fcd_stats_path(stats_filename(references, convention))
        if name not in self.fcd_stats_files:
            return None  # e.g. with --limit the references differ from the full set's
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(self.id, name, repo_type="dataset", revision=self.pinned)
        log.info("FCD reference statistics from %s/%s", self.id, name)
        return load_stats(path)


def _normalise(rows: list[dict[str, Any]], where: str) -> list[dict[str, str]]:
    if not rows:
        raise EvalSetError(f"{where}: the evaluation set is empty")
    cols = set(rows[0])
    mapping = {}
    for want, aliases in COLUMN_ALIASES.items():
        hit = next((a for a in aliases if a in cols), None)
        if hit is None:
            raise EvalSetError(
                f"{where}: missing column {want!r} (accepted: {', '.join(aliases)}); "
                f"found {', '.join(sorted(cols)) or 'no columns'}"
            )
        mapping[want] = hit
    out = []
    for n, row in enumerate(rows):
        clean = {k: row.get(src) for k, src in mapping.items()}
        bad = [k for k, v in clean.items() if v is None or (k != "id" and not str(v).strip())]
        if bad:
            raise EvalSetError(f"{where}: row {n} has an empty {', '.join(bad)}")
        out.append({k: str(v) for k, v in clean.items()})
    return out


def _read_local(path: Path) -> list[dict[str, Any]]:
    # BOM, bare CR line endings, long fields and deep JSON: read or refused in one line (formats.predictions)
    from lmolt_hub.formats.predictions import csv_field_limit, decode_lines, json_line, tsv_reader

    suffix = path.suffix.lower()
    if suffix in {".tsv", ".txt"}:
        lines = decode_lines(path, EvalSetError)
        with tsv_reader(lines, dict_reader=True, delimiter="\t", quoting=csv.QUOTE_NONE) as rows:
            return list(rows)
    if suffix == ".csv":
        try:
            with open(path, encoding="utf-8-sig", newline="") as f, csv_field_limit(path.stat().st_size + 1):
                return list(csv.DictReader(f, delimiter=",", quoting=csv.QUOTE_MINIMAL))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise EvalSetError(f"{path}: cannot read as UTF-8 CSV ({exc})") from None
    if suffix in {".jsonl", ".json"}:
        lines = decode_lines(path, EvalSetError)
        if suffix == ".jsonl":
            rows = [
                json_line(ln, f"{path}: row {n}", EvalSetError) for n, ln in enumerate(lines, 1) if ln.strip()
            ]
        else:
            data = json_line("\n".join(lines), str(path), EvalSetError)
            rows = data.get("rows", []) if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise EvalSetError(f"{path}: expected one JSON object per row")
        return rows
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise EvalSetError(
        f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv, .tsv/.txt, .parquet)"
    )


def _load_offline(repo: str, revision: str | None, split: str) -> EvalSet:
    """HF_HUB_OFFLINE=1: the dataset from the local datasets cache (no sha, no precomputed FCD stats)."""
    import datasets

    try:
        ds = datasets.load_dataset(repo, revision=revision, split=split)
    except Exception as exc:  # noqa: BLE001 (datasets raises several types for "not cached")
        raise EvalSetError(
            f"evaluation dataset {repo}: HF_HUB_OFFLINE is set and it is not cached ({exc})"
        ) from exc
    rows = _normalise(ds.to_list(), f"{repo}@{revision or 'main'} split {split}")
    return EvalSet(id=repo, revision=revision, sha=None, split=split, rows=rows)


def _load_hub(repo: str, revision: str | None, split: str) -> EvalSet:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return _load_offline(repo, revision, split)
    hint = (
        "build and push it with `lmolt-hub data build`, or pass --eval-dataset <org>/<name> or a local file"
    )
    info = repo_info(
        repo, revision, repo_type="dataset", what="evaluation dataset", hint=hint, error=EvalSetError
    )
    names = [s.rfilename for s in (info.siblings or [])]
    shards = _parquet_shards(repo, info.sha, names, split)
    if shards is not None:  # the layout lmolt-hub publishes: read the shards, without `datasets` (~2 s)
        import pyarrow.parquet as pq

        table_rows = [r for path in shards for r in pq.read_table(path).to_pylist()]
    else:
        import datasets

        try:
            table_rows = datasets.load_dataset(repo, revision=info.sha, split=split).to_list()
        except ValueError as exc:  # unknown split
            raise EvalSetError(f"evaluation dataset {repo}: {exc}") from exc
    files = [n for n in names if n.startswith(FCD_STATS_DIR + "/")]
    rows = _normalise(table_rows, f"{repo}@{revision or 'main'} split {split}")
    return EvalSet(id=repo, revision=revision, sha=info.sha, split=split, rows=rows, fcd_stats_files=files)


def _parquet_shards(repo: str, sha: str, names: list[str], split: str) -> list[str] | None:
    """Local paths of ``split``'s shards when the repo is in ``push_to_hub``'s layout
    (``data/<split>-00000-of-00001.parquet``) and its card maps the split to nothing else; else None
    (``datasets`` then reads whatever layout it is)."""
    import re

    from huggingface_hub import hf_hub_download

    shard = re.compile(rf"data/{re.escape(split)}-\d{{5}}-of-\d{{5}}\.parquet")
    found = sorted(n for n in names if shard.fullmatch(n))
    if not found or any(n.startswith(f"data/{split}-") and n not in found for n in names):
        return None  # other files the split's pattern would also read
    if "README.md" in names:
        card = Path(hf_hub_download(repo, "README.md", repo_type="dataset", revision=sha)).read_text("utf-8")
        if not _card_maps_split_to_data_dir(card, split):
            return None
    return [hf_hub_download(repo, n, repo_type="dataset", revision=sha) for n in found]


def _card_maps_split_to_data_dir(card: str, split: str) -> bool:
    """Whether the card's ``configs`` (if any) read ``split`` from ``data/<split>-*`` by default."""
    import yaml

    if not card.startswith("---"):
        return True
    try:
        meta = yaml.safe_load(card.split("---", 2)[1]) or {}
    except (yaml.YAMLError, IndexError):
        return False
    configs = meta.get("configs") if isinstance(meta, dict) else None
    if not configs:
        return True
    default = [
        c for c in configs if isinstance(c, dict) and (c.get("default") or c.get("config_name") == "default")
    ]
    if len(default) != 1:
        return False
    files = default[0].get("data_files")
    entry = next((f for f in files or [] if isinstance(f, dict) and f.get("split") == split), None)
    path = entry.get("path") if entry else None
    return path in (f"data/{split}-*", [f"data/{split}-*"])


def load_eval_set(
    spec: str | None = None, revision: str | None = None, split: str = "test", limit: int | None = None
) -> EvalSet:
    """The evaluation set from a local file or a Hub dataset (default ``<org>/lmolt-eval-3k``)."""
    spec = spec or eval_dataset()
    path = Path(spec).expanduser()
    if path.is_file():
        rows = _normalise(_read_local(path), str(path))
        es = EvalSet(id=str(path.resolve()), sha=file_sha256(path), local_path=path, split=None, rows=rows)
    elif is_local(spec) or path.suffix in EVAL_FILE_SUFFIXES:
        raise EvalSetError(f"evaluation file {path} does not exist or is not a file")
    else:
        es = _load_hub(spec, revision, split)
    if limit is not None:
        if limit < 1:
            raise EvalSetError(f"--limit must be >= 1, got {limit}")
        es.rows, es.limit = es.rows[:limit], limit
    return es
