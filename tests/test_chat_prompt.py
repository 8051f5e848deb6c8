"""``--prompt-format chat`` on an lmolt adapter: the chat template saved with its tokenizer
(prompts.py) takes the bare source and ``direction``; the harness passes exactly that, and the
model sees the card prompt byte for byte (issue 15, item 3)."""

from __future__ import annotations

import pytest

from lmolt_hub.evaluation import evaluate_model
from lmolt_hub.formats import results as R
from lmolt_hub.formats.eval_set import EvalSetError
from lmolt_hub.prompts import TEMPLATE_VERSION, build_prompt, chat_prompt, chat_template, join_completion
from lmolt_hub.training.publish import save_instruction_template

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lmolt_adapter(tiny_llama_dir, tmp_path_factory):
    """A tiny LoRA adapter whose tokenizer carries lmolt-hub's chat template, as training saves it."""
    from transformers import AutoTokenizer

    from helpers.models import make_tiny_adapter

    adapter_dir, _, _ = make_tiny_adapter(tiny_llama_dir, tmp_path_factory.mktemp("chat-adapter"))
    save_instruction_template(AutoTokenizer.from_pretrained(tiny_llama_dir), adapter_dir)
    return adapter_dir


def test_chat_format_end_to_end_on_an_lmolt_adapter(lmolt_adapter, tmp_path):
    from helpers.evaluation import local_eval_config

    cfg = local_eval_config(tmp_path, prompt_format="chat", directions=["smiles2caption", "caption2smiles"])
    doc = evaluate_model(str(lmolt_adapter), cfg)
    assert doc["prompt_format"] == "chat" and doc["model"]["is_adapter"]
    assert doc["template_version"] == TEMPLATE_VERSION
    run = R.run_dir(tmp_path / "results", str(lmolt_adapter), None)
    for direction in ("smiles2caption", "caption2smiles"):
        samples = R.read_samples(run / doc["samples"][direction])
        assert len(samples) == 3
        assert [s["prompt"] for s in samples] == [build_prompt(direction, s["source"]) for s in samples]


def test_the_chat_template_joins_an_answer_as_trainers_do(tiny_llama_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tok.chat_template = chat_template()
    turns = [
        {"role": "user", "content": " CCO "},
        {"role": "assistant", "content": "The molecule is ethanol."},
    ]
    text = tok.apply_chat_template(turns, direction="smiles2caption", tokenize=False)
    expected = (
        build_prompt("smiles2caption", "CCO") + join_completion("The molecule is ethanol.") + tok.eos_token
    )
    assert text == expected


def test_a_foreign_chat_template_gets_the_instruction(tiny_llama_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    with pytest.raises(EvalSetError, match="no chat template; use --prompt-format card"):
        chat_prompt("caption2smiles", "x", tok)
    tok.chat_template = "{% for m in messages %}[U]{{ m['content'] }}{% endfor %}[A]"
    text = chat_prompt("caption2smiles", "ethanol", tok)
    assert (
        text
        == "[U]" + build_prompt("caption2smiles", "ethanol").removesuffix("### Response:").rstrip() + "[A]"
    )
