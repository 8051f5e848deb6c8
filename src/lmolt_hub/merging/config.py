"""Merge recipes: mergekit-schema YAML, validated, with every input resolved to a local path.

A recipe is mergekit's own YAML (``merge_method``, ``base_model``, ``models`` or
``slices``, ``parameters``, ``dtype``, ...). Each model reference may be

- a local directory (absolute, relative to the working directory, or relative to the recipe),
- a Hub id, optionally pinned: ``org/name`` or ``org/name@<revision>``,
- a ``base+adapter`` reference (each side a local path or a Hub id): the LoRA adapter is merged
  into its base once, into a cache directory, and the merged copy is what mergekit reads,
- ``tiny://llama[?seed=N]``: the package's tiny Llama (tests, quickstart),
- a bare adapter (a directory or repo with ``adapter_config.json`` and no full weights): it is
  merged into the base named by its ``base_model_name_or_path``.

mergekit receives only absolute local paths: that keeps it from calling the Hub (its card writer
and ``local_path`` do for anything that is not an existing directory) and pins exactly what was
merged. ``${org}``-style placeholders are substituted before parsing, so one recipe serves any
namespace (the chain passes ``org``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmolt_hub.hub.ref import TINY_SCHEME, HubRef, is_hub_id, repo_info
from lmolt_hub.resources import cache_dir as lmolt_cache_dir

# Parameters that are interpolation ratios or fractions; mergekit itself accepts any float.
RATIO_PARAMETERS = ("t", "weight", "density")
# What else decides the ratio a merge realises (TIES: normalize divides by the agreeing weights).
SUMMARY_PARAMETERS = (*RATIO_PARAMETERS, "normalize", "lambda")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt")


class MergeConfigError(ValueError):
    """A merge recipe that cannot be run: the message names the problem."""


@dataclass
class Parent:
    """One resolved merge input: where it came from and the local copy mergekit reads."""

    ref: str  # the reference as written in the recipe (after placeholder substitution)
    local_path: Path  # the files mergekit reads (a local directory, a snapshot, or a merged adapter)
    pinned: HubRef | None = None  # the Hub repo (or tiny:// model) and its commit; None for a local directory
    adapter: Parent | None = None  # for base+adapter references: the adapter; local_path is the merge

    @property
    def repo_id(self) -> str | None:
        return self.pinned.id if self.pinned is not None else None

    @property
    def revision(self) -> str | None:
        """The commit sha on the Hub (None for local directories and tiny models)."""
        return self.pinned.sha if self.pinned is not None else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref, "id": self.repo_id or str(self.local_path)}
        out["revision"] = self.revision
        out["adapter"] = self.adapter.as_dict() if self.adapter is not None else None
        return out

    @property
    def hub_id(self) -> str | None:
        """The Hub id that names this parent on a card: the adapter's for base+adapter."""
        return self.adapter.repo_id if self.adapter is not None else self.repo_id


@dataclass
class MergeRecipe:
    """A validated merge recipe ready for mergekit."""

    path: Path | None
    source_yaml: str  # the recipe verbatim (embedded in the card)
    raw: dict[str, Any]  # parsed recipe after substitution, with references as written
    config: Any  # mergekit MergeConfiguration with absolute local paths
    parents: dict[str, Parent] = field(default_factory=dict)  # reference as written -> parent
    variables: dict[str, str] = field(default_factory=dict)  # ${placeholder} values used

    @property
    def method(self) -> str:
        return self.raw["merge_method"]

    @property
    def base_ref(self) -> str | None:
        return self.raw.get("base_model")

    def resolved_yaml(self) -> str:
        return self.config.to_yaml()


def cache_dir() -> Path:
    return lmolt_cache_dir()


# ----------------------------------------------------------------------------------------------
# loading and validation


def load_merge_config(
    path: str | Path, variables: dict[str, str] | None = None, resolve: bool = True
) -> MergeRecipe:
    """Read, substitute, validate and (by default) resolve a merge recipe."""
    path = Path(path)
    if not path.is_file():
        raise MergeConfigError(f"merge recipe not found: {path}")
    return parse_merge_config(
        path.read_text(encoding="utf-8"),
        base_dir=path.parent,
        path=path,
        variables=variables,
        resolve=resolve,
    )


def parse_merge_config(
    text: str,
    base_dir: Path | None = None,
    path: Path | None = None,
    variables: dict[str, str] | None = None,
    resolve: bool = True,
) -> MergeRecipe:
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
    validate_ratios(raw)
    config = _mergekit_config(raw)  # schema errors surface here, before any download
    used = {k: v for k, v in (variables or {}).items() if f"${k}" in text or f"${{{k}}}" in text}
    recipe = MergeRecipe(path=path, source_yaml=text, raw=raw, config=config, variables=used)
    if resolve:
        resolve_recipe(recipe, base_dir or Path.cwd())
    return recipe


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


