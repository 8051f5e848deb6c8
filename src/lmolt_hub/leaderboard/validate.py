"""Validation of a leaderboard submission (a results file + its samples, or an evaluation request).

Trust model: the submission is data, never configuration. The reviewer reads the scoring options
(NLI model and revision, FCD and fingerprint conventions, FCD reference statistics, hallucination,
bootstrap settings, the split) from the eval set's pinned configuration
(``lmolt_hub.metrics.metric_config.load_metric_config``) and recomputes every reported number
from the submitted outputs. ``metric_options`` in a results file is ignored.

Every check raises :class:`SubmissionError` with a reason a submitter can act on; the reviewer
posts that reason as the PR comment. The checks, in order:

1. size (before anything is read), strict JSON (no NaN/Infinity), nothing "not computed", the
   results schema (``lmolt_hub.formats.results.validate_results``);
2. versions: the template and metric-code versions are the installed ones;
3. the model: exists on the Hub at that revision (resolved to a commit sha), its config files are
   JSON, it loads without remote code and without pickle weights, its card declares a licence;
   an adapter's base model exists;
4. the eval set is ours (``<org>/lmolt-eval-3k``) at an existing revision, the whole pinned split;
5. samples: one file per direction, each matching the eval set row for row by id and by a hash of
   (source, reference), in any order, none missing or extra;
6. "re-scored": points, confidence intervals (the eval set's bootstrap settings) and hallucination
   values recomputed from the submitted outputs equal the submitted ones;
7. "reproduced" (spot check, on by default in the reviewer): ``n`` random pairs per direction are
   regenerated greedily with the submitted model at its sha and must equal the submitted outputs.

Duplicates and the per-author rate limit depend on the other submissions and are checked by the
reviewer (``review.review``) with :func:`check_duplicate` and :func:`check_rate_limit`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmolt_hub.formats.direction import DIRECTION_NAMES, Direction
from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.leaderboard.layout import REQUEST_FILE, RESULTS_FILE
from lmolt_hub.leaderboard.records import Record, verified_record
from lmolt_hub.naming import EVAL_DATASET
from lmolt_hub.prompts import source_target

if TYPE_CHECKING:
    from lmolt_hub.metrics.metric_config import MetricConfig

MAX_SUBMISSION_BYTES = 200 * 1024 * 1024  # a full 3k-pair submission is a few MB
# Metric values are floats computed by the same code; allow only rounding noise.
REL_TOL = 1e-6
ABS_TOL = 1e-9
DEFAULT_SPOT_CHECK = 3  # pairs regenerated per direction by default
RESCORED, REPRODUCED = "re-scored", "reproduced"  # the two verification statuses
# Spot-check regeneration: what a submission may ask the reviewer's machine to do.
MAX_SPOT_NEW_TOKENS = 1024
MAX_SPOT_BEAMS = 4
SPOT_DTYPES = ("default", "auto", "float32", "bfloat16", "float16")
SAFE_WEIGHTS = (".safetensors",)
PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class SubmissionError(ValueError):
    """A submission is refused; ``str(err)`` is the reason shown to the submitter."""


class ReviewerSetupError(RuntimeError):
    """The reviewer itself cannot work (e.g. the eval set's NLI model is unavailable): not the
    submitter's fault, so the PR stays pending with this reason."""


@dataclass
class Verdict:
    record: Record
    results: dict[str, Any]
    checks: list[str] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)


def pair_hash(source: str, reference: str) -> str:
    """Hash of one evaluation pair; samples are matched to the eval set by id and this hash."""
    return hashlib.sha256(json.dumps([source, reference], ensure_ascii=False).encode()).hexdigest()


def _reject_constant(name: str) -> Any:
    raise SubmissionError(f"non-finite number {name} in JSON: NaN and Infinity are not allowed")


