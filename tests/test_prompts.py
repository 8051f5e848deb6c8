"""The instruction templates: the Hub cards' prompts byte for byte, and the authors' dpo.py variant."""

from __future__ import annotations

import pytest

from lmolt_hub.formats.eval_set import EvalSetError
from lmolt_hub.prompts import (
    AUTHORS_TEMPLATE_VERSION,
    SECTION_MARKERS,
    TEMPLATE_VERSION,
    build_prompt,
    format_prompt,
    join_completion,
    resolve_prompt_format,
    template_version,
)

# As printed on the cards of language-plus-molecules/Meditron7b-{caption2smiles,smiles2caption}-LPM24.
CARD = {
    "caption2smiles": "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\nYou are a "
    "researcher. You can come up molecule smile strings based on your existing knowledge. Molecule smile "
    "strings are given against the following input. You should be as detailed as possible.\n\n### Input:\n"
    "Caption: %s \nIn that caption, could you generate a molecule smile string?\n\n\n### Response:",
    "smiles2caption": "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\nYou are a "
    "researcher. You can come up captions based on your existing knowledge. Captions are given against the "
    "following input. You should be as detailed as possible.\n\n### Input:\nMolecule: %s \nIn that "
    "molecule, could you formulate a caption about?\n\n\n### Response:",
}

# The authors' dpo.py (gkoumasd/alignment_tuning_LLMS), data_format(), as its f-strings evaluate.
AUTHORS_S2C = """Below is an instruction that describes a task, paired with an input that provides further context.
            Write a response that appropriately completes the request.\n\n
            ### Instruction:\n
            You are a researcher. You can come up captions based on your existing knowledge.
            Captions are given against the following input. You should be as detailed as possible.\n\n
            ### Input:\n
            Molecule: CCO \n
            In that molecule, could you formulate a caption about?\n\n\n
            ### Response:"""


@pytest.mark.parametrize("direction", sorted(CARD))
def test_default_template_is_the_card_prompt_byte_for_byte(direction):
    assert build_prompt(direction, "CCO") == CARD[direction] % "CCO"
    assert (
        build_prompt(direction, "  CCO\n") == CARD[direction] % "CCO"
    )  # the source is stripped, as the authors did
    assert TEMPLATE_VERSION == "lpm24-card-v2"


def test_authors_variant_keeps_their_fstring_whitespace():
    assert build_prompt("smiles2caption", "CCO", authors=True) == AUTHORS_S2C
    c2s = build_prompt("caption2smiles", "x", authors=True)
    assert "based on your existing knowledge. \n            Molecule smile" in c2s  # their trailing space
    assert c2s.endswith("?\n\n\n\n            ### Response:") and "### Input:\nCaption: x \n" in c2s


def test_section_markers_match_the_template():
    prompt = build_prompt("caption2smiles", "x")
    assert all(m in prompt for m in SECTION_MARKERS if m.startswith("###"))
    assert prompt.endswith(SECTION_MARKERS[2])
    from lmolt_hub.generation.postprocess import postprocess

    assert postprocess(" CCO\n\n### Instruction:\nYou are", prompt) == "CCO"
    assert postprocess(prompt + " The molecule is X.\n\n\n### Response: more", prompt) == "The molecule is X."


def test_prompt_formats_and_versions():
    assert format_prompt("smiles2caption", "CCO", "card") == format_prompt("smiles2caption", "CCO", "paper")
    assert format_prompt("smiles2caption", "CCO", "authors") == AUTHORS_S2C
    assert [resolve_prompt_format(f, False) for f in ("auto", "card", "paper", "authors", "chat")] == [
        "card", "card", "card", "authors", "chat"]  # fmt: skip
    assert template_version("card") == TEMPLATE_VERSION and template_version("raw") is None
    assert template_version("authors") == AUTHORS_TEMPLATE_VERSION
    with pytest.raises(EvalSetError, match="unknown prompt format 'alpaca'"):
        resolve_prompt_format("alpaca", False)


def test_completion_join():
    assert join_completion("CCO") == join_completion(" CCO\n") == " CCO"
