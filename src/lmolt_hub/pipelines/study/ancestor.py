"""The study's generalist ancestor (the Meditron-7B analog): one small Llama pretrained with a causal
LM objective on unpaired English and unpaired SMILES (``corpus.py``), from which both bases are
fine-tuned.

Documents are ``<text> ...</s>`` or ``<smiles> ...</s>``, shuffled per epoch (seeded) and packed into
fixed-length blocks. The token budget (steps x batch x block) is fixed in advance, not by time;
a checkpoint every ``save_every`` steps lets an interrupted run resume exactly where it stopped.
Reported: held-out perplexity per modality (ancestor and its random init) and the RDKit validity
of unconditional SMILES samples (sampled after ``<smiles>``, temperature 1).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lmolt_hub.pipelines.study.corpus import (
    LICENCES,
    MODALITY_TAG,
    SMILES_TAG,
    TEXT_TAG,
    Corpus,
    build_corpus,
)
from lmolt_hub.pipelines.study.model import build_model, build_tokenizer


@dataclass(frozen=True)
class AncestorScale:
    hidden_size: int = 128
    num_layers: int = 4
    vocab_size: int = 2048
    block: int = 128  # tokens per packed sequence
    batch_size: int = 32
    # 16.4M tokens (2.1 epochs of the corpus). Raised from 1,000 steps (4.1M) when the first run on a
    # free machine showed 1,000 steps take 5 of the ancestor's 60 minutes; decided before any study
    # claim was computed, and the shape is unchanged (so is the study's own cost).
    steps: int = 4000
    lr: float = 3e-3
    warmup: float = 0.03
    zinc_n: int = 120_000
    heldout_n: int = 300
    english_limit: int | None = None
    samples: int = 200
    sample_tokens: int = 96
    threads: int = 2
    save_every: int = 50
    seed: int = 0


TINY_ANCESTOR = AncestorScale(hidden_size=32, num_layers=1, vocab_size=400, block=64, batch_size=8, steps=12,
                              zinc_n=0, heldout_n=16, english_limit=2000, samples=16, sample_tokens=24,
                              threads=1, save_every=5)  # fmt: skip


def corpus_tokenizer(corpus: Corpus, vocab_size: int):
    """The study tokenizer, trained on the pretraining text (training documents only)."""
    return build_tokenizer(
        (d for docs in corpus.train.values() for d in docs), vocab_size, (TEXT_TAG, SMILES_TAG)
    )


def encode(tokenizer, corpus: Corpus, part: str = "train") -> dict[str, list[list[int]]]:
    """modality -> token ids of each document: tag, text, eos."""
    out = {}
    for modality, docs in getattr(corpus, part).items():
        tag = tokenizer.convert_tokens_to_ids(MODALITY_TAG[modality])
        ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
        out[modality] = [[tag, *x, tokenizer.eos_token_id] for x in ids]
    return out


def epoch_blocks(docs: list[list[int]], block: int, epoch: int, seed: int):
    """Every document in a seeded order for ``epoch``, concatenated and cut into ``block``-token rows."""
    import torch

    order = list(range(len(docs)))
    random.Random(seed * 1_000 + epoch).shuffle(order)
    flat = [t for i in order for t in docs[i]]
    n = len(flat) // block
    return torch.tensor(flat[: n * block], dtype=torch.long).view(n, block)


def _schedule(scale: AncestorScale) -> Callable[[int], float]:
    warm = max(1, int(scale.warmup * scale.steps))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, scale.steps - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: an interruption leaves the previous checkpoint whole


def pretrain(model, docs: list[list[int]], scale: AncestorScale, work: Path,
             log: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Train ``model`` in place for ``scale.steps`` steps (resuming from ``work/checkpoint.pt``)."""
    import torch

    torch.manual_seed(scale.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=scale.lr, betas=(0.9, 0.95), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(scale))
    work.mkdir(parents=True, exist_ok=True)
    ckpt, step, curve = work / "checkpoint.pt", 0, []
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        step, curve = state["step"], state["curve"]
        log(f"[ancestor] resuming at step {step}/{scale.steps}")
    epoch, blocks = -1, None
    per_epoch = len(epoch_blocks(docs, scale.block, 0, scale.seed))
    if per_epoch < scale.batch_size:
        raise SystemExit("lmolt-hub study: the ancestor's corpus is smaller than one batch")
    batches_per_epoch = per_epoch // scale.batch_size
    model.train()
    t0, window = time.perf_counter(), []
    while step < scale.steps:
        e, i = divmod(step, batches_per_epoch)
        if e != epoch:
            epoch, blocks = e, epoch_blocks(docs, scale.block, e, scale.seed)
        batch = blocks[i * scale.batch_size : (i + 1) * scale.batch_size]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        window.append(loss.item())
        if step % scale.save_every == 0 or step == scale.steps:
            curve.append({"step": step, "loss": round(sum(window) / len(window), 4)})
            window = []
            _save_checkpoint(ckpt, {"model": model.state_dict(), "optim": opt.state_dict(),
                                    "sched": sched.state_dict(), "step": step, "curve": curve})  # fmt: skip
            rate = step * scale.batch_size * scale.block / max(1e-9, time.perf_counter() - t0)
            log(f"[ancestor] step {step}/{scale.steps} loss {curve[-1]['loss']:.3f} ({rate:,.0f} tokens/s)")
    model.eval()
    return {"curve": curve, "epochs": round(scale.steps / batches_per_epoch, 2),
            "tokens": scale.steps * scale.batch_size * scale.block, "tokens_per_epoch": per_epoch * scale.block}  # fmt: skip