def strict_json(text: str | bytes, what: str) -> Any:
    """Parse JSON refusing NaN/Infinity (Python's json accepts them by default)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except SubmissionError as exc:
        raise SubmissionError(f"{what}: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise SubmissionError(f"{what}: JSON nested too deeply to read") from None


def check_sizes(paths: Sequence[Path], max_bytes: int = MAX_SUBMISSION_BYTES) -> None:
    total = sum(p.stat().st_size for p in paths)
    if total > max_bytes:
        raise SubmissionError(f"submission is {total:,} bytes, over the {max_bytes:,}-byte limit")


def check_sizes_remote(sizes: dict[str, int], max_bytes: int = MAX_SUBMISSION_BYTES) -> None:
    """Size check from the repo tree, so an oversize upload is refused before it is downloaded."""
    total = sum(sizes.values())
    if total > max_bytes:
        biggest = max(sizes, key=sizes.__getitem__)
        raise SubmissionError(
            f"submission is {total:,} bytes, over the {max_bytes:,}-byte limit (largest file: {biggest})"
        )


def _finite(obj: Any, path: str = "") -> None:
    """Numbers must be finite and counts non-negative (the schema checks types; this, values)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _finite(v, f"{path}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise SubmissionError(f"{path} is not a finite number")


def _not_computed(obj: Any, path: str = "") -> list[str]:
    """Paths of values the harness marked "not computed: <reason>" (and the reasons)."""
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _not_computed(v, f"{path}.{k}" if path else str(k))]
    if isinstance(obj, list):
        return [x for i, v in enumerate(obj) for x in _not_computed(v, f"{path}[{i}]")]
    if isinstance(obj, str) and obj.lower().startswith("not computed"):
        return [f"{path} ({obj})"]
    return []


def check_complete(results: Any) -> None:
    """A result with metrics "not computed" (e.g. no NLI model at hand) is incomplete: refused."""
    if not isinstance(results, dict):
        return
    missing = _not_computed({k: v for k, v in results.items() if k not in ("command", "warnings")})
    if missing:
        raise SubmissionError(
            f"incomplete results: {'; '.join(missing[:3])}; re-run the harness where the eval set's "
            "NLI model can be loaded (it scores every metric), then submit"
        )


def load_results(path: Path) -> dict[str, Any]:
    from lmolt_hub.formats.results import ResultsValidationError, validate_results

    obj = strict_json(path.read_bytes(), RESULTS_FILE)
    check_complete(obj)
    try:
        validate_results(obj)
    except ResultsValidationError as exc:
        raise SubmissionError(f"{RESULTS_FILE} does not match the results schema: {exc}") from None
    _finite(obj)
    if obj["kind"] != "model" or not obj["model"].get("id"):
        raise SubmissionError("results must come from a Hub model (kind 'model' with a model id)")
    if not pinned_revision(obj["model"]):
        raise SubmissionError("results must name the model revision (model.sha)")
    return obj


def check_versions(results: dict[str, Any]) -> None:
    from lmolt_hub.metrics import METRICS_VERSION
    from lmolt_hub.prompts import TEMPLATE_VERSION

    if results["template_version"] != TEMPLATE_VERSION:
        raise SubmissionError(
            f"template_version {results['template_version']!r} is not this leaderboard's {TEMPLATE_VERSION!r}"
        )
    if results["metrics_version"] != METRICS_VERSION:
        raise SubmissionError(
            f"metrics_version {results['metrics_version']!r} differs from the installed {METRICS_VERSION!r}; "
            "re-score with the current lmolt-hub"
        )


# --------------------------------------------------------------------------- the model on the Hub


def _card_license(api: Any, repo_id: str, revision: str, info: Any) -> str | None:
    card = getattr(info, "card_data", None) or getattr(info, "cardData", None)
    license_ = card.get("license") if card is not None and hasattr(card, "get") else None
    if license_:
        return str(license_)
    try:  # fall back to the README front matter
        from lmolt_hub.hub.cards import parse_card

        readme = api.hf_hub_download(repo_id, "README.md", revision=revision)
        meta = parse_card(Path(readme).read_text(encoding="utf-8"))[0]
        return meta.get("license")
    except Exception:  # noqa: BLE001 - no card means no licence
        return None


