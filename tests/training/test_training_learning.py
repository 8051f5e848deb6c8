"""Each method optimises its objective: a tiny model, a few real rows, lmolt-hub's own train().

SFT: the loss falls and greedy decoding reproduces the memorised targets. DPO (sigmoid and the
authors' kto_pair), CPO and KTO: the chosen-over-rejected log-probability margin on the training
rows rises, measured before and after training. Best-epoch selection keeps the epoch with the lowest
validation loss, and the pushed adapter is that epoch's checkpoint, not the last one.

The model is the package's tiny Llama with its output layer scaled up ("sharp"): at the builder's
initialisation (std 0.02 behind a fixed RMSNorm) no adapter on the body can move a logit by more than
about 1.3, so nothing could be learned to confidence. LoRA runs in float32 here (the 4-bit path's
gradients are proven in test_training_qlora.py); everything else is the tiny recipes' path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmolt_hub.hub.cards import parse_card
from lmolt_hub.training import datasets as tdata
from lmolt_hub.training import train

from helpers.demo_triples import build_demo_triples, save_demo_triples

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FLOAT_LORA = ["--load_in_4bit", "false", "--bf16", "false", "--dtype", "float32", "--lora_dropout", "0",
              "--gradient_accumulation_steps", "1", "--max_length", "1024", "--logging_steps", "1",
              "--lr_scheduler_type", "constant", "--warmup_steps", "0", "--max_grad_norm", "1",
              "--auto_resume", "false"]  # fmt: skip
N_PAIRS = 8  # training triples of the preference tests (4 molecules x 2 directions)


@pytest.fixture(scope="module")
def sharp_tiny(tmp_path_factory) -> str:
    from transformers import AutoModelForCausalLM

    from lmolt_hub.tiny import save_tiny_llama

    path = tmp_path_factory.mktemp("sharp-tiny")
    save_tiny_llama(path, seed=0)
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def demo(session_dir: Path) -> dict[str, str]:
    default, kto = save_demo_triples(session_dir / "training-demo")  # 28 train, 4 validation triples
    return {"default": default, "kto": kto}


def _train(method: str, model: str, dataset: str, out: Path, *extra: str) -> dict:
    return train(method, str(ROOT / f"recipes/tiny/{method}/qlora.yaml"),
                 ["--model_name_or_path", model, "--dataset_name", dataset, "--output_dir", str(out),
                  *FLOAT_LORA, *extra])  # fmt: skip


def _load(model_dir: str, adapter: Path | None = None):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    return model.eval(), AutoTokenizer.from_pretrained(model_dir)


@torch.no_grad()
def _completion_logp(model, tok, prompt: str, completion: str) -> float:
    """log p(completion | prompt), the completion joined to the prompt as the trainers join it."""
    full = tok(prompt + completion).input_ids
    start = len(tok(prompt).input_ids)
    assert full[:start] == tok(prompt).input_ids  # the prompt ends on a token boundary
    ids = torch.tensor([full])
    logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    return float(logp[start - 1 :].gather(-1, ids[0, start:, None]).sum())


def _margins(model, tok, rows) -> list[float]:
    return [_completion_logp(model, tok, r["prompt"], r["chosen"]) - _completion_logp(model, tok, r["prompt"],
            r["rejected"]) for r in rows]  # fmt: skip


@pytest.fixture(scope="module")
def pairs(demo, sharp_tiny):
    """The preference tests' training triples and their margins under the untrained model."""
    raw = tdata.load_split(demo["default"], None, None, "train").select(range(N_PAIRS))
    rows = list(tdata.prepare("dpo", raw))
    model, tok = _load(sharp_tiny)
    return rows, _margins(model, tok, rows)


PREFERENCE_RUNS = {
    "dpo-sigmoid": ("dpo", "default", ["--loss_type", "sigmoid"]),
    "dpo-kto_pair": ("dpo", "default", ["--loss_type", "kto_pair"]),
    "cpo": ("cpo", "default", []),
    "kto": ("kto", "kto", []),
}


@pytest.mark.parametrize("run", list(PREFERENCE_RUNS))
def test_preference_methods_raise_the_chosen_over_rejected_margin(run, demo, sharp_tiny, pairs, tmp_path):
    method, config, extra = PREFERENCE_RUNS[run]
    rows, before = pairs
    n = 2 * N_PAIRS if method == "kto" else N_PAIRS  # KTO: each triple is a chosen and a rejected row
    _train(method, sharp_tiny, demo[config], tmp_path, "--max_train_samples", str(n), "--num_train_epochs", "4",
           "--per_device_train_batch_size", "2", "--learning_rate", "5e-3", *extra)  # fmt: skip
    model, tok = _load(sharp_tiny, tmp_path)
    after = _margins(model, tok, rows)
    gain = [a - b for a, b in zip(after, before, strict=True)]
    # log p(chosen) - log p(rejected), in nats summed over each completion, averaged over the 8 training
    # triples, rises by more than 10 nats (measured: sigmoid ~100, kto_pair ~30, CPO ~80, KTO ~30;
    # single rows move by up to +-200 nats either way, so only the mean is asserted)
    assert sum(gain) / len(gain) > 10.0, (run, [round(g, 1) for g in gain])


