"""Checks around a merge: refuse incompatible inputs before any weight is written, and prove
the output is a usable model afterwards (finite weights, loads, generates)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmolt_hub.merging.config import MergeConfigError, MergeRecipe

# Config fields that fix tensor shapes; two inputs must agree on all of them to be merged.
SHAPE_FIELDS = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "tie_word_embeddings",
    "n_embd",
    "n_layer",
    "n_head",
)


class MergeCheckError(MergeConfigError):
    """The inputs cannot be merged, or the merged model is broken."""


def _config(path: Path) -> dict[str, Any]:
    return json.loads((path / "config.json").read_text(encoding="utf-8"))


def _vocab(path: Path) -> dict[str, int] | None:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path).get_vocab()
    except Exception:  # no tokenizer files: nothing to compare
        return None


def pre_merge_checks(recipe: MergeRecipe) -> dict[str, Any]:
    """Architectures, shapes, vocabulary sizes and tokenizers agree (or a tokenizer is named).

    Returns a small summary (architecture, vocab size) for the card.
    """
    parents = recipe.parents
    if not parents:
        raise MergeCheckError("merge recipe has no resolved inputs")
    configs = {ref: _config(p.local_path) for ref, p in parents.items()}
    first_ref, first = next(iter(configs.items()))
    explicit_tokenizer = bool(recipe.raw.get("tokenizer_source") or recipe.raw.get("tokenizer"))
    for ref, cfg in configs.items():
        if cfg.get("architectures") != first.get("architectures"):
            raise MergeCheckError(
                f"architectures differ: {first_ref!r} is {first.get('architectures')}, "
                f"{ref!r} is {cfg.get('architectures')}"
            )
        for name in SHAPE_FIELDS:
            if cfg.get(name) != first.get(name):
                raise MergeCheckError(
                    f"architectures differ in {name}: {first_ref!r} has {first.get(name)}, {ref!r} has {cfg.get(name)}"
                )
    if not explicit_tokenizer:
        _check_vocabularies(recipe, configs)
    return {"architectures": first.get("architectures"), "vocab_size": first.get("vocab_size")}


def _check_vocabularies(recipe: MergeRecipe, configs: dict[str, dict]) -> None:
    hint = "; set `tokenizer_source` (e.g. base or union) in the recipe to merge them anyway"
    sizes = {ref: cfg.get("vocab_size") for ref, cfg in configs.items()}
    if len(set(sizes.values())) > 1:
        raise MergeCheckError(f"vocabulary sizes differ: {sizes}{hint}")
    reference: tuple[str, dict[str, int]] | None = None
    for ref, parent in recipe.parents.items():
        vocab = _vocab(parent.local_path)
        if vocab is None:
            continue
        if reference is None:
            reference = (ref, vocab)
        elif vocab != reference[1]:
            diff = sorted(set(vocab.items()) ^ set(reference[1].items()))[:3]
            raise MergeCheckError(
                f"tokenizers differ between {reference[0]!r} and {ref!r} (e.g. {diff}){hint}"
            )


def check_finite(model_dir: Path) -> int:
    """Raise if any floating tensor of the saved model holds NaN or inf; return the tensor count."""
    import torch
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise MergeCheckError(f"merge produced no safetensors weights in {model_dir}")
    count = 0
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():
                t = st.get_tensor(name)
                count += 1
                if t.is_floating_point() and not torch.isfinite(t).all():
                    raise MergeCheckError(f"merged tensor {name} in {f.name} contains NaN or inf")
    return count


def check_generates(model_dir: Path, max_new_tokens: int = 8) -> str:
    """Load the merged model with transformers and greedily generate a few tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmolt_hub.prompts import build_prompt

    try:
        tok = AutoTokenizer.from_pretrained(model_dir)
        # on a GPU machine the 7B check runs there; on CPU it loads in the saved dtype
        device_map = "auto" if torch.cuda.is_available() else None
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto", device_map=device_map)
    except Exception as e:
        raise MergeCheckError(f"merged model at {model_dir} does not load: {e}") from e
    prompt = build_prompt("smiles2caption", "CCO")
    inputs = tok(prompt, return_tensors="pt").to(model.device)
    with torch.no_grad():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id or tok.eos_token_id,
        )
    text = tok.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    del model
    return text


def post_merge_checks(model_dir: Path, generate: bool = True) -> dict[str, Any]:
    summary: dict[str, Any] = {"tensors": check_finite(model_dir)}
    if generate:
        summary["sample_generation"] = check_generates(model_dir)
    return summary