def _check_loads(model_id: str, revision: str) -> None:
    """transformers must know the architecture without remote code (the config is enough to tell)."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(model_id, revision=revision, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - whatever a hostile config.json makes transformers raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(f"model {model_id} does not load without remote code: {first}") from None


def _repo_json(api: Any, model_id: str, name: str, revision: str, max_bytes: int = 1024 * 1024) -> dict:
    """A small JSON file of the model repo, strictly parsed; any problem is the submitter's."""
    path = Path(api.hf_hub_download(model_id, name, revision=revision))
    if path.stat().st_size > max_bytes:
        raise SubmissionError(f"model {model_id}: {name} is over {max_bytes:,} bytes")
    obj = strict_json(path.read_bytes(), f"model {model_id}: {name}")
    if not isinstance(obj, dict):
        raise SubmissionError(f"model {model_id}: {name} is not a JSON object")
    return obj


def _check_weights(model_id: str, names: list[str]) -> None:
    """The reviewer loads only safetensors: a model with pickle weights alone is refused up front."""
    weights = [n for n in names if n.endswith(SAFE_WEIGHTS + PICKLE_WEIGHTS) and "training_args" not in n]
    if weights and not any(n.endswith(SAFE_WEIGHTS) for n in weights):
        raise SubmissionError(
            f"model {model_id} has only pickle weights ({', '.join(sorted(weights)[:3])}); the reviewer "
            "never loads pickles (they can run code): push safetensors (save_pretrained does by default)"
        )


def check_model(api: Any, model_id: str, revision: str) -> dict[str, Any]:
    """Existence at ``revision`` (-> its commit sha), no remote code, no pickle-only weights, a
    licence, and an adapter's base. Returns facts (``sha``, ``license``, ``base_model``...)."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        info = api.model_info(model_id, revision=revision)
    except (HfHubHTTPError, HFValidationError) as exc:
        raise SubmissionError(
            f"model {model_id} not found at revision {revision} on the Hub ({_first_line(exc)})"
        ) from None
    names = [s.rfilename for s in info.siblings or []]
    if any(n.endswith(".py") for n in names):
        raise SubmissionError(
            f"model {model_id} ships Python files: models needing remote code are not accepted"
        )
    sha = info.sha
    facts: dict[str, Any] = {"sha": sha}
    if "adapter_config.json" in names:
        cfg = _repo_json(api, model_id, "adapter_config.json", sha)
        base = cfg.get("base_model_name_or_path")
        if not base or not isinstance(base, str):
            raise SubmissionError(f"adapter {model_id} does not name its base model")
        try:
            base_info = api.model_info(base)
        except (HfHubHTTPError, HFValidationError):
            # e.g. a local path left in adapter_config.json: nobody else could load this adapter
            raise SubmissionError(
                f"adapter {model_id}: its base model {base!r} (adapter_config.json base_model_name_or_path) "
                "is not a model on the Hub"
            ) from None
        facts["base_model"] = base
        facts["base_sha"] = base_info.sha
    elif "config.json" in names:
        cfg = _repo_json(api, model_id, "config.json", sha)
        if cfg.get("auto_map"):
            raise SubmissionError(f"model {model_id} needs remote code (config.json has auto_map)")
        _check_loads(model_id, sha)
    else:
        raise SubmissionError(f"model {model_id}@{revision} has neither config.json nor adapter_config.json")
    _check_weights(model_id, names)
    license_ = _card_license(api, model_id, sha, info)
    if not license_:
        raise SubmissionError(
            f"model {model_id}: its card declares no licence (add `license:` to the README)"
        )
    facts["license"] = license_
    return facts


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# --------------------------------------------------------------------------- the eval set


def check_eval_dataset(results: dict[str, Any], org: str, api: Any = None) -> MetricConfig:
    """The eval set's pinned configuration at the submitted revision; refuses other sets and slices."""
    from lmolt_hub.metrics.metric_config import MetricConfigError, load_metric_config

    ours = f"{org}/{EVAL_DATASET}"
    eval_ds = results["eval_dataset"]
    if eval_ds.get("id") != ours:
        raise SubmissionError(
            f"results are for eval set {eval_ds.get('id')!r}; this leaderboard scores {ours!r}"
        )
    revision = pinned_revision(eval_ds)
    if not revision:
        raise SubmissionError("results must name the eval set revision (eval_dataset.revision)")
    try:
        cfg = load_metric_config(ours, revision, api=api)
    except MetricConfigError as exc:
        raise SubmissionError(str(exc)) from None
    if eval_ds.get("sha") and eval_ds["sha"] != cfg.eval_revision:
        raise SubmissionError(f"eval_dataset.sha {eval_ds['sha']} is not a commit of {ours}")
    split, limit = eval_ds.get("split"), eval_ds.get("limit")
    if (split is not None and split != cfg.split) or limit is not None:
        raise SubmissionError(
            f"results cover eval_dataset split {split!r} with limit {limit!r}; the leaderboard scores the "
            f"whole split {cfg.split!r} (run the harness without --limit or --split)"
        )
    return cfg


