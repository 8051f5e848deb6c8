"""The instruction templates (the prompts the starting models were fine-tuned with), the chat template
saved with every adapter, and the prompt formats the harness feeds a model: writer and reader in one file.

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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmolt_hub.formats.direction import DIRECTION_NAMES, Direction
from lmolt_hub.formats.eval_set import EvalSetError

if TYPE_CHECKING:
    from lmolt_hub.formats.eval_set import EvalSet

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
    "further context."
    + _I
    + "Write a response that appropriately completes the request.\n\n"
    + _I
    + "### Instruction:\n"
    + _I
    + "You are a researcher. You can come up captions based on your existing "
    "knowledge." + _I + "Captions are given against the following input. You should be as detailed as "
    "possible.\n\n"
    + _I
    + "### Input:\n"
    + _I
    + "Molecule: {source} \n"
    + _I
    + "In that molecule, could you formulate a caption about?\n\n\n"
    + _I
    + "### Response:",
    "caption2smiles": "Below is an instruction that describes a task, paired with an input that provides "
    "further context."
    + _I
    + "Write a response that appropriately completes the request.\n\n"
    + _I
    + "### Instruction:\n"
    + _I
    + "You are a researcher. You can come up molecule smile strings based on "
    "your existing knowledge. " + _I + "Molecule smile strings are given against the following input. You "
    "should be as detailed as possible.\n\n"
    + _I
    + "### Input:\nCaption: {source} \n"
    + _I
    + "In that caption, could you generate a molecule smile string?\n\n\n"
    + _I
    + "### Response:",
}

# inference_pretrained.py's f-strings (lines 85-94), which generated the outputs the paper scored:
# continuation lines indented by 20 spaces, the instruction on the "### Instruction:" line after
# "\n " in smiles2caption, trailing spaces after "context." and "knowledge." in caption2smiles only.
_J = "\n" + " " * 20
INFERENCE_TEMPLATES: dict[str, str] = {
    "smiles2caption": "Below is an instruction that describes a task, paired with an input that provides "
    "further context."
    + _J
    + "Write a response that appropriately completes the request.\n\n"
    + _J
    + "### Instruction:\n You are a researcher. You can come up captions based on your existing knowledge. "
    "Captions are given against the following input. You should be as detailed as possible.\n\n"
    + _J
    + "### Input:\nMolecule: {source} \nIn that molecule, could you formulate a caption about?\n\n\n"
    "### Response:",
    "caption2smiles": "Below is an instruction that describes a task, paired with an input that provides "
    "further context. "
    + _J
    + "Write a response that appropriately completes the request.\n\n"
    + _J
    + "### Instruction:\nYou are a researcher. You can come up molecule smile strings based on your "
    "existing knowledge. " + _J + "Molecule smile strings are given against the following input. You "
    "should be as detailed as possible.\n\n"
    + _J
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
        "You are a researcher. You can come up captions based on your existing knowledge."
        + _S
        + "Captions are given against the following input. You should be as detailed as possible.\n\n",
        "Molecule: {source} \n" + _S + "In that molecule, could you formulate a caption about?\n\n\n",
    ),
    "caption2smiles": (
        "You are a researcher. You can come up molecule smile strings based on your existing knowledge."
        + _S
        + "Molecule smile strings are given against the following input. You should be as detailed as "
        "possible.\n\n",
        "Caption: {source} \n" + _S + "In that caption, could you generate a molecule smile string?\n\n\n",
    ),
}
SFT_TEMPLATES: dict[str, str] = {
    d: "Below is an instruction that describes a task, paired with an input that provides further context."
    + _K
    + "Write a response that appropriately completes the request.\n\n"
    + _K
    + "### Instruction:\n"
    + _K
    + instruction
    + " "
    + _K
    + "### Input:\n"
    + _K
    + source
    + " "
    + _K
    + "### Response:\n"
    + _K
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


# ---------------------------------------------------------------- prompt formats (what the harness feeds)

# card: the base models' Hub-card prompt (lmolt-hub's template); authors: the same words as the
# authors' dpo.py f-strings (what their DPO/CPO adapters were trained on); authors-inference: their
# inference_pretrained.py layout (what the paper's numbers were generated with); authors-sft: their
# sft.py layout (their SFT adapter); chat: the checkpoint's chat template; raw: the bare source
# (MolT5); paper: the earlier name of card; auto: raw for seq2seq, card otherwise.
PROMPT_FORMATS = ("auto", "card", *AUTHORS_LAYOUTS, "chat", "raw", "paper")


def chat_template() -> str:
    """A Jinja chat template that renders the card prompt; pass ``direction=`` when applying it.

    Contract (shared with ``chat_prompt`` below): the user message is the bare
    source, ``direction`` names the task. Tags carry no whitespace control next to the template
    text, so the prompt (ending "### Response:") comes out byte-identical to build_prompt, and an
    assistant turn is joined as trainers join it (``prompts.join_completion``: one leading space).
    """
    branches = "".join(
        ("{% if " if i == 0 else "{% elif ")
        + f"direction == {d!r} %}}"
        + text.replace("{source}", "{{ message['content'] | trim }}")
        for i, (d, text) in enumerate(TEMPLATES.items())
    )
    return (
        "{% if direction is not defined %}{{ raise_exception(\"pass direction='smiles2caption' or "
        "'caption2smiles' to apply_chat_template\") }}{% endif %}"
        "{% for message in messages %}{% if message['role'] == 'user' %}"
        + branches
        + "{% else %}{{ raise_exception('unknown direction ' + direction) }}{% endif %}"
        "{% elif message['role'] == 'assistant' %} {{ message['content'] | trim }}{{ eos_token }}"
        "{% endif %}{% endfor %}"
    )


@dataclass
class Task:
    """One direction over the evaluation set: sources, references and prompts, aligned by row."""

    direction: str
    ids: list[str]
    sources: list[str]
    references: list[str]
    prompts: list[str]


def _takes_direction(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template reads a ``direction`` variable (lmolt-hub's does)."""
    import jinja2
    from jinja2 import meta

    try:
        ast = jinja2.Environment().parse(tokenizer.chat_template)
    except jinja2.TemplateError:
        return False
    return "direction" in meta.find_undeclared_variables(ast)


