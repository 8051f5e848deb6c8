"""The paper's instruction templates (Gkoumas & Liakata 2024, Appendix C).

One module for data, training and evaluation alike. ``TEMPLATE_VERSION`` is
recorded in every dataset and result; bump it whenever a template changes.
"""

from __future__ import annotations

from typing import Literal

Direction = Literal["smiles2caption", "caption2smiles"]
DIRECTIONS: tuple[Direction, ...] = ("smiles2caption", "caption2smiles")
TEMPLATE_VERSION = "gkoumas2024-appendix-c-v1"

_HEADER = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
)

TEMPLATES: dict[str, str] = {
    "smiles2caption": _HEADER
    + "Instruction: You are a researcher. You can come up with captions based on your existing "
    "knowledge. Captions are given against the following input. You should be as detailed as "
    "possible.\n\n"
    "Input: Molecule: {source}\n"
    "In that molecule, could you formulate a caption about?\n\n"
    "Response: ",
    "caption2smiles": _HEADER
    + "Instruction: You are a researcher. You can come up with molecule smile strings based on "
    "your existing knowledge. Molecule smile strings are given against the following input. You "
    "should be as detailed as possible.\n\n"
    "Input: Caption: {source}\n"
    "In that caption, could you generate a molecule smile string?\n\n"
    "Response: ",
}

# Marks the start of a new section; generation is cut there (see the harness).
SECTION_MARKERS: tuple[str, ...] = (
    "\n\nInstruction:",
    "\n\nInput:",
    "\n\nResponse:",
    "\nBelow is an instruction",
)


def check_direction(direction: str) -> Direction:
    if direction not in TEMPLATES:
        raise ValueError(f"unknown direction {direction!r}; expected one of {', '.join(DIRECTIONS)}")
    return direction  # type: ignore[return-value]


def build_prompt(direction: str, source: str) -> str:
    """The prompt for one source (a SMILES for smiles2caption, a caption otherwise)."""
    return TEMPLATES[check_direction(direction)].format(source=source.strip())


def source_target(direction: str, molecule: str, caption: str) -> tuple[str, str]:
    """(source, target) of a molecule-caption pair for ``direction``."""
    check_direction(direction)
    return (molecule, caption) if direction == "smiles2caption" else (caption, molecule)