def load_eval_set(repo_id: str, revision: str, split: str | None = None) -> Any:
    """The eval set at ``revision``, read by the harness's own loader (``lmolt_hub.formats.eval_set``)."""
    from lmolt_hub.formats.eval_set import EvalSetError
    from lmolt_hub.formats.eval_set import load_eval_set as harness_load

    try:
        return harness_load(repo_id, revision, split or "test")
    except EvalSetError as exc:
        raise SubmissionError(f"eval set {repo_id}@{revision}: {exc}") from None


# --------------------------------------------------------------------------- samples and metrics


def _read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    from lmolt_hub.formats.results import ResultsValidationError, validate_sample

    rows = []
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        row = strict_json(line, f"{what}, line {n}")
        try:
            validate_sample(row)
        except ResultsValidationError as exc:
            raise SubmissionError(f"{what}, line {n}: {exc}") from None
        rows.append(row)
    return rows


def check_samples(
    directory: Path, results: dict[str, Any], eval_rows: Sequence[dict[str, Any]], label: str
) -> dict[str, list[dict[str, Any]]]:
    """direction -> sample rows in eval-set order; refuses missing, extra, duplicated or altered rows.

    ``eval_rows`` are the eval set's ``{id, molecule, caption}``; ``label`` names it in messages.
    """
    expected = {str(r["id"]): r for r in eval_rows}
    ordered: dict[str, list[dict[str, Any]]] = {}
    for direction in results["directions"]:
        name = results["samples"].get(direction)
        if not name or Path(name).name != name:
            raise SubmissionError(
                f"results.samples must name a samples file for {direction} (a plain file name)"
            )
        path = directory / name
        if not path.is_file():
            raise SubmissionError(f"samples file {name} for {direction} is missing from the submission")
        rows = _read_jsonl(path, name)
        by_id: dict[str, dict[str, Any]] = {}
        for row in rows:
            key = str(row["id"])
            if key in by_id:
                raise SubmissionError(f"{name}: sample id {key} appears twice")
            if row["direction"] != direction:
                raise SubmissionError(f"{name}: sample {key} is for {row['direction']}, not {direction}")
            by_id[key] = row
        missing = sorted(set(expected) - set(by_id))
        extra = sorted(set(by_id) - set(expected))
        if missing or extra:
            raise SubmissionError(
                f"{name} does not match the eval set {label}: "
                f"{len(missing)} missing row(s) {missing[:5]}, {len(extra)} extra row(s) {extra[:5]}"
            )
        for key, gold in expected.items():
            source, reference = source_target(direction, gold["molecule"], gold["caption"])
            row = by_id[key]
            if pair_hash(row["source"], row["reference"]) != pair_hash(source, reference):
                raise SubmissionError(
                    f"{name}: sample {key} has a source/reference that differs from the eval set"
                )
        count = results["n_samples"].get(direction)
        if count != len(rows):
            raise SubmissionError(f"n_samples.{direction} is {count}, but {name} has {len(rows)} rows")
        ordered[direction] = [by_id[k] for k in expected]
    return ordered