@pytest.fixture(scope="module")
def short_targets(tmp_path_factory, sharp_tiny):
    """The 4 caption->SMILES training triples with the shortest SMILES (18-22 tokens) as a dataset."""
    import datasets
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(sharp_tiny)
    rows = build_demo_triples(16)["train"].filter(lambda d: d == "caption2smiles", input_columns="direction")
    rows = rows.select(sorted(range(len(rows)), key=lambda i: len(tok(rows[i]["chosen"]).input_ids))[:4])
    path = tmp_path_factory.mktemp("short") / "triples"
    datasets.DatasetDict({"train": rows}).save_to_disk(str(path))
    return str(path), list(tdata.prepare("sft", rows))


def test_sft_loss_falls_and_greedy_decoding_reproduces_the_memorised_targets(
    short_targets, sharp_tiny, tmp_path
):
    dataset, rows = short_targets
    _train("sft", sharp_tiny, dataset, tmp_path, "--num_train_epochs", "50", "--per_device_train_batch_size", "4",
           "--learning_rate", "1.5e-2", "--lr_scheduler_type", "cosine")  # fmt: skip
    log = json.loads((tmp_path / "run_info.json").read_text())["log_history"]
    losses = [h["loss"] for h in log if "loss" in h]
    assert losses[-1] < losses[0] / 20, losses  # from ~10 nats/token to well under 0.5
    model, tok = _load(sharp_tiny, tmp_path)
    for r in rows:
        ids = tok(r["prompt"], return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(input_ids=ids, max_new_tokens=len(tok(r["completion"]).input_ids) + 4,
                                 do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
        text = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        assert text.strip() == r["completion"].strip()  # the target, then EOS (trl appends it in SFT)


@pytest.fixture(scope="module")
def overfit_data(tmp_path_factory) -> str:
    """4 caption->SMILES rows; validation asks each prompt for *another* row's SMILES.

    Learning SMILES in general lowers the validation loss at first; once the model ties each prompt
    to its own SMILES, the validation loss rises again: the best epoch is in the middle.
    """
    import datasets

    train_rows = build_demo_triples(16)["train"]
    train_rows = train_rows.filter(lambda d: d == "caption2smiles", input_columns="direction").select(
        range(4)
    )
    chosen = train_rows["chosen"]
    val = train_rows.map(lambda r, i: {"chosen": chosen[(i + 1) % 4]}, with_indices=True)
    path = tmp_path_factory.mktemp("overfit") / "triples"
    datasets.DatasetDict({"train": train_rows, "validation": val}).save_to_disk(str(path))
    return str(path)


def test_best_epoch_by_eval_loss_is_kept_pushed_and_recorded(overfit_data, sharp_tiny, tmp_path):
    from safetensors.torch import load_file

    _train("sft", sharp_tiny, overfit_data, tmp_path, "--num_train_epochs", "22", "--per_device_train_batch_size",
           "4", "--learning_rate", "1e-2", "--dataset_test_split", "validation", "--eval_strategy", "epoch",
           "--save_strategy", "epoch", "--load_best_model_at_end", "true", "--metric_for_best_model",
           "eval_loss", "--per_device_eval_batch_size", "4")  # fmt: skip
    info = json.loads((tmp_path / "run_info.json").read_text())
    evals = [(h["epoch"], h["step"], h["eval_loss"]) for h in info["log_history"] if "eval_loss" in h]
    assert len(evals) == 22
    best_epoch, best_step, best_loss = min(evals, key=lambda e: e[2])
    last_epoch, last_step, last_loss = evals[-1]
    assert best_epoch < last_epoch and best_loss < last_loss  # the curve over-fits: the last is not the best
    sel = info["checkpoint_selection"]
    assert (sel["kept_epoch"], sel["kept_step"]) == (best_epoch, best_step)
    assert sel["kept_value"] == pytest.approx(best_loss) and sel["checkpoint"] == f"checkpoint-{best_step}"
    # the adapter saved (and pushed) is the best epoch's checkpoint, not the last one
    saved = load_file(tmp_path / "adapter_model.safetensors")
    best = load_file(tmp_path / f"checkpoint-{best_step}" / "adapter_model.safetensors")
    last = load_file(tmp_path / f"checkpoint-{last_step}" / "adapter_model.safetensors")
    assert saved.keys() == best.keys() and all(torch.equal(saved[k], best[k]) for k in saved)
    assert not all(torch.equal(saved[k], last[k]) for k in saved)
    card, body = parse_card((tmp_path / "README.md").read_text())
    assert (
        card["lmolt"]["kept_epoch"] == best_epoch and card["lmolt"]["checkpoint_rule"] == "lowest eval_loss"
    )
    assert card["lmolt"]["kept_eval_loss"] == pytest.approx(best_loss)
    assert f"**epoch {int(best_epoch)}**" in body and "## Checkpoint selection" in body