def _numbers(setting: Any) -> list[float]:
    """Every number in a parameter setting: scalars, gradients, and {filter, value} conditions."""
    if isinstance(setting, bool):
        return []
    if isinstance(setting, (int, float)):
        return [float(setting)]
    if isinstance(setting, list):
        return [x for item in setting for x in _numbers(item)]
    if isinstance(setting, dict) and "value" in setting:
        return _numbers(setting["value"])
    return []


def _parameter_blocks(raw: dict[str, Any]) -> list[tuple[str, dict]]:
    """(where, parameters mapping) for the recipe, each model, each slice and slice source."""
    blocks = [("parameters", raw.get("parameters") or {})]
    for i, m in enumerate(raw.get("models") or []):
        if isinstance(m, dict):
            blocks.append((f"models[{i}] ({m.get('model')})", m.get("parameters") or {}))
    for i, s in enumerate(raw.get("slices") or []):
        if isinstance(s, dict):
            blocks.append((f"slices[{i}]", s.get("parameters") or {}))
            for j, src in enumerate(s.get("sources") or []):
                if isinstance(src, dict):
                    blocks.append((f"slices[{i}].sources[{j}]", src.get("parameters") or {}))
    return blocks


def validate_ratios(raw: dict[str, Any]) -> None:
    """Ratios (t, weight, density) must lie in [0, 1]: a 19:1 merge is t=0.05, not 19."""
    for where, params in _parameter_blocks(raw):
        if not isinstance(params, dict):
            raise MergeConfigError(f"{where}: parameters must be a mapping")
        for name in RATIO_PARAMETERS:
            if name in params:
                for value in _numbers(params[name]):
                    if not 0.0 <= value <= 1.0:
                        raise MergeConfigError(f"{where}: {name}={value} is outside [0, 1]")


def ratio_summary(raw: dict[str, Any]) -> dict[str, Any]:
    """The ratio-like parameters of a recipe, per input, for cards and reports."""
    out: dict[str, Any] = {}
    for where, params in _parameter_blocks(raw):
        picked = {k: params[k] for k in SUMMARY_PARAMETERS if k in params}
        if picked:
            out[where] = picked
    return out


# ----------------------------------------------------------------------------------------------
# resolving references to local paths


def model_refs(raw: dict[str, Any]) -> list[str]:
    """Every model reference string of a recipe, in order of first appearance."""
    refs: list[str] = []

    def add(ref: Any) -> None:
        if isinstance(ref, dict):  # mergekit's {model: ..., lora: ...} form
            ref = ref.get("model") if not ref.get("lora") else f"{ref['model']}+{ref['lora']}"
        if isinstance(ref, str) and ref not in refs:
            refs.append(ref)

    if raw.get("base_model"):
        add(raw["base_model"])
    for m in raw.get("models") or []:
        add(m.get("model") if isinstance(m, dict) else None)
    for s in raw.get("slices") or []:
        for src in (s or {}).get("sources") or []:
            add(src.get("model") if isinstance(src, dict) else None)
    ts = raw.get("tokenizer_source")
    if isinstance(ts, str) and ts not in ("union", "base"):
        add(ts)
    return refs


def resolve_recipe(recipe: MergeRecipe, base_dir: Path) -> None:
    """Resolve each reference to a local path and rebuild the mergekit config with them."""
    mapping: dict[str, str] = {}
    for ref in model_refs(recipe.raw):
        parent = resolve_reference(ref, base_dir)
        recipe.parents[ref] = parent
        mapping[ref] = str(parent.local_path)
    recipe.config = _mergekit_config(_replace_refs(recipe.raw, mapping))