# Values from a neural network (ChemNet for FCD, the NLI cross-encoder) differ in the last float
# digits between devices and kernels (a GPU run re-scored on a CPU): a wider tolerance for them, and
# one NLI label flip for the entailment win rate (at most 0.001). Every other metric is exact.
NEURAL_TOL = 1e-4
NEURAL = {"fcd", "mean_entailment"}


def _tolerance(direction: str, name: str, n_rows: int) -> tuple[float, float]:
    if name in NEURAL:
        return NEURAL_TOL, NEURAL_TOL
    if name == "win_rate" and direction == Direction.SMILES2CAPTION:
        return REL_TOL, min(1.0 / max(n_rows, 1), 1e-3) + ABS_TOL
    return REL_TOL, ABS_TOL


def _same(a: Any, b: Any, tol: tuple[float, float] = (REL_TOL, ABS_TOL)) -> bool:
    """Equal up to ``tol`` (relative, absolute); None and NaN are the same "no value"."""
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
            and all(_same(x, y, tol) for x, y in zip(a, b, strict=True))
        )  # fmt: skip
    missing_a = a is None or (isinstance(a, float) and math.isnan(a))
    missing_b = b is None or (isinstance(b, float) and math.isnan(b))
    if missing_a or missing_b:
        return missing_a and missing_b
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)):
        return a == b
    return math.isclose(a, b, rel_tol=tol[0], abs_tol=tol[1])


def _compare(block: str, direction: str, submitted: Any, recomputed: dict[str, Any], n_rows: int = 0) -> None:
    """``submitted`` must hold exactly the recomputed values (nothing missing, nothing added)."""
    if not isinstance(submitted, dict):
        raise SubmissionError(f"{block}.{direction} must be an object of metric values")
    for name, value in sorted(recomputed.items()):
        if name not in submitted:
            raise SubmissionError(
                f"{block}.{direction} lacks {name!r}, which the eval set's configuration computes"
            )
        if not _same(submitted[name], value, _tolerance(direction, name, n_rows)):
            raise SubmissionError(
                f"{block}.{direction}.{name} = {submitted[name]!r}, but recomputing it from the "
                f"submitted outputs gives {value!r}"
            )
    extra = sorted(set(submitted) - set(recomputed))
    if extra:
        raise SubmissionError(f"{block}.{direction} has values the reviewer does not compute: {extra}")


PINNED_OPTIONS = ("hallucination", "fcd", "fcd_convention", "fingerprint_convention")


def check_options(results: dict[str, Any], cfg: MetricConfig) -> None:
    """``metric_options`` is never used, but one that contradicts the eval set's configuration or
    names a path is refused with a reason (it was forged or scored under other rules)."""
    recorded = results.get("metric_options") or {}
    if not isinstance(recorded, dict):
        raise SubmissionError("metric_options must be an object")
    by_direction = recorded.get("by_direction") if isinstance(recorded.get("by_direction"), dict) else {}
    blocks = {"metric_options": {k: v for k, v in recorded.items() if k != "by_direction"}}
    blocks |= {f"metric_options.by_direction.{d}": o for d, o in by_direction.items() if isinstance(o, dict)}
    for where, options in blocks.items():
        for key, value in options.items():
            if key.endswith(("_dir", "_path", "_file", "_stats")) or isinstance(value, (dict, list)):
                raise SubmissionError(
                    f"{where}.{key}: the reviewer never takes paths or files from a submission"
                )
            if key in PINNED_OPTIONS and value is not None and value != getattr(cfg, key):
                raise SubmissionError(
                    f"{where}.{key} = {value!r}, but the eval set's configuration says {getattr(cfg, key)!r}: "
                    "results are scored with the eval set's options only"
                )


