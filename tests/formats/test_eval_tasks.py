"""The evaluation set from local files, prompt formats, and clear errors on bad input."""

from __future__ import annotations

import json

import pytest

from lmolt_hub.formats.eval_set import EvalSetError, load_eval_set
from lmolt_hub.prompts import build_prompt, build_tasks, format_prompt, resolve_prompt_format
from lmolt_hub.resources import chebi20_split


def test_chebi20_tsv_maps_its_columns_and_limit_applies():
    es = load_eval_set(str(chebi20_split("validation")), limit=3)
    assert len(es.rows) == 3 and es.local and es.limit == 3
    assert set(es.rows[0]) == {"id", "molecule", "caption"}
    c2s, s2c = build_tasks(es, ["caption2smiles", "smiles2caption"])
    assert c2s.references == [r["molecule"] for r in es.rows]
    assert s2c.prompts[0] == build_prompt("smiles2caption", es.rows[0]["molecule"])


def test_jsonl_with_missing_column_names_it(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text(json.dumps({"id": "1", "smiles": "CCO"}) + "\n")
    with pytest.raises(EvalSetError, match="missing column 'caption'"):
        load_eval_set(str(path))
    path.write_text(json.dumps({"id": "1", "molecule": "CCO", "caption": " "}) + "\n")
    with pytest.raises(EvalSetError, match="row 0 has an empty caption"):
        load_eval_set(str(path))
    with pytest.raises(EvalSetError, match="does not exist"):
        load_eval_set(str(tmp_path / "none.jsonl"))


def test_prompt_formats(tiny_llama_dir):
    assert resolve_prompt_format("auto", seq2seq=True) == "raw"
    assert resolve_prompt_format("auto", seq2seq=False) == "card"
    assert resolve_prompt_format("paper", seq2seq=False) == "card"  # the earlier name of the same prompt
    assert format_prompt("caption2smiles", " x ", "raw") == "x"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    with pytest.raises(EvalSetError, match="no chat template"):
        format_prompt("caption2smiles", "x", "chat", tok)
    tok.chat_template = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}<|assistant|>"
    chat = format_prompt("caption2smiles", "x", "chat", tok)
    assert chat.startswith("<|user|>Below is an instruction") and chat.endswith("?<|assistant|>")