def perplexity(model, docs: list[list[int]], batch_size: int = 32) -> float:
    """Per-token perplexity of ``docs`` (every token after the modality tag, eos included)."""
    import torch

    nll, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(docs), batch_size):
            chunk = docs[i : i + batch_size]
            width = max(len(d) for d in chunk)
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            for j, d in enumerate(chunk):
                ids[j, : len(d)] = torch.tensor(d)
                labels[j, 1 : len(d)] = torch.tensor(d[1:])
            logits = model(input_ids=ids).logits[:, :-1]
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum"
            )
            nll += loss.item()
            n += int((target != -100).sum())
    return round(math.exp(nll / max(1, n)), 3)


def sample(model, tokenizer, tag: str, n: int, max_new_tokens: int, seed: int = 0) -> list[str]:
    """``n`` unconditional samples after ``tag`` (temperature 1, no top-k/p), decoded."""
    import torch

    torch.manual_seed(seed)
    start = torch.tensor([[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(tag)]] * n)
    with torch.no_grad():
        out = model.generate(input_ids=start, attention_mask=torch.ones_like(start), do_sample=True,
                             temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return [tokenizer.decode(o[2:], skip_special_tokens=True).strip() for o in out]


def smiles_validity(samples: list[str]) -> dict[str, Any]:
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():
        valid = [s for s in samples if s and Chem.MolFromSmiles(s) is not None]
    return {"n": len(samples), "valid": len(valid), "validity": round(len(valid) / max(1, len(samples)), 4),
            "unique_valid": len(set(valid))}  # fmt: skip


def assess(model, tokenizer, heldout: dict[str, list[list[int]]], scale: AncestorScale) -> dict[str, Any]:
    """Held-out perplexity per modality and the SMILES validity of unconditional samples."""
    smiles = sample(model, tokenizer, SMILES_TAG, scale.samples, scale.sample_tokens, scale.seed)
    text = sample(model, tokenizer, TEXT_TAG, 3, scale.sample_tokens, scale.seed)
    return {"perplexity": {m: perplexity(model, d) for m, d in sorted(heldout.items())},
            "smiles_samples": smiles_validity(smiles), "examples": {"smiles": smiles[:5], "text": text}}  # fmt: skip


def card(name: str, info: dict[str, Any]) -> str:
    """The ancestor's (or its random init's) model card: corpus, licences, budget and measurements."""
    shape, counts = info["shape"], info["corpus"]
    rows = "\n".join(f"| {m} | {c['train']:,} | {c['heldout']:,} |" for m, c in counts.items())
    licences = "\n".join(f"- {src}: {lic}" for src, lic in LICENCES.items())
    body = [f"# {name}", "", info["summary"], "",
            f"A {shape['num_layers']}-layer, {shape['hidden_size']}-wide Llama ({shape['parameters']:,} parameters), "
            f"{shape['vocab']}-token byte-level BPE trained on the pretraining text, with `<text>`/`<smiles>` "
            "modality tags and the two instruction templates' fixed parts as whole tokens.", "",
            "## Pretraining corpus (documents)", "", "| source | train | held-out |", "|---|---|---|", rows, "",
            f"Every InChIKey of ChEBI-20 validation.txt ({info['excluded_keys']:,} molecules, the study's "
            f"evaluation pool) is excluded from the pretraining SMILES; dropped: {info['dropped']}.", "",
            "## Sources and licences", "", licences, ""]  # fmt: skip
    if "training" in info:
        t, a = info["training"], info["assessment"]
        body += ["## Training", "", f"{t['tokens']:,} tokens ({t['epochs']} epochs of the corpus), "
                 f"{info['scale']['steps']} steps of {info['scale']['batch_size']} x {info['scale']['block']} tokens, "
                 f"AdamW lr {info['scale']['lr']}, cosine; {t.get('seconds', 0):.0f} s.", "",
                 "## Held-out perplexity (per token)", "", "| modality | random init | this model |", "|---|---|---|"]  # fmt: skip
        body += [f"| {m} | {info['init_perplexity'].get(m)} | {p} |" for m, p in a["perplexity"].items()]
        s = a["smiles_samples"]
        body += ["", f"Unconditional SMILES samples (after `<smiles>`, temperature 1): {s['valid']}/{s['n']} "
                 f"valid by RDKit ({s['validity']:.1%}), {s['unique_valid']} unique valid.", ""]  # fmt: skip
    meta = (
        "---\nlicense: cc-by-4.0\nlibrary_name: transformers\ntags: [lmolt, cpu-study, pretraining]\n---\n\n"
    )
    return meta + "\n".join(body) + "\n"


def _shape(model, tokenizer, scale: AncestorScale) -> dict[str, Any]:
    return {"hidden_size": scale.hidden_size, "num_layers": scale.num_layers, "vocab": len(tokenizer),
            "parameters": sum(p.numel() for p in model.parameters()), "seed": scale.seed}  # fmt: skip


def train_ancestor(work: Path, scale: AncestorScale, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the corpus and tokenizer, save the random init to ``work/init``, pretrain, assess and save
    the ancestor to ``work/ancestor``; returns what the cards and the report need."""
    import torch

    torch.set_num_threads(scale.threads)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    corpus = build_corpus(scale.zinc_n, scale.heldout_n, scale.english_limit, scale.seed)
    tokenizer = corpus_tokenizer(corpus, scale.vocab_size)
    train_docs = [d for docs in encode(tokenizer, corpus).values() for d in docs]
    heldout = encode(tokenizer, corpus, "heldout")
    log(f"[ancestor] corpus {corpus.counts()} in {time.perf_counter() - t0:.0f} s")
    model = build_model(tokenizer, scale.hidden_size, scale.num_layers, scale.seed)
    info: dict[str, Any] = {"shape": _shape(model, tokenizer, scale), "corpus": corpus.counts(),
                            "excluded_keys": corpus.excluded_keys, "dropped": corpus.dropped,
                            "scale": asdict(scale), "corpus_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    model.eval()
    info["init_perplexity"] = {m: perplexity(model, d) for m, d in sorted(heldout.items())}
    _save(model, tokenizer, work / "init", card("lmolt cpu-study random init", info | {
        "summary": "The random init of the study's ancestor (same seed, shape and tokenizer): what "
                   "\"learnt nothing\" scores."}))  # fmt: skip
    t1 = time.perf_counter()
    info["training"] = pretrain(model, train_docs, scale, work, log) | {"seconds": 0.0}
    info["training"]["seconds"] = round(time.perf_counter() - t1, 1)
    info["assessment"] = assess(model, tokenizer, heldout, scale)
    info["summary"] = ("The generalist ancestor of the cpu-study (the analog of Meditron-7B): pretrained with "
                       "a causal LM objective on unpaired English and unpaired SMILES; both study bases are "
                       "full fine-tunes of it.")  # fmt: skip
    _save(model, tokenizer, work / "ancestor", card("lmolt cpu-study ancestor", info))
    (work / "ancestor.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def _save(model, tokenizer, path: Path, readme: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "README.md").write_text(readme, encoding="utf-8")
