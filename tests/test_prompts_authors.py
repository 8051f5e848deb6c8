"""The authors' three prompt layouts, byte for byte, against their own code.

``tests/data/authors_prompts.txt`` holds verbatim copies of the f-strings in the authors' files
(GitHub gkoumasd/alignment_tuning_LLMS; each block names its file and lines):

- ``dpo.py`` lines 67-75 and 78-85: the text their DPO and CPO adapters were trained on (``authors``);
- ``inference_pretrained.py`` lines 85-88 and 90-94: the prompts that generated the outputs behind
  the paper's numbers (``authors-inference``);
- ``sft.py`` lines 47-51, 56-60 (instruction and input) and 80-87 (``format_instruction``): their SFT
  training text (``authors-sft``).

Each block is executed as the authors' Python does it (the f-strings evaluated with a source and a
target), and the result must equal lmolt-hub's prompt format exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmolt_hub.prompts import (
    AUTHORS_LAYOUTS,
    DIRECTIONS,
    PROMPT_FORMATS,
    build_prompt,
    format_prompt,
    resolve_prompt_format,
    template_version,
)

EXCERPTS = Path(__file__).parent / "data" / "authors_prompts.txt"
SOURCE = {"smiles2caption": "CC(=O)OC1=CC=CC=C1C(=O)O", "caption2smiles": "The molecule is an aspirin."}
TARGET = "THE ANSWER"
BLOCK = re.compile(r"^=== (\S+):(\d+)-(\d+) (\S+)\n", flags=re.MULTILINE)


def _blocks() -> dict[tuple[str, str], str]:
    """(file, direction or "template") -> the copied lines."""
    parts = BLOCK.split(EXCERPTS.read_text(encoding="utf-8"))[1:]
    return {(parts[i], parts[i + 3]): parts[i + 4] for i in range(0, len(parts), 5)}


def _run(code: str, **names: object) -> dict[str, object]:
    """Execute copied statements as they stand (their first lines share one indentation)."""
    env = dict(names)
    exec("if True:\n" + code, env)  # noqa: S102 - the authors' own lines, copied into this repository
    return env


def _theirs(fmt: str, direction: str) -> str:
    """The prompt the authors' file builds for SOURCE[direction] (for sft.py: text before the answer)."""
    blocks = _blocks()
    source = SOURCE[direction]
    if fmt == "authors":
        return _run(blocks["dpo.py", direction], source=source)["prompt_template"]
    if fmt == "authors-inference":
        return _run(blocks["inference_pretrained.py", direction], source=source)["prompt_template"]
    parts = _run(blocks["sft.py", direction], source=source, target=TARGET)
    data = {"instruction": [parts["instruction"]], "input": [parts["input"]], "output": [parts["output"]]}
    full = _run(blocks["sft.py", "template"], data=data, i=0)["prompt"]
    assert full.endswith(TARGET)
    return full[: -len(TARGET)]


def test_the_excerpts_are_the_cited_lines():
    blocks = _blocks()
    assert set(blocks) == {
        ("dpo.py", "smiles2caption"), ("dpo.py", "caption2smiles"),
        ("inference_pretrained.py", "smiles2caption"), ("inference_pretrained.py", "caption2smiles"),
        ("sft.py", "smiles2caption"), ("sft.py", "caption2smiles"), ("sft.py", "template"),
    }  # fmt: skip
    # trailing spaces survived the copy (inference_pretrained.py line 90, dpo.py line 81, sft.py line 83)
    assert "further context. \n" in blocks["inference_pretrained.py", "caption2smiles"]
    assert "existing knowledge. \n" in blocks["dpo.py", "caption2smiles"]
    assert '{data["instruction"][i]} \n' in blocks["sft.py", "template"]


@pytest.mark.parametrize("fmt", list(AUTHORS_LAYOUTS))
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_each_authors_layout_is_their_code_byte_for_byte(fmt: str, direction: str):
    ours = format_prompt(direction, SOURCE[direction], fmt)
    assert ours == _theirs(fmt, direction)
    assert ours == build_prompt(direction, SOURCE[direction], authors=fmt)
    assert fmt in PROMPT_FORMATS and resolve_prompt_format(fmt, seq2seq=False) == fmt
    assert template_version(fmt) == AUTHORS_LAYOUTS[fmt][1]


def test_the_three_layouts_differ_where_the_authors_code_does():
    s2c = {fmt: format_prompt("smiles2caption", "CCO", fmt) for fmt in AUTHORS_LAYOUTS}
    assert len(set(s2c.values())) == 3
    assert "\n" + " " * 20 + "### Input:\nMolecule: CCO \n" in s2c["authors-inference"]
    assert s2c["authors-inference"].endswith("caption about?\n\n\n### Response:")
    assert s2c["authors"].endswith("caption about?\n\n\n\n" + " " * 12 + "### Response:")
    # sft.py: the answer follows "### Response:\n", a line break and 12 spaces
    assert s2c["authors-sft"].endswith("### Response:\n\n" + " " * 12)


def test_results_accept_every_prompt_format():
    import jsonschema

    from lmolt_hub.formats.results import RESULTS_SCHEMA

    allowed = RESULTS_SCHEMA["properties"]["prompt_format"]["enum"]
    assert set(PROMPT_FORMATS) - {"auto"} <= set(allowed)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("alpaca", RESULTS_SCHEMA["properties"]["prompt_format"])
