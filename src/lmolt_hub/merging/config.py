"""Merge recipes: mergekit-schema YAML, parsed and validated once into mergekit's typed
``MergeConfiguration``. Parsing only: resolving the inputs to local paths is ``merging/inputs.py``.

A recipe is mergekit's own YAML (``merge_method``, ``base_model``, ``models`` or
``slices``, ``parameters``, ``dtype``, ...). Each model reference may be

- a local directory (absolute, relative to the working directory, or relative to the recipe),
- a Hub id, optionally pinned: ``org/name`` or ``org/name@<revision>``,
- a ``base+adapter`` reference (each side a local path or a Hub id): the LoRA adapter is merged
  into its base once, into a cache directory, and the merged copy is what mergekit reads,
- ``tiny://llama[?seed=N]``: the package's tiny Llama (tests, quickstart),
- a bare adapter (a directory or repo with ``adapter_config.json`` and no full weights): it is
  merged into the base named by its ``base_model_name_or_path``.

``${org}``-style placeholders are substituted before parsing, so one recipe serves any
namespace (the chain passes ``org``). The references and the ratio parameters are read by walking
the typed configuration (``model_refs``, ``parameter_blocks``); ``with_local_paths`` returns a copy
of it with every reference replaced, without validating again.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Parameters that are interpolation ratios or fractions; mergekit itself accepts any float.
RATIO_PARAMETERS = ("t", "weight", "density")
# What else decides the ratio a merge realises (TIES: normalize divides by the agreeing weights).
SUMMARY_PARAMETERS = (*RATIO_PARAMETERS, "normalize", "lambda")


class MergeConfigError(ValueError):
    """A merge recipe that cannot be run: the message names the problem."""


@dataclass
class MergeRecipe:
    """A validated merge recipe; ``config`` gets absolute local paths once its inputs are resolved."""

    path: Path | None
    source_yaml: str  # the recipe verbatim (embedded in the card)
    raw: dict[str, Any]  # parsed recipe after substitution, with references as written
    config: Any  # mergekit MergeConfiguration (references as written, then local paths)
    parents: dict[str, Any] = field(default_factory=dict)  # reference as written -> inputs.Parent
    variables: dict[str, str] = field(default_factory=dict)  # ${placeholder} values used
    refs: list[str] = field(default_factory=list)  # every model reference, in order of appearance
    ratios: dict[str, Any] = field(default_factory=dict)  # ratio_summary, with references as written

    @property
    def method(self) -> str:
        return self.raw["merge_method"]

    @property
    def base_ref(self) -> str | None:
        base = self.raw.get("base_model")
        return str(base) if base is not None and not isinstance(base, dict) else None

    def resolved_yaml(self) -> str:
        return self.config.to_yaml()


def read_merge_config(path: str | Path, variables: dict[str, str] | None = None) -> MergeRecipe:
    """Read, substitute and validate a merge recipe file (nothing is downloaded)."""
    path = Path(path)
    if not path.is_file():
        raise MergeConfigError(f"merge recipe not found: {path}")
    return parse_merge_config(path.read_text(encoding="utf-8"), path=path, variables=variables)


def parse_merge_config(
    text: str, path: Path | None = None, variables: dict[str, str] | None = None
) -> MergeRecipe:
    """Substitute ``${...}`` placeholders, parse the YAML and validate it once with mergekit."""
    try:
        substituted = string.Template(text).substitute(variables or {})
    except KeyError as e:
        raise MergeConfigError(
            f"merge recipe uses ${{{e.args[0]}}} but no value was given for it (pass --org, or --var KEY=VALUE)"
        ) from None
    except ValueError as e:
        raise MergeConfigError(f"bad placeholder in merge recipe: {e}") from None
    try:
        raw = yaml.safe_load(substituted)
    except yaml.YAMLError as e:
        raise MergeConfigError(f"merge recipe is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise MergeConfigError("merge recipe must be a YAML mapping (mergekit's schema)")
    _validate_method(raw.get("merge_method"))
    config = _mergekit_config(raw)  # schema errors surface here, before any download
    validate_ratios(config)
    used = {k: v for k, v in (variables or {}).items() if f"${k}" in text or f"${{{k}}}" in text}
    return MergeRecipe(path=path, source_yaml=text, raw=raw, config=config, variables=used,
                       refs=model_refs(config), ratios=ratio_summary(config))  # fmt: skip


def _validate_method(method: Any) -> None:
    from mergekit.merge_methods import registry

    if not isinstance(method, str):
        raise MergeConfigError("merge recipe needs a `merge_method` (e.g. slerp, ties)")
    known = sorted(m.spec.name for m in registry.registered_methods())
    if method not in known:
        raise MergeConfigError(f"unknown merge_method {method!r}; mergekit knows {', '.join(known)}")


def _mergekit_config(raw: dict[str, Any]):
    from mergekit.config import MergeConfiguration

    try:
        return MergeConfiguration.model_validate(raw)
    except Exception as e:  # pydantic ValidationError or mergekit's RuntimeError
        raise MergeConfigError(f"invalid mergekit configuration: {e}") from None


# ----------------------------------------------------------------------------------------------
# walking the typed configuration


def _numbers(setting: Any) -> list[float]:
    """Every number in a parameter setting: scalars, gradients, and conditional values."""
    if isinstance(setting, bool):
        return []
    if isinstance(setting, (int, float)):
        return [float(setting)]
    if isinstance(setting, list):
        return [x for item in setting for x in _numbers(item)]
    if hasattr(setting, "value"):  # mergekit's ConditionalParameter (filter + value)
        return _numbers(setting.value)
    return []


def parameter_blocks(config: Any) -> list[tuple[str, dict]]:
    """(where, parameters) for the recipe, each model, each slice and slice source."""
    blocks = [("parameters", config.parameters or {})]
    for i, m in enumerate(config.models or []):
        blocks.append((f"models[{i}] ({m.model})", m.parameters or {}))
    for i, s in enumerate(config.slices or []):
        blocks.append((f"slices[{i}]", s.parameters or {}))
        for j, src in enumerate(s.sources):
            blocks.append((f"slices[{i}].sources[{j}]", src.parameters or {}))
    return blocks


def validate_ratios(config: Any) -> None:
    """Ratios (t, weight, density) must lie in [0, 1]: a 19:1 merge is t=0.05, not 19."""
    for where, params in parameter_blocks(config):
        for name in RATIO_PARAMETERS:
            if name in params:
                for value in _numbers(params[name]):
                    if not 0.0 <= value <= 1.0:
                        raise MergeConfigError(f"{where}: {name}={value} is outside [0, 1]")


def _plain(setting: Any) -> Any:
    """A parameter setting as YAML-like data (for cards and reports)."""
    if isinstance(setting, list):
        return [_plain(s) for s in setting]
    if hasattr(setting, "model_dump"):
        return {k: _plain(v) for k, v in setting.model_dump(exclude_none=True).items()}
    return setting


def ratio_summary(config: Any) -> dict[str, Any]:
    """The ratio-like parameters of a recipe, per input, for cards and reports."""
    out: dict[str, Any] = {}
    for where, params in parameter_blocks(config):
        picked = {k: _plain(params[k]) for k in SUMMARY_PARAMETERS if k in params}
        if picked:
            out[where] = picked
    return out


def _tokenizer_ref(config: Any) -> Any:
    """``tokenizer_source`` when it names a model (not "union"/"base")."""
    source = config.tokenizer_source
    return source if source is not None and not isinstance(source, str) else None


def model_refs(config: Any) -> list[str]:
    """Every model reference of a recipe (``path[@revision][+lora]``), in order of first appearance."""
    refs: list[str] = []
    found = [config.base_model, *(m.model for m in config.models or [])]
    found += [src.model for s in config.slices or [] for src in s.sources]
    found.append(_tokenizer_ref(config))
    for ref in found:
        if ref is not None and str(ref) not in refs:
            refs.append(str(ref))
    return refs


def with_local_paths(config: Any, mapping: dict[str, str]) -> Any:
    """A copy of ``config`` with each reference in ``mapping`` replaced by its local path."""
    from mergekit.common import ModelReference

    def swap(ref: Any) -> Any:
        return ModelReference.model_validate(mapping[str(ref)]) if str(ref) in mapping else ref

    update: dict[str, Any] = {}
    if config.base_model is not None:
        update["base_model"] = swap(config.base_model)
    if config.models:
        update["models"] = [m.model_copy(update={"model": swap(m.model)}) for m in config.models]
    if config.slices:
        update["slices"] = [
            s.model_copy(
                update={"sources": [src.model_copy(update={"model": swap(src.model)}) for src in s.sources]}
            )
            for s in config.slices
        ]
    if _tokenizer_ref(config) is not None:
        update["tokenizer_source"] = swap(config.tokenizer_source)
    return config.model_copy(update=update)
