"""Score one direction: corpus metrics, per-pair metrics, hallucination win rates, bootstrap CIs.

A thin layer over ``lmolt_hub.metrics`` (the metric code lives there) that
shapes its output into the results document's blocks. It also resolves the NLI
cross-encoder of the M->L hallucination metrics up front (:func:`resolve_nli`),
so that a run learns before generating whether it can compute them; where it
cannot, those metrics are marked "not computed: <reason>" and everything else
is scored.
"""

from __future__ import annotations

import inspect
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmolt_hub.formats.direction import Direction
from lmolt_hub.hub.ref import is_local, repo_info

if TYPE_CHECKING:
    from lmolt_hub.metrics.modules import RunModules


@dataclass
class DirectionScores:
    corpus: dict[str, float | None]
    per_sample: list[dict[str, Any]]
    hallucination: dict[str, Any]
    confidence_intervals: dict[str, list[float | None]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    # metric -> "not computed: <reason>" (e.g. the NLI metrics without the NLI model)
    not_computed: dict[str, str] = field(default_factory=dict)


log = logging.getLogger(__name__)
NLI_FIX_FLAG = "--nli-model"
# The M->L hallucination values that need the NLI model (dLen does not).
NLI_METRICS = ("win_rate", "mean_entailment")
_NLI_IGNORE = ["*.onnx", "onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot", "*.tflite", "*.gguf"]


@dataclass(frozen=True)
class NLIModel:
    """The NLI cross-encoder of a run: ``path`` to load it from, or ``error`` saying why it cannot."""

    id: str
    revision: str | None = None  # the commit it resolved to (None for a local folder)
    path: str | None = None
    error: str | None = None

    def options(self) -> dict[str, Any]:
        """Scoring options that load it without touching the network again."""
        return {"nli_model": self.path} if self.path else {}

    def recorded(self) -> dict[str, Any]:
        """What the results record: the id and the revision, never a local cache path."""
        return {"nli_model": self.id, **({"nli_revision": self.revision} if self.revision else {})}

    def reason(self) -> str:
        """Why the NLI metrics are missing, and the one flag that fixes it."""
        ref = f"{self.id}@{self.revision}" if self.revision else self.id
        return f"NLI model {ref} unavailable ({self.error}); pass {NLI_FIX_FLAG} <local folder or Hub id>"

    def hint(self) -> str:
        """The user's warning (said before generation starts)."""
        return (
            f"the M->L win rate and entailment will not be computed: {self.reason()} "
            "(a copy of that model) to compute them; everything else is scored"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _cached_snapshot(model: str, sha: str) -> str | None:
    """The cached snapshot of ``model`` at ``sha`` if it has a config and weights (no download, no
    progress bar: a run that already has the model says nothing about it)."""
    from huggingface_hub import snapshot_download

    try:
        path = Path(snapshot_download(model, revision=sha, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached
        return None
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))
    return str(path) if (path / "config.json").is_file() and has_weights else None


def resolve_nli(model: str, revision: str | None = None) -> NLIModel:
    """Find the NLI model before any generation: a local folder, the Hub (downloaded now, at
    ``revision``), or the local cache when the Hub cannot be reached. Never raises; one Hub
    request where the Hub is unreachable (no retries), so an offline run learns it at once."""
    if is_local(model):
        if not Path(model).expanduser().is_dir():
            return NLIModel(id=model, error=f"local NLI model {model} is not a directory")
        return NLIModel(id=model, path=str(Path(model).expanduser().resolve()))
    from huggingface_hub import snapshot_download

    try:
        info = repo_info(model, revision, what="NLI model")
        names = {s.rfilename for s in info.siblings or []}
        ignore = _NLI_IGNORE + (
            ["*.bin", "*.pt", "*.pth"] if any(n.endswith(".safetensors") for n in names) else []
        )
        path = _cached_snapshot(model, info.sha) or snapshot_download(
            model, revision=info.sha, ignore_patterns=ignore
        )
        return NLIModel(id=model, revision=info.sha, path=path)
    except Exception as online:  # noqa: BLE001 - any failure: try the cache, else report it
        try:
            path = snapshot_download(model, revision=revision, local_files_only=True)
        except Exception:  # noqa: BLE001
            return NLIModel(id=model, revision=revision, error=_first_line(online))
        return NLIModel(id=model, revision=revision or Path(path).name, path=path)


def _dlen_only(scores: Any) -> dict[str, Any]:
    """M->L hallucination values that need no NLI model (dLen in tokens), set on each sample row."""
    import numpy as np

    stats = scores.stats
    dlen = np.asarray(stats.n_tokens_pred, dtype=float) - np.asarray(stats.n_tokens_ref, dtype=float)
    for row, d in zip(scores.per_sample, dlen, strict=True):
        row["dlen"] = int(d)
    if not len(dlen):
        return {"mean_dlen": None, "mean_abs_dlen": None}
    return {"mean_dlen": float(dlen.mean()), "mean_abs_dlen": float(np.abs(dlen).mean())}


def metrics_version() -> str:
    from lmolt_hub.metrics import METRICS_VERSION

    return METRICS_VERSION


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _accepted(func, options: dict[str, Any]) -> dict[str, Any]:
    names = inspect.signature(func).parameters
    return {k: v for k, v in options.items() if k in names and v is not None}


def win_rate_interval(
    wins: list[bool], n_resamples: int, seed: int, confidence: float = 0.95
) -> list[float] | None:
    """Percentile bootstrap interval of the share of wins (rows resampled with replacement)."""
    if not wins or n_resamples <= 0:
        return None
    arr = np.asarray(wins, dtype=float)
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), (n_resamples, len(arr)))].mean(axis=1)
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    return [float(np.percentile(means, lo)), float(np.percentile(means, hi))]


