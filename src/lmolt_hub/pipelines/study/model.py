"""The cpu-study's model: a small Llama and a byte-level BPE tokenizer trained on the ancestor's
pretraining text.

The modality tags and the fixed parts of the two instruction templates are added as whole tokens:
the bases read the same prompt text as the Meditron path, in ~2 tokens instead of ~100, which is
what lets a CPU train on every pair within the study's budget.
"""

from __future__ import annotations

from collections.abc import Iterable

from lmolt_hub.prompts import TEMPLATES


def template_pieces() -> list[str]:
    """The text around ``{source}`` in each direction's template (prefix, suffix)."""
    return [piece for t in TEMPLATES.values() for piece in t.split("{source}")]


def build_tokenizer(text: Iterable[str], vocab_size: int, tags: tuple[str, ...] = ()):
    """Byte-level BPE on ``text`` plus ``tags`` and the template pieces as single tokens (deterministic)."""
    from lmolt_hub.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer(vocab_size, corpus=text, whole_tokens=(*tags, *template_pieces()))


def build_model(tokenizer, hidden_size: int, num_layers: int, seed: int = 0):
    """The random-init small Llama (4 heads, MLP 2x wide; ``tiny.build_tiny_llama``)."""
    from lmolt_hub.tiny import build_tiny_llama

    return build_tiny_llama(tokenizer, seed=seed, hidden_size=hidden_size, num_layers=num_layers)
