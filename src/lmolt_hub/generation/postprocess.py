"""The one cleaning step between a raw continuation and the answer that is kept.

Evaluated outputs (the harness), rejected outputs (the data stage's negatives) and the
leaderboard's spot check all go through ``postprocess``, so they are cleaned alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmolt_hub.prompts import SECTION_MARKERS


def stop_strings(tokenizer: Any) -> tuple[str, ...]:
    """Text of the tokens that end an answer (EOS, pad), for ``postprocess``."""
    return tuple(dict.fromkeys(s for s in (tokenizer.eos_token, tokenizer.pad_token) if s))


def postprocess(raw: str, prompt: str = "", eos_tokens: Sequence[str] = ("</s>",)) -> str:
    """The scored answer of one raw continuation.

    1. Strip the prompt if the backend echoed it (some return prompt + continuation).
    2. Stop at the first EOS token text (``eos_tokens``; the tokenizer's EOS and pad).
    3. Stop at the next section marker of the template (``prompts.SECTION_MARKERS``,
       e.g. ``"### Instruction:"``): a model that keeps going writes a new example there.
    4. Trim surrounding whitespace.
    """
    text = raw
    for echo in (prompt, prompt.rstrip()):
        if echo and text.startswith(echo):
            text = text[len(echo) :]
            break
    cut = len(text)
    for stop in (*[e for e in eos_tokens if e], *SECTION_MARKERS):
        i = text.find(stop)
        if i != -1:
            cut = min(cut, i)
    return text[:cut].strip()
