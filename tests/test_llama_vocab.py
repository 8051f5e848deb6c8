"""The real Llama-2 SentencePiece vocabulary, offline: Meditron's tokenizer reproduces llama.cpp's
reference tokenisations (46/46) and has Meditron's 32,017 tokens."""

from __future__ import annotations

import pytest

from lmolt_hub import llama_vocab


def test_reference_tokenisations_46_of_46(meditron_tokenizer):
    cases = llama_vocab.reference_cases()
    assert len(cases) == 46
    wrong = [(text, ids, meditron_tokenizer.encode(text, add_special_tokens=False)) for text, ids in cases]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert wrong == []


def test_plain_gguf_load_gets_leading_spaces_wrong():
    """Why the normalizer is replaced: transformers' GGUF converter treats a leading space as the
    SentencePiece dummy prefix (' Hello' -> ['▁Hello']); Llama-2 keeps both (['▁', '▁Hello'])."""
    from transformers import AutoTokenizer

    if not llama_vocab.have_vocab():
        pytest.skip("the real Llama-2 vocabulary is not cached (see the meditron_tokenizer fixture)")
    plain = AutoTokenizer.from_pretrained(str(llama_vocab.vocab_dir()), gguf_file=llama_vocab.VOCAB)
    cases = dict(llama_vocab.reference_cases())
    assert plain.encode(" Hello", add_special_tokens=False) != cases[" Hello"] == [29871, 15043]
    assert sum(plain.encode(t, add_special_tokens=False) == ids for t, ids in cases.items()) < 46


def test_meditron_shape(meditron_tokenizer):
    tok = meditron_tokenizer
    assert len(tok) == llama_vocab.MEDITRON_VOCAB_SIZE == 32017
    assert tok.convert_tokens_to_ids(["<CLS>", "<PAD>", "[bib_ref]", "[/formula]"]) == [
        32000,
        32004,
        32005,
        32016,
    ]
    assert (tok.bos_token_id, tok.eos_token_id, tok.unk_token_id, tok.pad_token_id) == (1, 2, 0, 32004)
    assert tok("Hello").input_ids == [1, 15043]  # BOS added, no EOS: Llama-2's defaults
    assert tok.encode("[fig] x", add_special_tokens=False)[0] == tok.convert_tokens_to_ids("[fig]")


def test_fetch_is_idempotent_and_keeps_only_the_vocabulary(meditron_tokenizer, tmp_path, monkeypatch):
    """A second fetch does nothing (no pip call) when the files are there."""
    import shutil

    for name in llama_vocab.FILES:
        shutil.copy(llama_vocab.vocab_dir() / name, tmp_path / name)
    monkeypatch.setattr(llama_vocab.subprocess, "run", lambda *a, **k: pytest.fail("pip was called"))
    assert llama_vocab.fetch(tmp_path) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(llama_vocab.FILES)


def test_transformers_llama_class_tokenises_every_prompt_the_same(meditron_tokenizer, tmp_path):
    """Meditron's repo names tokenizer_class LlamaTokenizer, which transformers 5 rebuilds with a
    Metaspace pre-tokenizer: 31/46 reference cases (it drops a leading space's extra '▁'). On every
    lmolt prompt and prompt + answer (no leading space anywhere) it agrees with SentencePiece."""
    import json

    from transformers import AutoTokenizer

    from lmolt_hub.prompts import build_prompt, join_completion

    from helpers.demo_triples import build_demo_triples

    meditron_tokenizer.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**cfg, "tokenizer_class": "LlamaTokenizer"}))
    hub = AutoTokenizer.from_pretrained(tmp_path)
    assert type(hub).__name__ == "LlamaTokenizer" and len(hub) == 32017
    cases = llama_vocab.reference_cases()
    assert sum(hub.encode(t, add_special_tokens=False) == ids for t, ids in cases) == 31
    texts = []
    for row in build_demo_triples(24)["train"]:
        for answer in (row["chosen"], row["rejected"]):
            texts += [row["prompt"], row["prompt"] + join_completion(answer)]
        texts.append(build_prompt(row["direction"], row["source"], authors=True))
    assert [hub(t).input_ids for t in texts] == [meditron_tokenizer(t).input_ids for t in texts]