def chat_prompt(direction: str, source: str, tokenizer: Any) -> str:
    """The checkpoint's chat template applied to one source.

    One contract with the template lmolt-hub saves with every adapter (``chat_template`` above): the user
    message is the bare source and ``direction=`` names the task; the template renders the card
    prompt byte for byte. A foreign chat template (one that reads no ``direction``) gets the card's
    instruction, without its "### Response:" line, as the user message.
    """
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise EvalSetError(
            "--prompt-format chat: the checkpoint's tokenizer has no chat template; use --prompt-format card"
        )
    if _takes_direction(tokenizer):
        content = source.strip()
    else:
        content = build_prompt(direction, source).removesuffix(RESPONSE_MARKER).rstrip()
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}],
        direction=direction,
        tokenize=False,
        add_generation_prompt=True,
    )


def format_prompt(direction: str, source: str, prompt_format: str, tokenizer: Any = None) -> str:
    """The model input for ``prompt_format`` (see PROMPT_FORMATS; ``paper`` is ``card``)."""
    if prompt_format == "raw":
        return source.strip()
    if prompt_format in ("card", "paper"):
        return build_prompt(direction, source)
    if prompt_format in AUTHORS_LAYOUTS:
        return build_prompt(direction, source, authors=prompt_format)
    if prompt_format == "chat":
        return chat_prompt(direction, source, tokenizer)
    raise EvalSetError(
        f"unknown prompt format {prompt_format!r}; expected one of {', '.join(PROMPT_FORMATS)}"
    )


def resolve_prompt_format(prompt_format: str, seq2seq: bool) -> str:
    """``auto``: the bare source for seq2seq models (MolT5 was trained on it), the card prompt otherwise.

    ``paper`` (the name before template v2) resolves to ``card``, so results always name ``card``.
    """
    if prompt_format not in PROMPT_FORMATS:
        raise EvalSetError(
            f"unknown prompt format {prompt_format!r}; expected one of {', '.join(PROMPT_FORMATS)}"
        )
    if prompt_format == "auto":
        return "raw" if seq2seq else "card"
    return "card" if prompt_format == "paper" else prompt_format


def template_version(prompt_format: str) -> str | None:
    """The TEMPLATE_VERSION a result records for ``prompt_format`` (None: no lmolt-hub template)."""
    if prompt_format in ("card", "paper", "chat"):
        return TEMPLATE_VERSION
    if prompt_format in AUTHORS_LAYOUTS:
        return AUTHORS_LAYOUTS[prompt_format][1]
    return None


def build_tasks(
    eval_set: EvalSet,
    directions: list[str] | tuple[str, ...] = DIRECTIONS,
    prompt_format: str = "card",
    tokenizer: Any = None,
) -> list[Task]:
    tasks = []
    for direction in directions:
        check_direction(direction)
        ids, sources, refs, prompts = [], [], [], []
        for row in eval_set.rows:
            source, target = source_target(direction, row["molecule"], row["caption"])
            ids.append(row["id"])
            sources.append(source)
            refs.append(target)
            prompts.append(format_prompt(direction, source, prompt_format, tokenizer))
        tasks.append(Task(direction, ids, sources, refs, prompts))
    return tasks
