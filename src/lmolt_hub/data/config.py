"""Data recipes: YAML -> typed, strictly validated dataclasses.

A recipe is one YAML file with ``kind: triples`` or ``kind: eval``. Every key
is checked against the dataclasses below before any work starts: a typo is a
one-line error naming the key and the keys that exist, never a silent default.
Command-line overrides are ``dotted.key=value`` pairs (values parsed as YAML).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lmolt_hub.naming import EVAL_DATASET, TRIPLES_DATASET
from lmolt_hub.prompts import DIRECTIONS


class DataError(ValueError):
    """A recipe, source or dataset that cannot work; the message is one line naming the problem."""


@dataclass
class SourceConfig:
    """Where molecule-caption pairs come from.

    ``type``: ``chebi20`` (bundled ChEBI-20, ``split`` test|validation), ``hub`` (a Hub dataset id
    or a local dataset directory, loaded with ``datasets.load_dataset``) or ``file`` (a local
    csv/tsv/jsonl/json/parquet file).
    """

    type: Literal["chebi20", "hub", "file"]
    path: str | None = None
    split: str | None = None
    name: str | None = None
    revision: str | None = None
    molecule_column: str = "molecule"
    caption_column: str = "caption"
    id_column: str | None = None


@dataclass
class SplitConfig:
    """One output split: a seeded ``fraction`` of the cleaned source, at most ``limit`` pairs."""

    source: SourceConfig
    fraction: float = 1.0
    limit: int | None = None


@dataclass
class RejectedConfig:
    """What produces the rejected output of one direction: a ``model`` or a ``predictions`` file.

    ``predictions`` is a path (tsv/csv/jsonl with a source and an output column) or
    ``bundled:molt5-large`` / ``bundled:molt5-base`` (MolT5 outputs on the ChEBI-20 test set).
    """

    model: str | None = None
    revision: str | None = None
    predictions: str | None = None
    source_column: str | None = None
    output_column: str = "output"


# The authors' create_negative.py: ``model.generate(tokenizer.encode(source), max_new_tokens=250)``
# on the raw source (its task prefix is commented out), greedy, fp32, no truncation, on the GPU.
AUTHORS_MAX_NEW_TOKENS = 250
AUTHORS_DTYPE = "float32"


@dataclass
class GenerationConfig:
    """How a ``model`` generates rejected outputs (ignored for ``predictions``).

    The defaults are the authors' settings: greedy, ``max_new_tokens`` 250, float32, the raw
    source (no task prefix) and no input truncation (``max_input_length: null``).
    ``input``: ``source`` (the raw SMILES/caption, as MolT5 expects), ``prompt`` (the paper's
    instruction template) or ``auto`` (source for seq2seq models, prompt for causal ones).
    ``device: auto`` is the GPU when there is one; ``dtype: auto`` is bfloat16 there, float32 on CPU.
    """

    batch_size: int = 16
    max_new_tokens: int = AUTHORS_MAX_NEW_TOKENS
    max_input_length: int | None = None
    num_beams: int = 1
    input: Literal["auto", "source", "prompt"] = "auto"
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = AUTHORS_DTYPE
    cache_dir: str | None = None


@dataclass
class NegativesConfig:
    """One rejected-output producer per direction built (a direction not built needs none).

    ``drop_identical``: drop triples whose rejected output equals the gold target (the same
    string, or for SMILES the same molecule by InChIKey). Off by default: the authors kept every
    row, and the card counts these rows either way. ``drop_empty``: drop empty rejected outputs.
    """

    smiles2caption: RejectedConfig = field(default_factory=RejectedConfig)
    caption2smiles: RejectedConfig = field(default_factory=RejectedConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    drop_identical: bool = False
    drop_empty: bool = True


@dataclass
class TriplesRecipe:
    kind: Literal["triples"]
    splits: dict[str, SplitConfig]
    negatives: NegativesConfig
    name: str = TRIPLES_DATASET
    pretty_name: str = "lmolt preference triples"
    seed: int = 42
    directions: list[str] = field(default_factory=lambda: list(DIRECTIONS))
    license: str = "other"
    license_note: str = ""
    output_dir: str | None = None
    push_to: str | None = None
    private: bool = False


@dataclass
class ExcludeConfig:
    """Molecules the eval set must not contain: those of a triples ``recipe`` (its sampled
    train/validation pairs, no generation needed) or of a built triples ``dataset`` (Hub id or
    local directory, every split of its default config)."""

    recipe: str | None = None
    dataset: str | None = None
    revision: str | None = None


@dataclass
class EvalMetricsConfig:
    """How results on the eval set are scored; written to the repo's ``metric_config.json``, which the
    harness and the leaderboard reviewer read (``lmolt_hub.metrics.metric_config``)."""

    nli_model: str = "cross-encoder/nli-deberta-v3-base"
    nli_revision: str | None = None
    hallucination: bool = True
    fingerprint_convention: Literal["lpm24", "molt5"] = "lpm24"
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 0
    # metric module name -> "<org>/<name>[@revision]": the Spaces pinned (at their commit sha) in
    # metric_config.json; none: results are scored with the modules bundled with lmolt-hub
    modules: dict[str, str] | None = None


@dataclass
class EvalRecipe:
    kind: Literal["eval"]
    source: SourceConfig
    name: str = EVAL_DATASET
    pretty_name: str = "lmolt unseen evaluation set"
    seed: int = 42
    n: int | None = 3000
    allow_fewer: bool = False
    exclude: list[ExcludeConfig] = field(default_factory=list)
    # One caption per molecule: ``seeded`` (a seeded choice among its captions) or ``first`` (the
    # first in source order, as the authors' ``groupby("molecule").agg(caption="first")``).
    caption_choice: Literal["seeded", "first"] = "seeded"
    fcd_stats: bool = True
    fcd_convention: str = "fcd_1.1"
    metrics: EvalMetricsConfig = field(default_factory=EvalMetricsConfig)
    license: str = "other"
    license_note: str = ""
    output_dir: str | None = None
    push_to: str | None = None
    private: bool = False


Recipe = TriplesRecipe | EvalRecipe
RECIPE_KINDS: dict[str, type] = {"triples": TriplesRecipe, "eval": EvalRecipe}


# ---------------------------------------------------------------- strict parsing


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, where)
            except DataError as exc:
                errors.append(str(exc))
        raise DataError(errors[0] if len(errors) == 1 else f"{where}: invalid value {value!r}")
    if origin is Literal:
        if value not in args:
            raise DataError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise DataError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise DataError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. a revision written as a bare number
    if tp in (int, float, str, bool) and not (
        isinstance(value, tp) and (tp is bool or not isinstance(value, bool))
    ):
        raise DataError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def from_dict(cls: type, data: Any, where: str = "recipe") -> Any:
    """Build dataclass ``cls`` from ``data``; unknown or missing keys are one-line errors."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise DataError(
            f"{where}: unknown key {'.'.join([where, unknown[0]])!r}; expected one of {', '.join(fields)}"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DataError(f"{where}: missing required key {name!r}")
    return cls(**kwargs)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a raw recipe mapping."""
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"override {item!r}: expected dotted.key=value")
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise DataError(f"override {item!r}: {part!r} is not a mapping")
            node = nxt
        try:
            node[parts[-1]] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise DataError(f"override {item!r}: invalid YAML value ({exc.__class__.__name__})") from None
    return raw


def _check(recipe: Recipe) -> None:
    if recipe.seed < 0 or not recipe.name:
        raise DataError("recipe: seed must be >= 0 and name non-empty")
    if isinstance(recipe, TriplesRecipe):
        if "train" not in recipe.splits:
            raise DataError(f"recipe.splits: a 'train' split is required (got {', '.join(recipe.splits)})")
        bad = [d for d in recipe.directions if d not in DIRECTIONS] or (
            [] if recipe.directions else ["(none)"]
        )
        if bad:
            raise DataError(f"recipe.directions: {bad[0]!r} is not one of {', '.join(DIRECTIONS)}")
        for name, split in recipe.splits.items():
            if not 0 < split.fraction <= 1:
                raise DataError(f"recipe.splits.{name}.fraction: must be in (0, 1], got {split.fraction}")
            if split.limit is not None and split.limit < 1:
                raise DataError(f"recipe.splits.{name}.limit: must be >= 1, got {split.limit}")
            _check_source(split.source, f"recipe.splits.{name}.source")
        for direction in recipe.directions:
            rej: RejectedConfig = getattr(recipe.negatives, direction)
            if (rej.model is None) == (rej.predictions is None):
                raise DataError(f"recipe.negatives.{direction}: set exactly one of 'model' or 'predictions'")
        gen = recipe.negatives.generation
        if gen.batch_size < 1:
            raise DataError("recipe.negatives.generation.batch_size: must be >= 1")
        if gen.max_new_tokens < 1 or (gen.max_input_length is not None and gen.max_input_length < 1):
            raise DataError(
                "recipe.negatives.generation: max_new_tokens must be >= 1 and max_input_length >= 1 or null"
            )
    else:
        _check_source(recipe.source, "recipe.source")
        if recipe.n is not None and recipe.n < 1:
            raise DataError(f"recipe.n: must be >= 1 or null, got {recipe.n}")
        for i, ex in enumerate(recipe.exclude):
            if (ex.recipe is None) == (ex.dataset is None):
                raise DataError(f"recipe.exclude[{i}]: set exactly one of 'recipe' or 'dataset'")


def _check_source(src: SourceConfig, where: str) -> None:
    if src.type == "chebi20":
        if src.split not in ("test", "validation"):
            raise DataError(
                f"{where}.split: the bundled ChEBI-20 has splits 'test' and 'validation', got {src.split!r}"
            )
        if src.path is not None:
            raise DataError(f"{where}.path: not used for type 'chebi20' (remove it)")
    elif not src.path:
        raise DataError(f"{where}.path: required for type {src.type!r}")
    elif src.type == "hub" and not src.split:
        raise DataError(f"{where}.split: required for type 'hub'")


def parse_recipe(raw: dict[str, Any]) -> Recipe:
    if not isinstance(raw, dict):
        raise DataError("recipe: expected a YAML mapping")
    kind = raw.get("kind")
    if kind not in RECIPE_KINDS:
        raise DataError(f"recipe.kind: {kind!r} is not one of {', '.join(map(repr, RECIPE_KINDS))}")
    recipe = from_dict(RECIPE_KINDS[kind], raw)
    _check(recipe)
    return recipe


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe file (a card README with ``lmolt.recipe`` works too)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"recipe file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if text.startswith("---"):  # a dataset card: the recipe it was built from
            from lmolt_hub.hub.cards import DatasetMeta, parse_card

            meta = DatasetMeta.from_card(parse_card(text)[0])
            raw = meta.recipe if meta is not None else None
        else:
            raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DataError(f"{path}: not valid YAML ({first})") from None
    return parse_recipe(apply_overrides(raw if isinstance(raw, dict) else {}, overrides))


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)
