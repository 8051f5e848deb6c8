"""The authors' "DPO" loss: trl 0.8's kto_pair, checked against a hand computation, alone and inside
LmoltDPOTrainer (trl 1.16's data pipeline, fused forward and adapter-disabled reference)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lmolt_hub.training.trainers import kto_pair_losses

from helpers.demo_triples import build_demo_triples

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _dsig(x: float) -> float:
    return _sig(x) * (1 - _sig(x))


def test_kto_pair_equals_the_hand_computation_on_a_fixed_batch():
    beta = 0.1
    pc = torch.tensor([-10.0, -12.0], dtype=torch.float64, requires_grad=True)  # policy chosen
    pr = torch.tensor([-20.0, -15.0], dtype=torch.float64, requires_grad=True)  # policy rejected
    rc = torch.tensor([-13.0, -13.0], dtype=torch.float64)  # reference chosen
    rr = torch.tensor([-18.0, -16.0], dtype=torch.float64)  # reference rejected
    # By hand: chosen log-ratios [3, 1] -> chosen_KL = mean 2; rejected log-ratios [-2, 1] -> mean -0.5,
    # clamped to rejected_KL = 0. Chosen rows use rejected_KL, rejected rows use chosen_KL:
    # [1 - s(0.1 (3 - 0)), 1 - s(0.1 (1 - 0)), 1 - s(0.1 (2 + 2)), 1 - s(0.1 (2 - 1))]
    expected = [1 - _sig(0.3), 1 - _sig(0.1), 1 - _sig(0.4), 1 - _sig(0.1)]
    losses = kto_pair_losses(pc, pr, rc, rr, beta)
    assert losses.tolist() == pytest.approx(expected, abs=1e-12)
    loss = losses.mean()
    assert loss.item() == pytest.approx(sum(expected) / 4, abs=1e-12)
    assert loss.item() == pytest.approx(0.444227862, abs=1e-9)
    # As in trl 0.8, chosen_KL is not detached: d/dpc0 has the direct term plus half of each rejected term.
    loss.backward()
    d_pc0 = -(beta / 4) * (_dsig(0.3) + 0.5 * _dsig(0.4) + 0.5 * _dsig(0.1))
    assert pc.grad[0].item() == pytest.approx(d_pc0, abs=1e-12)
    # rejected_KL was clamped at 0, so the rejected log-probs reach the loss only through their own terms
    assert pr.grad.tolist() == pytest.approx([(beta / 4) * _dsig(0.4), (beta / 4) * _dsig(0.1)], abs=1e-12)


def test_a_negative_mean_log_ratio_is_clamped_to_zero_on_both_sides():
    zero = torch.zeros(3)
    down = torch.full((3,), -5.0)  # policy below the reference everywhere: both KL estimates clamp to 0
    losses = kto_pair_losses(down, down, zero, zero, 1.0)
    assert losses.tolist() == pytest.approx([1 - _sig(-5.0)] * 3 + [1 - _sig(5.0)] * 3, abs=1e-6)


def _completion_logps(model, batch) -> torch.Tensor:
    """Summed log-probs of the completion tokens, straight from the logits (no trl code)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    targets = batch["input_ids"][:, 1:]
    per_token = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (per_token * batch["completion_mask"][:, 1:]).sum(dim=1)


def test_lmolt_dpo_trainer_computes_kto_pair_on_its_own_batches(tiny_llama_dir: Path, tmp_path: Path):
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    from lmolt_hub.training import datasets as tdata
    from lmolt_hub.training.trainers import LmoltDPOTrainer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    train = tdata.prepare("dpo", build_demo_triples(4)["train"]).select(range(4))
    args = DPOConfig(output_dir=str(tmp_path), loss_type=["kto_pair"], beta=0.1, per_device_train_batch_size=4,
                     max_length=1024, report_to=[], use_cpu=True, bf16=False, dataloader_num_workers=0)  # fmt: skip
    peft = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = LmoltDPOTrainer(
        model=model, args=args, train_dataset=train, processing_class=tok, peft_config=peft
    )
    torch.manual_seed(0)
    for name, p in trainer.model.named_parameters():
        if "lora_B" in name:  # a trained-looking adapter, so the policy differs from the reference
            p.data.normal_(0, 0.2)
    trainer.model.eval()  # no dropout: both computations see the same function
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
        policy = _completion_logps(trainer.model, batch)
        with trainer.model.disable_adapter():
            ref = _completion_logps(trainer.model, batch)
    ratios = (policy - ref).tolist()
    chosen, rejected = ratios[:4], ratios[4:]
    assert any(abs(r) > 1e-3 for r in ratios)  # the adapter changed the policy
    c_kl, r_kl = max(0.0, sum(chosen) / 4), max(0.0, sum(rejected) / 4)
    by_hand = [1 - _sig(0.1 * (c - r_kl)) for c in chosen] + [1 - _sig(0.1 * (c_kl - r)) for r in rejected]
    assert loss.item() == pytest.approx(sum(by_hand) / 8, abs=1e-5)
    # the sigmoid loss of the same trainer class is trl's own, and differs
    trainer.loss_types = ["sigmoid"]
    with torch.no_grad():
        sigmoid = trainer.compute_loss(trainer.model, batch).item()
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    assert sigmoid == pytest.approx(sum(-math.log(_sig(0.1 * m)) for m in margins) / 4, abs=1e-5)
