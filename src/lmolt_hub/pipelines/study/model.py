"""The cpu-study's random-init model: a small Llama and a BPE tokenizer trained on the training text.

The tokenizer is trained on ChEBI-20 ``test.txt`` only (the study's training file; the held-out
validation.txt never shapes it). The fixed parts of the two instruction templates are added as
whole tokens: the model reads the same prompt text as the Meditron path, in ~2 tokens instead of
~100, which is what lets a CPU train on every pair within the study's budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmolt_hub.prompts import TEMPLATES
from lmolt_hub.tiny import build_tiny_llama, build_tiny_tokenizer


def template_pieces() -> list[str]:
    """The text around ``{source}`` in each direction's template (prefix, suffix)."""
    return [piece for t in TEMPLATES.values() for piece in t.split("{source}")]


def build_study_tokenizer(vocab_size: int = 1024):
    """Byte-level BPE trained on test.txt, plus the template pieces as single tokens (deterministic)."""
    return build_tiny_tokenizer(vocab_size, splits=("test",), whole_tokens=tuple(template_pieces()))


def save_init_model(
    path: Path, hidden_size: int, num_layers: int, vocab_size: int, seed: int = 0
) -> dict[str, Any]:
    """Write the random-init Llama, its tokenizer and a card to ``path``; return its shape."""
    tokenizer = build_study_tokenizer(vocab_size)
    model = build_tiny_llama(tokenizer, seed=seed, hidden_size=hidden_size, num_layers=num_layers)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    n_params = sum(p.numel() for p in model.parameters())
    shape = {"hidden_size": hidden_size, "num_layers": num_layers, "vocab": len(tokenizer),
             "parameters": n_params, "seed": seed}  # fmt: skip
    (path / "README.md").write_text(
        "---\nlicense: cc-by-4.0\nlibrary_name: transformers\ntags: [lmolt, cpu-study, random-init]\n---\n\n"
        f"# lmolt cpu-study random init\n\nA random-initialised {num_layers}-layer, {hidden_size}-wide Llama "
        f"({n_params:,} parameters, seed {seed}) with a {len(tokenizer)}-token byte-level BPE tokenizer "
        "trained on ChEBI-20 test.txt (the study's training text; MolT5 licence) plus the fixed parts of the "
        "two instruction templates as whole tokens. Built by `lmolt_hub.pipelines.study.model.save_init_model`. "
        "The common ancestor of the study's two base models; it has learnt nothing.\n",
        encoding="utf-8",
    )
    return shape
