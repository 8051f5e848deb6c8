"""Tiny models built from config, with a tokenizer trained on the bundled data.

They let every feature run offline on a laptop CPU in seconds: the quickstart
and the tests train, merge, push and evaluate them exactly like the 7B models.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from lmolt_hub.resources import cache_dir, chebi20_split

SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def _corpus(splits: tuple[str, ...] = ("test", "validation")) -> Iterator[str]:
    for split in splits:
        with open(chebi20_split(split), encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                yield row["SMILES"]
                yield row["description"]


def build_tiny_tokenizer(
    vocab_size: int = 1024,
    splits: tuple[str, ...] = ("test", "validation"),
    whole_tokens: tuple[str, ...] = (),
    corpus: Iterable[str] | None = None,
):
    """A byte-level BPE tokenizer trained on the bundled ChEBI-20 ``splits`` (deterministic).

    ``whole_tokens`` are added as single tokens (the cpu study adds its template pieces, so a prompt
    costs a few tokens instead of about a hundred). ``corpus`` replaces the ChEBI-20 text (the study's
    ancestor trains its tokenizer on its own pretraining text).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(splits) if corpus is None else corpus, trainer=trainer)
    if whole_tokens:
        tok.add_tokens([AddedToken(p, normalized=False, special=False) for p in whole_tokens])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
    fast.padding_side = "left"  # generation pads on the left; trainers set their own side
    fast.model_max_length = 1024
    return fast


def build_tiny_llama(tokenizer, seed: int = 0, hidden_size: int = 64, num_layers: int = 2):
    """A random-init Llama small enough to train on CPU in seconds."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    return model


def save_tiny_llama(path: Path, seed: int = 0) -> Path:
    """Write a tiny Llama with its tokenizer to ``path`` (safetensors) and return it."""
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_llama(tokenizer, seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_meditron(tokenizer=None, seed: int = 0, hidden_size: int = 64, num_layers: int = 2):
    """A random-init Llama in Meditron-7B's shape but tiny: the real Llama-2 vocabulary plus
    Meditron's 17 added tokens (vocab 32,017, ``llama_vocab.meditron_tokenizer``), F32 weights.

    Returns ``(model, tokenizer)``. Needs the test vocabulary (``python -m lmolt_hub.llama_vocab``).
    """
    from lmolt_hub.llama_vocab import meditron_tokenizer

    tokenizer = tokenizer or meditron_tokenizer()
    return build_tiny_llama(tokenizer, seed=seed, hidden_size=hidden_size, num_layers=num_layers), tokenizer


def save_tiny_t5(path: Path, d_model: int = 16) -> Path:
    """Write a random-init T5 (a MolT5-shaped seq2seq stand-in) with the tiny tokenizer to ``path``."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = build_tiny_tokenizer()
    config = T5Config(
        vocab_size=len(tok),
        d_model=d_model,
        d_ff=d_model * 2,
        d_kv=8,
        num_layers=1,
        num_heads=2,
        decoder_start_token_id=tok.pad_token_id,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    path.mkdir(parents=True, exist_ok=True)
    T5ForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def push_tiny_base(repo_id: str, seed: int = 0, private: bool = False) -> str:
    """Push a tiny Llama + tokenizer to ``repo_id`` (a base model for tiny recipes); returns the commit sha."""
    import tempfile

    from lmolt_hub.hub.push import push_folder

    with tempfile.TemporaryDirectory() as tmp:
        save_tiny_llama(Path(tmp), seed=seed)
        (Path(tmp) / "README.md").write_text(
            "---\nlicense: apache-2.0\nlibrary_name: transformers\ntags: [lmolt, tiny, test-model]\n---\n\n"
            f"# Tiny Llama (seed {seed})\n\nA random-initialised 2-layer, 64-wide Llama with a 1024-token BPE "
            "tokenizer trained on the bundled ChEBI-20 text, built by "
            f"`lmolt_hub.tiny.save_tiny_llama(path, seed={seed})` (lmolt-hub, `tiny://llama?seed={seed}`). "
            "For tests and the offline quickstart only: it has learnt nothing.\n",
            encoding="utf-8",
        )
        return push_folder(tmp, repo_id, private=private, message=f"tiny Llama (seed {seed})")


NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}  # as cross-encoder/nli-deberta-v3-base


def build_tiny_nli(seed: int = 0, hidden_size: int = 32, num_layers: int = 2):
    """A random-init DeBERTa-v2 NLI cross-encoder (3 labels) and a pair tokenizer that work offline.

    Returns ``(model, tokenizer)``; stands in for ``cross-encoder/nli-deberta-v3-base`` in tests.
    """
    import torch
    from tokenizers.processors import TemplateProcessing
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    tokenizer = build_tiny_tokenizer()
    bos, eos = SPECIAL_TOKENS["bos_token"], SPECIAL_TOKENS["eos_token"]
    tokenizer._tokenizer.post_processor = TemplateProcessing(  # "<s> premise </s> hypothesis </s>"
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} $B:1 {eos}:1",
        special_tokens=[(bos, tokenizer.bos_token_id), (eos, tokenizer.eos_token_id)],
    )
    tokenizer.cls_token, tokenizer.sep_token = bos, eos
    tokenizer.padding_side = "right"
    tokenizer.model_max_length = 512
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=512,
        type_vocab_size=0,
        relative_attention=True,
        position_buckets=32,
        pos_att_type=["p2c", "c2p"],
        pad_token_id=tokenizer.pad_token_id,
        num_labels=3,
        id2label=dict(NLI_LABELS),
        label2id={v: k for k, v in NLI_LABELS.items()},
    )
    torch.manual_seed(seed)
    return DebertaV2ForSequenceClassification(config).eval(), tokenizer


TINY_NLI_CARD = """---
license: apache-2.0
library_name: transformers
pipeline_tag: text-classification
tags: [lmolt, nli, tiny, test-model]
---
# Tiny NLI stand-in (random weights)

A tiny, randomly initialised DeBERTa-v2 NLI cross-encoder with the labels of
`cross-encoder/nli-deberta-v3-base` (contradiction, entailment, neutral), which stands in for that
model so that the hallucination metric runs offline in tests and in the lmolt-hub quickstart.
Its entailment probabilities mean nothing: results scored with it are a check of the pipeline,
never a measurement. Seed {seed}; built by `lmolt_hub.tiny.save_tiny_nli`.
"""


def save_tiny_nli(path: Path, seed: int = 0) -> Path:
    """Write the tiny NLI cross-encoder, its tokenizer and its card to ``path`` and return it."""
    model, tokenizer = build_tiny_nli(seed=seed)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "README.md").write_text(TINY_NLI_CARD.format(seed=seed), encoding="utf-8")
    return path


class TinySpecError(ValueError):
    """A ``tiny://`` reference that names no tiny model."""


def tiny_model_path(spec: str) -> Path:
    """Build (once) and return the directory of the tiny model named by ``tiny://llama[?seed=N]``.

    Shared by training (a recipe's base model) and merging (a merge input).
    """
    url = urlparse(spec)
    if url.netloc != "llama":
        raise TinySpecError(f"unknown tiny model {spec!r}; use tiny://llama or tiny://llama?seed=N")
    seed = int(parse_qs(url.query).get("seed", ["0"])[0])
    path = cache_dir("tiny-models", f"llama-seed{seed}")
    if not (path / "config.json").exists():
        from lmolt_hub.io import atomic_dir

        with atomic_dir(path, keep_existing=True) as tmp:  # concurrent ranks may build it at once
            save_tiny_llama(tmp, seed=seed)
    return path
