"""The eval set's pinned metric configuration: how every result on it is scored.

One place decides the scoring options (NLI model and revision, FCD and fingerprint conventions,
FCD reference statistics, hallucination on, bootstrap settings, the split). The evaluation
harness uses it for its defaults and the leaderboard reviewer uses it for everything, so a
submission can never choose a path, a model id, a split or a convention.

Stable entry point (other stages call it by this name)::

    cfg = load_metric_config("<org>/lmolt-eval-3k", "<sha or branch>")   # -> MetricConfig
    cfg.score_options("smiles2caption")   # options for metrics.scoring.score_direction
    cfg.fcd_reference_stats()             # FCDStats from the eval-set repo at the pinned sha, or None

Where it comes from, first found wins, always read at the resolved commit sha:

1. ``metric_config.json`` in the eval-set repo (written by ``lmolt-hub data build`` from the eval
   recipe's ``metrics:`` block and ``fcd_convention``);
2. the eval set's card (``lmolt.recipe.metrics``, ``lmolt.recipe.fcd_convention``,
   ``lmolt.sources.fcd_stats.file``);
3. the paper's defaults (:data:`DEFAULT_NLI_MODEL`, ``fcd_1.1``, ``lpm24``, 1,000 resamples, seed 0).

Everything is validated strictly; a bad value is a :class:`MetricConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmolt_hub.formats.direction import Direction
from lmolt_hub.formats.eval_set import METRIC_CONFIG_FILE, is_fcd_stats_path
from lmolt_hub.hub.cards import EvalSetMeta
from lmolt_hub.hub.ref import repo_info

METRIC_CONFIG_FORMAT = 1
DEFAULT_NLI_MODEL = "cross-encoder/nli-deberta-v3-base"
FCD_CONVENTIONS = ("fcd_1.1", "fcd_1.2")
FINGERPRINT_CONVENTIONS = ("lpm24", "molt5")
MAX_CONFIG_BYTES = 64 * 1024
MAX_BOOTSTRAP_RESAMPLES = 100_000


class MetricConfigError(ValueError):
    """The eval set's metric configuration is missing a value or has a bad one (one line)."""


