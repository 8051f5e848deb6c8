"""Merge inputs: every reference of a parsed recipe resolved to a local directory mergekit reads.

mergekit receives only absolute local paths: that keeps it from calling the Hub (its card writer
and ``local_path`` do for anything that is not an existing directory) and pins exactly what was
merged. A Hub input is downloaded at the commit it was pinned to; a ``base+adapter`` reference or
a bare adapter is merged into its base once, into the lmolt cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmolt_hub.hub.ref import TINY_SCHEME, HubRef, is_hub_id, repo_info
from lmolt_hub.io import atomic_dir
from lmolt_hub.merging.config import MergeConfigError, MergeRecipe, with_local_paths
from lmolt_hub.resources import cache_dir as lmolt_cache_dir

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt")


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


def resolve_recipe(recipe: MergeRecipe, base_dir: Path) -> None:
    """Resolve each reference to a local path; ``recipe.config`` then names only local paths."""
    mapping: dict[str, str] = {}
    for ref in recipe.refs:
        parent = resolve_reference(ref, base_dir)
        recipe.parents[ref] = parent
        mapping[ref] = str(parent.local_path)
    recipe.config = with_local_paths(recipe.config, mapping)


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
        from lmolt_hub.tiny import TinySpecError, tiny_model_path

        try:
            path = tiny_model_path(ref).resolve()
        except TinySpecError as exc:
            raise MergeConfigError(str(exc)) from None
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
    info = repo_info(
        repo_id, revision, what="merge input", hint=hint, error=MergeConfigError, offline_is_missing=True
    )
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
    out = lmolt_cache_dir("merged-adapters") / hashlib.sha256(key_src.encode()).hexdigest()[:16]
    if (out / "config.json").is_file():
        return out
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base.local_path, dtype="auto", low_cpu_mem_usage=True)
    model = PeftModel.from_pretrained(model, adapter.local_path, is_trainable=False).merge_and_unload()
    tok_src = (
        adapter.local_path if (adapter.local_path / "tokenizer_config.json").is_file() else base.local_path
    )
    with atomic_dir(out, keep_existing=True) as tmp:  # a crash never leaves a half-merged cache entry
        model.save_pretrained(tmp, safe_serialization=True)
        AutoTokenizer.from_pretrained(tok_src).save_pretrained(tmp)
    del model
    return out


def _files_digest(path: Path, only: tuple[str, ...] | None = None) -> str:
    h = hashlib.sha256()
    for p in sorted(path.iterdir()):
        if p.is_file() and (only is None or p.name in only):
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
