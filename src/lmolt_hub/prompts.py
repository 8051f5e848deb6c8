"""The instruction templates: the prompts the starting models were fine-tuned with.

One module for data, training and evaluation alike. ``TEMPLATES`` are the
prompts on the Hub cards of ``language-plus-molecules/Meditron7b-caption2smiles-LPM24``
and ``...-smiles2caption-LPM24``, byte for byte (the paper's Appendix C is a PDF
rendering of the same words that lost the markdown). The authors' code
(GitHub gkoumasd/alignment_tuning_LLMS) wrote the same words in three layouts,
each kept here byte for byte (``AUTHORS_LAYOUTS``, tests/test_prompts_authors.py
checks them against their files): ``dpo.py``'s, which trained their DPO and CPO
adapters (SLERP+CPO among them); ``inference_pretrained.py``'s (20-space
indents), which generated the outputs behind the paper's numbers; and ``sft.py``'s,
which trained their SFT adapter. ``TEMPLATE_VERSION`` is recorded in every
dataset and result; bump it whenever a template changes.

Token boundary: a prompt ends with ``"### Response:"`` (no trailing space) and
a completion is joined to it by ``join_completion`` (a leading space). With the
Llama-2 SentencePiece vocabulary a space always starts a new token, so the
prompt's tokens are an exact prefix of the prompt+completion tokens in every
trainer and equal to what the harness feeds the model
(tests/test_prompt_boundary.py proves it on the real vocabulary).
"""

from __future__ import annotations

from lmolt_hub.formats.direction import DIRECTION_NAMES, Direction

DIRECTIONS = DIRECTION_NAMES  # the canonical names, from formats.direction
TEMPLATE_VERSION = "lpm24-card-v2"
AUTHORS_TEMPLATE_VERSION = "gkoumas2024-dpo-py-v1"  # AUTHORS_TEMPLATES (the ``authors`` prompt format)
RESPONSE_MARKER = "### Response:"  # every prompt ends with it, no trailing space

_HEADER = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
)

# The Hub cards' prompts; "%s" there is {source} here. Keep every byte: "come up captions", the
# space before "\n" after the source, three newlines, and no space after "### Response:".
TEMPLATES: dict[str, str] = {
    "smiles2caption": _HEADER
    + "### Instruction:\nYou are a researcher. You can come up captions based on your existing knowledge. "
    "Captions are given against the following input. You should be as detailed as possible.\n\n"
    "### Input:\nMolecule: {source} \nIn that molecule, could you formulate a caption about?\n\n\n"
    "### Response:",
    "caption2smiles": _HEADER
    + "### Instruction:\nYou are a researcher. You can come up molecule smile strings based on your existing "
    "knowledge. Molecule smile strings are given against the following input. You should be as detailed as "
    "possible.\n\n"
    "### Input:\nCaption: {source} \nIn that caption, could you generate a molecule smile string?\n\n\n"
    "### Response:",
}

# The authors' dpo.py f-strings (gkoumasd/alignment_tuning_LLMS), continuation lines indented by
# 12 spaces, a trailing space after "knowledge." in caption2smiles only. Their kto.py indents by 16
# and wraps the prompt in ChatML; inference_pretrained.py differs again. Only dpo.py's text trained
# the adapters the paper reports as DPO, CPO and the merges' DPO/CPO (SLERP+CPO among them).
_I = "\n" + " " * 12
AUTHORS_TEMPLATES: dict[str, str] = {
    "smiles2caption": "Below is an instruction that describes a task, paired with an input that provides "
    "further context." + _I + "Write a response that appropriately completes the request.\n\n"
    + _I + "### Instruction:\n" + _I + "You are a researcher. You can come up captions based on your existing "
    "knowledge." + _I + "Captions are given against the following input. You should be as detailed as "
    "possible.\n\n" + _I + "### Input:\n" + _I + "Molecule: {source} \n" + _I
    + "In that molecule, could you formulate a caption about?\n\n\n" + _I + "### Response:",
    "caption2smiles": "Below is an instruction that describes a task, paired with an input that provides "
    "further context." + _I + "Write a response that appropriately completes the request.\n\n"
    + _I + "### Instruction:\n" + _I + "You are a researcher. You can come up molecule smile strings based on "
    "your existing knowledge. " + _I + "Molecule smile strings are given against the following input. You "
    "should be as detailed as possible.\n\n" + _I + "### Input:\nCaption: {source} \n" + _I
    + "In that caption, could you generate a molecule smile string?\n\n\n" + _I + "### Response:",
}