def _replace_refs(raw: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    def swap(ref: Any) -> Any:
        if isinstance(ref, dict) and "model" in ref:
            key = ref["model"] if not ref.get("lora") else f"{ref['model']}+{ref['lora']}"
            return mapping.get(key, ref)
        return mapping.get(ref, ref) if isinstance(ref, str) else ref

    out = json.loads(json.dumps(raw))
    if out.get("base_model"):
        out["base_model"] = swap(out["base_model"])
    for m in out.get("models") or []:
        m["model"] = swap(m["model"])
    for s in out.get("slices") or []:
        for src in s.get("sources") or []:
            src["model"] = swap(src["model"])
    if isinstance(out.get("tokenizer_source"), str) and out["tokenizer_source"] not in ("union", "base"):
        out["tokenizer_source"] = swap(out["tokenizer_source"])
    return out


def resolve_reference(ref: str, base_dir: Path) -> Parent:
    """A recipe reference -> a Parent with a local directory holding full weights."""
    if ref.count("+") > 1:
        raise MergeConfigError(f"cannot parse model reference {ref!r}: use `base+adapter`")
    if "+" in ref:
        base_ref, adapter_ref = ref.split("+")
        base = _locate(base_ref, base_dir)
        adapter = _locate(adapter_ref, base_dir)
        if not _is_adapter(adapter.local_path):
            raise MergeConfigError(
                f"{adapter_ref!r} in {ref!r} is not a LoRA adapter (no adapter_config.json)"
            )
        merged = merge_adapter(base, adapter)
        return Parent(ref=ref, local_path=merged, pinned=base.pinned, adapter=adapter)
    located = _locate(ref, base_dir)
    if _is_adapter(located.local_path) and not _has_weights(located.local_path):
        base = _locate(_adapter_base(located.local_path), base_dir)
        merged = merge_adapter(base, located)
        return Parent(ref=ref, local_path=merged, pinned=base.pinned, adapter=located)
    if not (located.local_path / "config.json").is_file():
        raise MergeConfigError(f"merge input {ref!r} has no config.json at {located.local_path}")
    if not _has_weights(located.local_path):
        raise MergeConfigError(
            f"merge input {ref!r} has no weights (*.safetensors / *.bin) at {located.local_path}"
        )
    return located


def _locate(ref: str, base_dir: Path) -> Parent:
    """A local directory, or a Hub repo downloaded at a pinned commit."""
    if ref.startswith(TINY_SCHEME):  # the package's tiny models, built once into the cache
        from lmolt_hub.training.models import tiny_model_path

        path = tiny_model_path(ref).resolve()
        return Parent(ref=ref, local_path=path, pinned=HubRef(ref, local_path=path))
    name, _, revision = ref.partition("@")
    for candidate in (Path(name).expanduser(), base_dir / name):
        if candidate.is_dir():
            return Parent(ref=ref, local_path=candidate.resolve())
    if not is_hub_id(name):  # a path (./x, /x, ~/x) or not shaped org/name
        raise MergeConfigError(
            f"merge input {ref!r} not found: no such directory (looked in . and {base_dir})"
        )
    return _download(name, revision or None, ref)


def _download(repo_id: str, revision: str | None, ref: str) -> Parent:
    from huggingface_hub import snapshot_download

    hint = "no such directory either (looked in . and next to the recipe); check the id or the path"
    info = repo_info(repo_id, revision, what="merge input", hint=hint, error=MergeConfigError,
                     offline_is_missing=True)
    files = [s.rfilename for s in info.siblings or []]
    patterns = ["*.json", "tokenizer.model", "*.txt", "*.jinja", "README.md"]
    if any(f.endswith(".safetensors") for f in files):
        patterns.append("*.safetensors")
    elif any(f.endswith(".bin") for f in files):
        patterns.append("*.bin")
    local = snapshot_download(repo_id, revision=info.sha, allow_patterns=patterns)
    return Parent(ref=ref, local_path=Path(local).resolve(), pinned=HubRef(repo_id, revision, info.sha))


def _is_adapter(path: Path) -> bool:
    return (path / "adapter_config.json").is_file()


def _has_weights(path: Path) -> bool:
    return any(
        p.name.startswith(("model", "pytorch_model")) for pat in WEIGHT_PATTERNS for p in path.glob(pat)
    )


def _adapter_base(path: Path) -> str:
    """The reference of an adapter's base: its card's pinned parent (portable), else the
    ``base_model_name_or_path`` of adapter_config.json (may be a path on the training machine)."""
    from lmolt_hub.hub.cards import AdapterMeta, parse_card

    cfg = json.loads((path / "adapter_config.json").read_text())
    base, rev = cfg.get("base_model_name_or_path"), cfg.get("revision")
    if (path / "README.md").is_file():
        lm = AdapterMeta.from_card(parse_card((path / "README.md").read_text(encoding="utf-8"))[0])
        if lm is not None and isinstance(lm.parent, str) and lm.parent:
            base, rev = lm.parent, lm.parent_revision
    if not base:
        raise MergeConfigError(f"adapter {path} does not name its base (base_model_name_or_path)")
    return f"{base}@{rev}" if rev and "://" not in base else base


def merge_adapter(base: Parent, adapter: Parent) -> Path:
    """Merge a LoRA adapter into its base once; cached by (base, adapter) identity."""
    key_src = f"{base.repo_id or base.local_path}@{base.revision}+{adapter.repo_id or adapter.local_path}@{adapter.revision}"
    if adapter.revision is None:  # a local adapter may change: key on its weights too
        key_src += ":" + _files_digest(adapter.local_path)
    if base.revision is None:
        key_src += ":" + _files_digest(base.local_path, only=("config.json",))
    out = cache_dir() / "merged-adapters" / hashlib.sha256(key_src.encode()).hexdigest()[:16]
    if (out / "config.json").is_file():
        return out
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(base.local_path, dtype="auto", low_cpu_mem_usage=True)
    model = PeftModel.from_pretrained(model, adapter.local_path, is_trainable=False).merge_and_unload()
    model.save_pretrained(tmp, safe_serialization=True)
    tok_src = (
        adapter.local_path if (adapter.local_path / "tokenizer_config.json").is_file() else base.local_path
    )
    AutoTokenizer.from_pretrained(tok_src).save_pretrained(tmp)
    del model
    tmp.rename(out)  # atomic: a crash never leaves a half-merged cache entry
    return out


def _files_digest(path: Path, only: tuple[str, ...] | None = None) -> str:
    h = hashlib.sha256()
    for p in sorted(path.iterdir()):
        if p.is_file() and (only is None or p.name in only):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