def score_direction(
    direction: str,
    predictions: list[str],
    references: list[str],
    *,
    options: dict[str, Any] | None = None,
    hallucination: bool = True,
    bootstrap_resamples: int = 1000,
    seed: int = 0,
    nli: NLIModel | None = None,
    modules: RunModules | None = None,
) -> DirectionScores:
    """All metrics of ``direction`` for aligned predictions and references, computed through the
    metric modules ``modules`` (default: the bundled ones): the table module's ``score`` and the
    hallucination module's ``add_to``, the methods their ``compute()`` calls.

    ``options`` go to ``lmolt_hub.metrics.score`` (e.g. ``nli_model``, ``fcd_reference_stats``,
    ``fingerprint_convention``) and, where they apply, to the bootstrap. ``nli``: the resolved
    NLI model (:func:`resolve_nli`); if it has an error, M->L scores everything but the NLI
    metrics, which are listed in ``not_computed``.
    """
    from lmolt_hub.metrics import score
    from lmolt_hub.metrics.bootstrap import confidence_intervals
    from lmolt_hub.metrics.hf_evaluate import NLI_OPTIONS
    from lmolt_hub.metrics.modules import run_modules

    opts = dict(options or {})
    nli_missing = bool(
        hallucination and direction == Direction.SMILES2CAPTION and nli is not None and nli.error
    )
    if nli is not None and nli.path:
        opts = {**{k: v for k, v in opts.items() if k not in ("nli_model", "nli_revision")}, **nli.options()}
    unknown = (
        set(opts)
        - set(inspect.signature(score).parameters)
        - set(inspect.signature(confidence_intervals).parameters)
    )
    if unknown:
        raise ValueError(f"unknown metric option(s): {', '.join(sorted(unknown))}")
    table_opts = {k: v for k, v in _accepted(score, opts).items() if k != "hallucination"}
    nli_opts = {k: table_opts.pop(k) for k in NLI_OPTIONS if k in table_opts}
    modules = modules or run_modules()
    scores = modules.table(direction).score(predictions, references, **table_opts)
    if hallucination and not nli_missing:
        modules.hallucination().add_to(scores, predictions, references, **nli_opts)
    not_computed: dict[str, str] = {}
    if nli_missing:
        scores.hallucination = {**_dlen_only(scores), **dict.fromkeys(NLI_METRICS)}
        not_computed = dict.fromkeys(NLI_METRICS, f"not computed: {nli.reason()}")
    corpus = {name: _finite(v) for name, v in scores.corpus.items()}
    halluc = {k: _finite(v) for k, v in (scores.hallucination or {}).items()}
    cis: dict[str, list[float | None]] = {}
    if bootstrap_resamples > 0 and predictions:
        ci_opts = _accepted(confidence_intervals, {k: v for k, v in opts.items() if k != "scores"})
        raw = confidence_intervals(
            direction,
            predictions,
            references,
            n_resamples=bootstrap_resamples,
            seed=seed,
            scores=scores,
            **ci_opts,
        )
        cis = {name: [_finite(lo), _finite(hi)] for name, (lo, hi) in raw.items()}
        wins = [bool(r["win"]) for r in scores.per_sample if "win" in r]
        if hallucination and wins and len(wins) == len(scores.per_sample):
            interval = win_rate_interval(wins, bootstrap_resamples, seed)
            if interval:
                cis["win_rate"] = interval
    used = {k: v for k, v in {**opts, **scores.options}.items() if isinstance(v, (str, int, float, bool))}
    if nli is not None and direction == Direction.SMILES2CAPTION and hallucination:
        used = {k: v for k, v in used.items() if k not in ("nli_model", "nli_revision")} | nli.recorded()
    return DirectionScores(corpus, list(scores.per_sample), halluc, cis, used, not_computed)


def eval_set_metric_config(eval_id: str | None, revision: str | None = None, local: bool = False):
    """The eval set's pinned scoring options (``metric_config.MetricConfig``): read from the Hub
    repo at ``revision``; the paper's defaults for a local file or no eval set."""
    from lmolt_hub.metrics.metric_config import default_metric_config, load_metric_config

    if local or not eval_id:
        return default_metric_config(eval_id, revision)
    return load_metric_config(eval_id, revision)


def predictions_metric_config(eval_id: str | None = None, revision: str | None = None):
    """Scoring options for a predictions file: those of eval set ``eval_id`` if given; else those of
    the default ``<org>/lmolt-eval-3k`` when it can be read, else the paper's defaults."""
    from lmolt_hub.metrics.metric_config import default_metric_config
    from lmolt_hub.naming import eval_dataset

    if eval_id:
        return eval_set_metric_config(eval_id, revision, local=Path(eval_id).expanduser().is_file())
    try:
        return eval_set_metric_config(eval_dataset())
    except Exception as exc:  # noqa: BLE001 - offline or no such eval set: one request, no retries
        log.info("scoring options: the paper's defaults (%s)", _first_line(exc))
        return default_metric_config()