def _check_bootstrap(results: dict[str, Any], cfg: MetricConfig) -> None:
    boot = results.get("bootstrap") or {}
    wanted = {"n_resamples": cfg.bootstrap_resamples, "seed": cfg.bootstrap_seed}
    got = {k: boot.get(k) for k in wanted}
    if got != wanted:
        raise SubmissionError(
            f"bootstrap settings {got} differ from the eval set's {wanted}; re-run the harness with its "
            "defaults (it reads them from the eval set)"
        )


def check_metrics(
    results: dict[str, Any], samples: dict[str, list[dict[str, Any]]], cfg: MetricConfig, api: Any = None
) -> dict[str, Any]:
    """ "Re-scored": recompute points, CIs and hallucination values from the submitted outputs with
    the eval set's pinned options (never the submission's); all must equal the submitted values.

    Returns what was recomputed (direction -> corpus metrics), for the verification record.
    """
    from lmolt_hub.metrics.scoring import score_direction

    check_options(results, cfg)
    _check_bootstrap(results, cfg)
    missing = [d for d in DIRECTION_NAMES if d not in samples]
    if missing:
        raise SubmissionError(f"results must cover both directions; missing {missing}")
    try:  # the eval set's pinned metric modules (Spaces at their commits), else the bundled ones
        modules = cfg.run_modules()
    except ValueError as exc:
        raise ReviewerSetupError(f"cannot load the eval set's metric modules: {_first_line(exc)}") from None
    recomputed: dict[str, Any] = {}
    for direction, rows in samples.items():
        options = cfg.score_options(direction)
        references = [r["reference"] for r in rows]
        if direction == Direction.CAPTION2SMILES and cfg.fcd:
            stats = _fcd_stats(cfg, api)
            if stats is not None:
                options["fcd_reference_stats"] = stats
        try:
            scores = score_direction(
                direction, [r["output"] for r in rows], references, options=options,
                hallucination=cfg.hallucination, bootstrap_resamples=cfg.bootstrap_resamples,
                seed=cfg.bootstrap_seed, modules=modules,
            )  # fmt: skip
        except OSError as exc:  # the NLI model (or another resource) the eval set names is missing here
            msg = f"cannot re-score with the eval set's configuration: {_first_line(exc)}"
            raise ReviewerSetupError(msg) from None
        if getattr(scores, "not_computed", None):
            raise ReviewerSetupError(f"cannot re-score {direction}: {scores.not_computed}")
        n = len(rows)
        _compare("results", direction, results["results"].get(direction, {}), scores.corpus, n)
        _compare("hallucination", direction, (results.get("hallucination") or {}).get(direction) or {},
                 scores.hallucination if cfg.hallucination else {}, n)  # fmt: skip
        _compare(
            "confidence_intervals", direction,
            (results.get("confidence_intervals") or {}).get(direction) or {}, scores.confidence_intervals, n,
        )  # fmt: skip
        recomputed[direction] = scores.corpus
    return recomputed


def _fcd_stats(cfg: MetricConfig, api: Any):
    from lmolt_hub.metrics.metric_config import MetricConfigError

    try:
        return cfg.fcd_reference_stats(api)
    except (MetricConfigError, ValueError) as exc:
        raise ReviewerSetupError(f"eval set FCD statistics unusable: {_first_line(exc)}") from None


# --------------------------------------------------------------------------- spot check

# (results document, direction, sample rows) -> the harness's cleaned outputs, one per row.
# The reviewer passes a copy of the results whose model.sha is the validated commit.
Regenerate = Callable[[dict[str, Any], str, list[dict[str, Any]]], list[str]]