@dataclass(frozen=True)
class MetricConfig:
    """Scoring options of one eval set at one commit (see the module docstring)."""

    eval_dataset: str | None = None
    eval_revision: str | None = None  # the commit sha everything below was read at
    split: str = "test"
    nli_model: str = DEFAULT_NLI_MODEL
    nli_revision: str | None = None
    hallucination: bool = True
    fcd: bool = True
    fcd_convention: str = "fcd_1.1"
    fcd_stats_file: str | None = None  # path inside the eval-set repo
    fingerprint_convention: str = "lpm24"
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 0
    confidence: float = 0.95
    # metric module name -> {"id": "<org>/<name>", "revision": "<commit sha>"}: the Spaces that score
    # results on this set (None: the modules bundled with lmolt-hub)
    modules: dict[str, dict[str, str]] | None = None
    source: str = "default"  # "metric_config.json", "card" or "default"

    def score_options(self, direction: str) -> dict[str, Any]:
        """Options for ``score_direction(..., options=)`` (FCD statistics are added by the caller)."""
        if direction == Direction.SMILES2CAPTION:
            opts: dict[str, Any] = {"nli_model": self.nli_model}
            if self.nli_revision:
                opts["nli_revision"] = self.nli_revision
            return opts
        return {
            "fingerprint_convention": self.fingerprint_convention,
            "fcd_convention": self.fcd_convention,
            "fcd": self.fcd,
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def run_modules(self, overrides: dict[str, str] | None = None):
        """The metric modules that score on this set (``metrics.modules.RunModules``)."""
        from lmolt_hub.metrics.modules import run_modules

        return run_modules(self.modules, overrides)

    def fcd_reference_stats(self, api: Any = None):
        """The eval set's precomputed ChemNet statistics at the pinned sha (FCDStats), or None."""
        if not (self.fcd and self.fcd_stats_file and self.eval_dataset and self.eval_revision):
            return None
        from huggingface_hub import HfApi

        from lmolt_hub.metrics.fcd import load_stats

        path = (api or HfApi()).hf_hub_download(
            self.eval_dataset, self.fcd_stats_file, repo_type="dataset", revision=self.eval_revision
        )
        stats = load_stats(path)
        if stats.convention != self.fcd_convention:
            raise MetricConfigError(
                f"{self.eval_dataset}: {self.fcd_stats_file} is {stats.convention}, the config says "
                f"{self.fcd_convention}"
            )
        return stats


_FIELDS = {f.name: f for f in dataclasses.fields(MetricConfig)}
_SETTABLE = set(_FIELDS) - {"eval_dataset", "eval_revision", "source"}


def _check_value(key: str, value: Any, where: str) -> Any:
    bad = f"{where}: {key} = {value!r}"
    if key in ("hallucination", "fcd"):
        if not isinstance(value, bool):
            raise MetricConfigError(f"{bad} is not true/false")
    elif key in ("bootstrap_resamples", "bootstrap_seed"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise MetricConfigError(f"{bad} is not a non-negative integer")
        if key == "bootstrap_resamples" and value > MAX_BOOTSTRAP_RESAMPLES:
            raise MetricConfigError(f"{bad} is over {MAX_BOOTSTRAP_RESAMPLES:,}")
    elif key == "confidence":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
            raise MetricConfigError(f"{bad} is not a number between 0 and 1")
        value = float(value)
    elif key == "fcd_convention" and value not in FCD_CONVENTIONS:
        raise MetricConfigError(f"{bad}: use one of {FCD_CONVENTIONS}")
    elif key == "fingerprint_convention" and value not in FINGERPRINT_CONVENTIONS:
        raise MetricConfigError(f"{bad}: use one of {FINGERPRINT_CONVENTIONS}")
    elif key in ("nli_model", "split") and (not isinstance(value, str) or not value.strip()):
        raise MetricConfigError(f"{bad} is not a non-empty string")
    elif key == "modules" and value is not None:
        value = _check_modules(value, bad)
    elif key in ("nli_revision", "fcd_stats_file") and value is not None:
        if not isinstance(value, str) or not value or ".." in value.split("/") or value.startswith("/"):
            raise MetricConfigError(f"{bad} is not a revision / a path inside the repo")
    return value


def _check_modules(value: Any, bad: str) -> dict[str, dict[str, str]]:
    """name -> {id: "<org>/<name>", revision: "<40-hex sha>"}: Hub Spaces at commits, never a path."""
    from lmolt_hub.hub.ref import HUB_ID
    from lmolt_hub.metrics.hf_evaluate import MODULE_NAMES

    if not isinstance(value, dict):
        raise MetricConfigError(f"{bad} is not a mapping of module name -> {{id, revision}}")
    out = {}
    for name, pin in value.items():
        if name not in MODULE_NAMES:
            raise MetricConfigError(f"{bad}: unknown module {name!r}; the modules are {list(MODULE_NAMES)}")
        ok = isinstance(pin, dict) and set(pin) == {"id", "revision"}
        ok = (
            ok
            and isinstance(pin["id"], str)
            and bool(HUB_ID.match(pin["id"]))
            and pin["id"].endswith("/" + name)
        )
        ok = ok and isinstance(pin["revision"], str) and len(pin["revision"]) == 40
        if not ok or any(c not in "0123456789abcdef" for c in pin["revision"]):
            raise MetricConfigError(
                f"{bad}: {name} must be {{id: <org>/{name}, revision: <40-hex commit sha>}}"
            )
        out[name] = {"id": pin["id"], "revision": pin["revision"]}
    return out


def parse_metric_config(obj: Any, where: str = METRIC_CONFIG_FILE, **fixed: Any) -> MetricConfig:
    """A validated MetricConfig from a mapping (unknown keys refused); ``fixed`` sets provenance."""
    if not isinstance(obj, dict):
        raise MetricConfigError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    obj = {k: v for k, v in obj.items() if k != "format"}
    unknown = sorted(set(obj) - _SETTABLE)
    if unknown:
        raise MetricConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(_SETTABLE)}")
    values = {k: _check_value(k, v, where) for k, v in obj.items()}
    return MetricConfig(**values, **fixed)


def config_document(
    *,
    nli_model: str = DEFAULT_NLI_MODEL,
    nli_revision: str | None = None,
    fcd_convention: str = "fcd_1.1",
    fcd_stats_file: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The ``metric_config.json`` the data stage writes (validated here, so a bad recipe fails early)."""
    doc = {
        "nli_model": nli_model,
        "nli_revision": nli_revision,
        "fcd_convention": fcd_convention,
        "fcd": more.pop("fcd", True),
        "fcd_stats_file": fcd_stats_file,
        **more,
    }
    parse_metric_config(doc, "eval recipe metrics")
    return {"format": METRIC_CONFIG_FORMAT, **doc}


def _from_card(card: dict[str, Any]) -> dict[str, Any]:
    meta = EvalSetMeta.from_card(card)
    return meta.metric_options() if meta is not None else {}


def _read_repo_file(api: Any, repo_id: str, name: str, sha: str) -> bytes:
    path = Path(api.hf_hub_download(repo_id, name, repo_type="dataset", revision=sha))
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise MetricConfigError(f"{repo_id}@{sha[:12]}: {name} is over {MAX_CONFIG_BYTES:,} bytes")
    return path.read_bytes()


def load_metric_config(repo_id: str, revision: str | None = None, api: Any = None) -> MetricConfig:
    """The scoring options of eval set ``repo_id`` at ``revision`` (resolved to its commit sha).

    Raises MetricConfigError when the repo or revision does not exist or its configuration is bad.
    """
    from huggingface_hub import HfApi

    api = api or HfApi()
    info = repo_info(
        repo_id, revision, repo_type="dataset", what="eval set", error=MetricConfigError, api=api
    )
    sha = info.sha
    names = {s.rfilename for s in info.siblings or []}
    fixed = {"eval_dataset": repo_id, "eval_revision": sha}
    if METRIC_CONFIG_FILE in names:
        where = f"{repo_id}@{sha[:12]}/{METRIC_CONFIG_FILE}"
        try:
            obj = json.loads(_read_repo_file(api, repo_id, METRIC_CONFIG_FILE, sha))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MetricConfigError(f"{where} is not valid JSON ({exc})") from None
        cfg = parse_metric_config(obj, where, source=METRIC_CONFIG_FILE, **fixed)
    else:
        card = getattr(info, "card_data", None) or getattr(info, "cardData", None)
        card = card.to_dict() if hasattr(card, "to_dict") else (card or {})
        values = _from_card(card)
        source = "card" if values else "default"
        if "fcd_stats_file" not in values:  # the layout the data stage uses
            stats = sorted(n for n in names if is_fcd_stats_path(n))
            if len(stats) == 1:
                values["fcd_stats_file"] = stats[0]
        cfg = parse_metric_config(values, f"{repo_id}@{sha[:12]} card", source=source, **fixed)
    if cfg.fcd_stats_file and cfg.fcd_stats_file not in names:
        raise MetricConfigError(f"{repo_id}@{sha[:12]}: {cfg.fcd_stats_file} is named but not in the repo")
    return cfg


def default_metric_config(eval_dataset: str | None = None, eval_revision: str | None = None) -> MetricConfig:
    """The paper's options, for a local eval-set file (no repo to read a configuration from)."""
    return MetricConfig(eval_dataset=eval_dataset, eval_revision=eval_revision)


__all__ = [
    "DEFAULT_NLI_MODEL",
    "METRIC_CONFIG_FILE",
    "MetricConfig",
    "MetricConfigError",
    "config_document",
    "default_metric_config",
    "load_metric_config",
    "parse_metric_config",
]