# inference_pretrained.py's f-strings (lines 85-94), which generated the outputs the paper scored:
# continuation lines indented by 20 spaces, the instruction on the "### Instruction:" line after
# "\n " in smiles2caption, trailing spaces after "context." and "knowledge." in caption2smiles only.
_J = "\n" + " " * 20
INFERENCE_TEMPLATES: dict[str, str] = {
    "smiles2caption": "Below is an instruction that describes a task, paired with an input that provides "
    "further context." + _J + "Write a response that appropriately completes the request.\n\n" + _J
    + "### Instruction:\n You are a researcher. You can come up captions based on your existing knowledge. "
    "Captions are given against the following input. You should be as detailed as possible.\n\n" + _J
    + "### Input:\nMolecule: {source} \nIn that molecule, could you formulate a caption about?\n\n\n"
    "### Response:",
    "caption2smiles": "Below is an instruction that describes a task, paired with an input that provides "
    "further context. " + _J + "Write a response that appropriately completes the request.\n\n" + _J
    + "### Instruction:\nYou are a researcher. You can come up molecule smile strings based on your "
    "existing knowledge. " + _J + "Molecule smile strings are given against the following input. You "
    "should be as detailed as possible.\n\n" + _J
    + "### Input:\nCaption: {source} \nIn that caption, could you generate a molecule smile string?\n\n\n"
    "### Response:",
}

# sft.py's format_instruction (lines 80-87) around its instruction/input strings (lines 47-60): the
# text before the answer, which follows "### Response:\n", a line break and 12 spaces (their .strip()
# only touches the ends of prompt + answer). The prompt ends in whitespace, which a SentencePiece
# vocabulary may join to the answer's first token in training: the boundary tokens can differ at inference.
_K, _S = "\n" + " " * 12, "\n" + " " * 16
_SFT_PARTS: dict[str, tuple[str, str]] = {  # (instruction, input) of sft.py
    "smiles2caption": (
        "You are a researcher. You can come up captions based on your existing knowledge." + _S
        + "Captions are given against the following input. You should be as detailed as possible.\n\n",
        "Molecule: {source} \n" + _S + "In that molecule, could you formulate a caption about?\n\n\n",
    ),
    "caption2smiles": (
        "You are a researcher. You can come up molecule smile strings based on your existing knowledge." + _S
        + "Molecule smile strings are given against the following input. You should be as detailed as "
        "possible.\n\n",
        "Caption: {source} \n" + _S + "In that caption, could you generate a molecule smile string?\n\n\n",
    ),
}
SFT_TEMPLATES: dict[str, str] = {
    d: "Below is an instruction that describes a task, paired with an input that provides further context."
    + _K + "Write a response that appropriately completes the request.\n\n" + _K + "### Instruction:\n" + _K
    + instruction + " " + _K + "### Input:\n" + _K + source + " " + _K + "### Response:\n" + _K
    for d, (instruction, source) in _SFT_PARTS.items()
}

# The authors' layouts as prompt formats: name -> (templates, TEMPLATE_VERSION a result records).
AUTHORS_LAYOUTS: dict[str, tuple[dict[str, str], str]] = {
    "authors": (AUTHORS_TEMPLATES, AUTHORS_TEMPLATE_VERSION),  # dpo.py: trained DPO/CPO
    "authors-inference": (INFERENCE_TEMPLATES, "gkoumas2024-inference-pretrained-py-v1"),  # scored the paper
    "authors-sft": (SFT_TEMPLATES, "gkoumas2024-sft-py-v1"),  # trained SFT
}

# Marks the start of a new section; generation is cut there (see the harness). The "### " markers
# are the template's; the bare ones were template v1's (Appendix C as the PDF rendered it), kept so
# models trained on it are cut the same way.
SECTION_MARKERS: tuple[str, ...] = (
    "### Instruction:",
    "### Input:",
    "### Response:",
    "\nBelow is an instruction",
    "\n\nInstruction:",
    "\n\nInput:",
    "\n\nResponse:",
)


def check_direction(direction: str) -> Direction:
    """The ``Direction`` named ``direction`` (a canonical name); ValueError naming the choices else."""
    if direction not in DIRECTION_NAMES:
        raise ValueError(f"unknown direction {direction!r}; expected one of {', '.join(DIRECTIONS)}")
    return Direction(direction)


def build_prompt(direction: str, source: str, authors: bool | str = False) -> str:
    """The prompt for one source (a SMILES for smiles2caption, a caption otherwise).

    The source is stripped, as the authors' dpo.py/sft.py do (``.strip()`` after removing their task
    prefix; inference_pretrained.py read it from a CSV column as is); the cards' ``%s`` is the bare
    value. ``authors``: one of the authors' layouts by its prompt-format name (``AUTHORS_LAYOUTS``);
    ``True`` is ``"authors"``, their dpo.py text.
    """
    if authors:
        templates = AUTHORS_LAYOUTS["authors" if authors is True else authors][0]
    else:
        templates = TEMPLATES
    return templates[check_direction(direction)].format(source=source.strip())


def join_completion(completion: str) -> str:
    """The completion as trainers append it to the prompt: one leading space, so the prompt (ending
    "### Response:") ends on a token boundary and generation starts where training did."""
    return " " + completion.strip()


def source_target(direction: str, molecule: str, caption: str) -> tuple[str, str]:
    """(source, target) of a molecule-caption pair for ``direction``."""
    return check_direction(direction).source_target(molecule, caption)