def spot_check_settings(results: dict[str, Any]) -> dict[str, Any]:
    """Generation settings a spot check may use, checked against the reviewer's bounds."""
    params = dict((results.get("generation") or {}).get("params") or {})
    if params.get("do_sample"):
        raise SubmissionError("spot check needs greedy outputs, but the submission sampled (do_sample=true)")
    new_tokens, beams = params.get("max_new_tokens", 512), params.get("num_beams", 1)
    if not isinstance(new_tokens, int) or not 1 <= new_tokens <= MAX_SPOT_NEW_TOKENS:
        raise SubmissionError(f"generation max_new_tokens {new_tokens!r} is outside 1..{MAX_SPOT_NEW_TOKENS}")
    if not isinstance(beams, int) or not 1 <= beams <= MAX_SPOT_BEAMS:
        raise SubmissionError(f"generation num_beams {beams!r} is outside 1..{MAX_SPOT_BEAMS}")
    model = results["model"]
    dtype = model.get("dtype") or "default"
    if dtype not in SPOT_DTYPES:
        raise SubmissionError(f"model dtype {dtype!r} is not one of {SPOT_DTYPES}")
    from lmolt_hub.prompts import PROMPT_FORMATS

    prompt_format = results.get("prompt_format") or "auto"
    if prompt_format not in PROMPT_FORMATS:
        raise SubmissionError(f"prompt_format {prompt_format!r} is not one of {PROMPT_FORMATS}")
    return {"params": params, "dtype": dtype, "prompt_format": prompt_format,
            "load_in_4bit": bool(model.get("load_in_4bit"))}  # fmt: skip


def spot_check(
    results: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]],
    regenerate: Regenerate,
    n: int,
    seed: int,
    model_sha: str | None = None,
) -> dict[str, Any]:
    """ "Reproduced": regenerate ``n`` random pairs per direction with the submitted model at its
    validated sha; every output must equal the submitted one exactly."""
    spot_check_settings(results)
    pinned = {**results, "model": {**results["model"], "sha": model_sha or results["model"].get("sha")}}
    rng = random.Random(seed)
    checked: dict[str, list[str]] = {}
    for direction, rows in sorted(samples.items()):
        chosen = sorted(rng.sample(range(len(rows)), min(n, len(rows))))
        picked = [rows[i] for i in chosen]
        try:
            outputs = regenerate(pinned, direction, picked)
        except SubmissionError:
            raise
        except Exception as exc:  # noqa: BLE001 - the submitted model could not be run
            raise SubmissionError(
                f"spot check: the model could not be run to regenerate outputs ({type(exc).__name__}: "
                f"{_first_line(exc)})"
            ) from None
        for row, output in zip(picked, outputs, strict=True):
            if output != row["output"]:
                raise SubmissionError(
                    f"spot check failed: regenerating sample {row['id']} ({direction}) gave {output[:200]!r}, "
                    f"the submission has {row['output'][:200]!r}"
                )
        checked[direction] = [str(r["id"]) for r in picked]
    return {"n_per_direction": n, "seed": seed, "ids": checked, "matched": True}


# --------------------------------------------------------------------------- cross-submission checks


def check_duplicate(record: Record, accepted: Sequence[Record]) -> None:
    """Same key (model at its commit sha, eval set sha, versions) as an accepted record: refused."""
    for other in accepted:
        if other.key() == record.key():
            raise SubmissionError(
                f"duplicate: {record.model}@{(record.revision or '')[:12]} on {record.eval_dataset}"
                f"@{(record.eval_revision or '')[:12]} (template {record.template_version}, metrics "
                f"{record.metrics_version}) is already on the leaderboard ({other.source})"
            )


