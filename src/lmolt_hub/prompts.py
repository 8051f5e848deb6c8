"""The instruction templates: the prompts the starting models were fine-tuned with.

One module for data, training and evaluation alike. ``TEMPLATES`` are the
prompts on the Hub cards of ``language-plus-molecules/Meditron7b-caption2smiles-LPM24``
and ``...-smiles2caption-LPM24``, byte for byte (the paper's Appendix C is a PDF
rendering of the same words that lost the markdown). ``AUTHORS_TEMPLATES`` are
the same words as the authors' ``dpo.py`` (DPO and CPO) wrote them, with the
indentation and line breaks of their f-strings: what their adapters were
trained on. ``TEMPLATE_VERSION`` is recorded in every dataset and result; bump
it whenever a template changes.

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


def build_prompt(direction: str, source: str, authors: bool = False) -> str:
    """The prompt for one source (a SMILES for smiles2caption, a caption otherwise).

    The source is stripped, as the authors' dpo.py/kto.py do (``.strip()`` after removing their task
    prefix); the cards' ``%s`` is the bare value. ``authors=True``: their dpo.py f-string text.
    """
    templates = AUTHORS_TEMPLATES if authors else TEMPLATES
    return templates[check_direction(direction)].format(source=source.strip())


def join_completion(completion: str) -> str:
    """The completion as trainers append it to the prompt: one leading space, so the prompt (ending
    "### Response:") ends on a token boundary and generation starts where training did."""
    return " " + completion.strip()


def source_target(direction: str, molecule: str, caption: str) -> tuple[str, str]:
    """(source, target) of a molecule-caption pair for ``direction``."""
    return check_direction(direction).source_target(molecule, caption)
