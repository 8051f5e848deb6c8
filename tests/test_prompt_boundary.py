"""The prompt ends on a token boundary with the real Llama-2 vocabulary (Meditron's tokenizer).

For every row, both directions, and each of SFT, DPO, CPO and KTO, trl's own dataset preparation
(the trainer's, run by constructing it) must see the prompt's token ids as an exact prefix of the
prompt + completion ids, and they must equal the ids the evaluation harness feeds the model.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmolt_hub.prompts import DIRECTIONS, RESPONSE_MARKER, join_completion
from lmolt_hub.training import datasets as tdata

from helpers.demo_triples import build_demo_triples, to_kto

METHODS = ("sft", "dpo", "cpo", "kto")


@pytest.fixture(scope="module")
def meditron_dir(meditron_tokenizer, tmp_path_factory) -> Path:
    """A tiny Meditron-shaped Llama (vocab 32,017, F32) saved with its tokenizer: trainers load refs by path."""
    from lmolt_hub.tiny import build_tiny_meditron

    model, tok = build_tiny_meditron(meditron_tokenizer, hidden_size=32, num_layers=1)
    path = tmp_path_factory.mktemp("tiny-meditron")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def triples():
    """Real triples from the bundled data (ChEBI-20 gold vs MolT5-large outputs), both directions."""
    import datasets

    dsd = build_demo_triples(n_per_direction=24)
    return datasets.concatenate_datasets([dsd["train"], dsd["validation"]])


def harness_ids(model_dir: Path, prompts: list[str]) -> dict[str, list[int]]:
    """The input ids the harness's hf backend passes to ``generate``, per prompt, padding removed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmolt_hub.generation.backends import GenerationParams, HFBackend

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    backend = HFBackend(model, AutoTokenizer.from_pretrained(model_dir), batch_size=8)
    seen: list[list[int]] = []
    real_generate = model.generate

    def spy(**kw):
        for ids, mask in zip(kw["input_ids"].tolist(), kw["attention_mask"].tolist(), strict=True):
            seen.append([i for i, m in zip(ids, mask, strict=True) if m])
        return real_generate(**kw)

    model.generate = spy
    order = backend.generate(prompts, GenerationParams(max_new_tokens=1))
    assert len(order) == len(prompts) == len(seen)
    by_text = {}
    for ids in seen:  # the backend sorts by length: map back by decoded text
        text = backend.tokenizer.decode(ids, skip_special_tokens=True)
        by_text[text] = ids
    return {p: by_text[p] for p in prompts}


def trl_views(method: str, model_dir: Path, ds, tmp_path: Path) -> list[dict]:
    """Per row: (prompt ids, prompt+completion ids) as ``method``'s trl trainer tokenised them."""
    from transformers import AutoTokenizer

    from lmolt_hub.training.config import method_classes

    tok = AutoTokenizer.from_pretrained(model_dir)
    config_cls, trainer_cls = method_classes(method)
    args = config_cls(output_dir=str(tmp_path / method), report_to=[], per_device_train_batch_size=2,
                      use_cpu=True, max_length=1024)  # fmt: skip
    trainer = trainer_cls(model=str(model_dir), args=args, train_dataset=ds, processing_class=tok)
    out = []
    for row in trainer.train_dataset:
        if method == "sft":
            n = next(i for i, label in enumerate(row["labels"]) if label != -100)  # the completion's start
            out.append({"prompt": row["input_ids"][:n], "full": [row["input_ids"]]})
        elif method == "dpo":
            p = row["prompt_ids"]
            out.append({"prompt": p, "full": [p + row["chosen_ids"], p + row["rejected_ids"]]})
        elif method == "cpo":
            p = row["prompt_input_ids"]
            out.append(
                {
                    "prompt": p,
                    "full": [row["chosen_input_ids"], row["rejected_input_ids"]],
                    "masked": [row["chosen_labels"].count(-100), row["rejected_labels"].count(-100)],
                }
            )
        else:
            p = row["prompt_ids"]
            out.append({"prompt": p, "full": [p + row["completion_ids"]]})
    return out


@pytest.mark.parametrize("method", METHODS)
def test_prompt_is_a_token_prefix_and_what_the_harness_feeds(method, meditron_dir, triples, tmp_path,
                                                             one_torch_thread):  # fmt: skip
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    raw = to_kto({"train": triples})["train"] if method == "kto" else triples
    ds = tdata.prepare(method, raw)
    assert all(p.endswith(RESPONSE_MARKER) for p in ds["prompt"])
    assert set(triples["direction"]) == set(DIRECTIONS)
    views = trl_views(method, meditron_dir, ds, tmp_path)
    assert len(views) == len(ds)  # trl dropped nothing
    expected = harness_ids(meditron_dir, list(dict.fromkeys(ds["prompt"])))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(meditron_dir)
    for prompt, view in zip(ds["prompt"], views, strict=True):
        alone = tok(prompt).input_ids  # the prompt tokenised alone, as trl does first
        assert view["prompt"] == alone == expected[prompt], prompt[-40:]
        assert alone[0] == tok.bos_token_id and tok.convert_ids_to_tokens(alone[-1]) == ":"
        for full in view["full"]:
            assert full[: len(alone)] == alone and len(full) > len(alone)
            assert tok.convert_ids_to_tokens(full[len(alone)]).startswith("▁")  # the answer's first token
        for n in view.get("masked", []):
            assert n == len(alone)  # CPO's labels mask exactly the prompt


def test_the_old_trailing_space_breaks_the_boundary(meditron_tokenizer, triples):
    """Negative controls. A prompt ending "Response: " (the earlier template) merges its space into the
    answer's first token (['▁'] alone, ['▁C', ...] joined). Joining without a space (the authors'
    dpo.py) merges ':' with a leading '[' of a SMILES (':[' is one Llama-2 token)."""
    tok = meditron_tokenizer
    prompt = triples[1]["prompt"]
    alone = tok(prompt).input_ids
    assert tok(prompt + "[C@H](O)C").input_ids[: len(alone)] != alone
    assert tok(prompt + join_completion("[C@H](O)C")).input_ids[: len(alone)] == alone
    broken = fixed = 0
    for row in triples:
        old_prompt = row["prompt"] + " "
        alone = tok(old_prompt).input_ids
        broken += tok(old_prompt + row["chosen"].strip()).input_ids[: len(alone)] != alone
        alone = tok(row["prompt"]).input_ids
        fixed += tok(row["prompt"] + join_completion(row["chosen"])).input_ids[: len(alone)] == alone
    assert broken == fixed == len(triples)