def check_rate_limit(
    who: str, this_time: _dt.datetime, earlier: Sequence[_dt.datetime], limit: int, window_hours: float
) -> None:
    """At most ``limit`` submissions per PR author (``who``) within ``window_hours`` (counting this one)."""
    start = this_time - _dt.timedelta(hours=window_hours)
    recent = [t for t in earlier if start <= t <= this_time]
    if len(recent) + 1 > limit:
        raise SubmissionError(
            f"rate limit: {who!r} already opened {len(recent)} submission(s) in the last "
            f"{window_hours:g} h (limit {limit}); try again later"
        )


# --------------------------------------------------------------------------- the whole submission


def results_sha256(data: bytes) -> str:
    """The hash that binds a verification record to the exact results.json bytes it verified."""
    return hashlib.sha256(data).hexdigest()


def validate_results_submission(
    directory: Path,
    *,
    api: Any,
    org: str,
    max_bytes: int = MAX_SUBMISSION_BYTES,
    regenerate: Regenerate | None = None,
    spot_check_n: int = 0,
    seed: int = 0,
) -> Verdict:
    """All per-submission checks on a downloaded submission folder; raises SubmissionError."""
    check_sizes([p for p in directory.rglob("*") if p.is_file()], max_bytes)
    path = directory / RESULTS_FILE
    if not path.is_file():
        raise SubmissionError(f"the submission has no {RESULTS_FILE}")
    raw = path.read_bytes()
    results = load_results(path)
    checks = ["size", "json", "complete", "schema"]
    check_versions(results)
    checks.append("versions")
    model = results["model"]
    facts = check_model(api, model["id"], pinned_revision(model))
    if model.get("sha") and facts["sha"] != model["sha"]:
        raise SubmissionError(f"model {model['id']}: revision {model['sha']} resolves to {facts['sha']}")
    checks.append("model")
    cfg = check_eval_dataset(results, org, api)
    eval_set = load_eval_set(cfg.eval_dataset, cfg.eval_revision, cfg.split)
    checks.append("eval_set")
    samples = check_samples(directory, results, eval_set.rows, f"{cfg.eval_dataset}@{cfg.eval_revision[:12]}")
    checks.append("samples")
    check_metrics(results, samples, cfg, api)
    checks.append("metrics")
    statuses = [RESCORED]
    verification: dict[str, Any] = {
        "results_sha256": results_sha256(raw),
        "statuses": statuses,
        "checks": checks,
        "license": facts["license"],
        "model_sha": facts["sha"],
        "eval_revision": cfg.eval_revision,
        "metric_config": cfg.to_dict(),
        "spot_check": None,
    }
    if spot_check_n > 0:
        if regenerate is None:  # the reviewer's set-up, not the submitter's fault
            raise ValueError("spot_check_n > 0 needs a regenerate function (lmolt_hub.leaderboard.harness)")
        verification["spot_check"] = spot_check(
            results, samples, regenerate, spot_check_n, seed, facts["sha"]
        )
        checks.append("spot_check")
        statuses.append(REPRODUCED)
    record = verified_record(results, verification=verification)
    record.revision, record.eval_revision = facts["sha"], cfg.eval_revision  # shas: one model, one row
    return Verdict(record=record, results=results, checks=checks, verification=verification)


def validate_request(directory: Path, *, api: Any, max_bytes: int = MAX_SUBMISSION_BYTES) -> dict[str, Any]:
    """An evaluation request: ``request.json`` = {"model": id, "revision": rev or null}."""
    check_sizes([p for p in directory.rglob("*") if p.is_file()], max_bytes)
    path = directory / REQUEST_FILE
    request = strict_json(path.read_bytes(), REQUEST_FILE)
    if not isinstance(request, dict) or not isinstance(request.get("model"), str) or not request["model"]:
        raise SubmissionError(f"{REQUEST_FILE} must be an object with a string 'model'")
    revision = request.get("revision") or "main"
    if not isinstance(revision, str):
        raise SubmissionError(f"{REQUEST_FILE}: 'revision' must be a string")
    facts = check_model(api, request["model"], revision)
    return {"model": request["model"], "revision": facts["sha"], "license": facts["license"]}
