"""QLoRA gradients: the 4-bit model's LoRA gradients equal those of a float model built from the
dequantised weights, also after a no-grad pass (the AVX512-BF16 repack trap, handled)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

bnb = pytest.importorskip("bitsandbytes")

from trl import ModelConfig  # noqa: E402

from lmolt_hub.hub.ref import HubRef  # noqa: E402
from lmolt_hub.training.models import disable_cpu_inference_repack, load_base_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Args:  # the two TrainingArguments fields load_base_model reads
    use_cpu = True


def _model_args() -> ModelConfig:
    return ModelConfig(model_name_or_path="tiny", dtype="bfloat16", load_in_4bit=True, bnb_4bit_quant_type="nf4",
                       use_bnb_nested_quant=True, use_peft=True, lora_r=4, lora_alpha=16, lora_dropout=0.0,
                       lora_target_modules=["all-linear"])  # fmt: skip


def _quantized(path: Path, fix_trap: bool):
    model = load_base_model(HubRef("tiny", local_path=path), _model_args(), _Args())
    if not fix_trap:  # what a plain from_pretrained gives on this CPU
        for m in model.modules():
            if isinstance(m, bnb.nn.Linear4bit):
                m.support_avx512bf16_for_cpu = True
    return model


def _dequantised_float(qmodel, path: Path):
    """A plain bf16 model whose Linear weights are the 4-bit model's dequantised weights."""
    from transformers import AutoModelForCausalLM

    fmodel = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    fmods = dict(fmodel.named_modules())
    for name, m in qmodel.named_modules():
        if isinstance(m, bnb.nn.Linear4bit):
            w = bnb.functional.dequantize_4bit(m.weight.data, m.weight.quant_state).to(torch.bfloat16)
            fmods[name].weight.data.copy_(w.reshape(fmods[name].weight.shape))
    qstate = {
        k: v for k, v in qmodel.state_dict().items() if k in fmodel.state_dict() and v.dtype.is_floating_point
    }
    for k, v in qstate.items():
        if v.shape == fmodel.state_dict()[k].shape and "proj" not in k:
            fmodel.state_dict()[k].copy_(v)  # embeddings, norms, lm_head: identical
    return fmodel


def _lora(model, seed: int = 0):
    from peft import get_peft_model
    from trl import get_peft_config

    torch.manual_seed(seed)
    peft = get_peft_model(model, get_peft_config(_model_args()))
    torch.manual_seed(seed + 1)
    for name, p in peft.named_parameters():
        if "lora_B" in name:  # non-zero B, so lora_A gets a gradient too
            p.data.normal_(0, 0.05)
    return peft


def _lora_grads(peft, ids) -> dict[str, torch.Tensor]:
    peft.train()
    peft.zero_grad()
    peft(input_ids=ids, labels=ids).loss.backward()
    return {n: p.grad.detach().float().clone() for n, p in peft.named_parameters() if "lora_" in n}


def _rel_err(a: dict, b: dict) -> float:
    return max(((a[k] - b[k]).norm() / b[k].norm()).item() for k in b)


@pytest.fixture(scope="module")
def setup(tiny_llama_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    ids = tok(["The molecule is a steroid ester. CC(=O)OC1CCC2(C)C(=CC=C3C2CCC2(C)C3CCC2O)C1"] * 2,
              return_tensors="pt").input_ids  # fmt: skip
    q = _quantized(tiny_llama_dir, fix_trap=True)
    fgrads = _lora_grads(_lora(_dequantised_float(q, tiny_llama_dir)), ids)
    return tiny_llama_dir, ids, q, fgrads


def test_4bit_lora_gradients_match_the_dequantised_float_model(setup):
    path, ids, q, fgrads = setup
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in q.modules()) == 14  # 7 projections x 2 layers
    qpeft = _lora(q)
    qgrads = _lora_grads(qpeft, ids)
    assert qgrads.keys() == fgrads.keys() and len(qgrads) == 28
    assert _rel_err(qgrads, fgrads) < 3e-2  # bf16 compute noise; the trap gives ~1
    # ...and still after a no-grad pass (eval/generation mid-training), thanks to the fix
    qpeft.eval()
    with torch.no_grad():
        qpeft(input_ids=ids)
    assert _rel_err(_lora_grads(qpeft, ids), fgrads) < 3e-2  # bf16 compute noise; the trap gives ~1


@pytest.mark.skipif(not bnb.functional.has_avx512bf16() if hasattr(bnb.functional, "has_avx512bf16") else True,
                    reason="the repack trap exists only on CPUs with AVX512-BF16")  # fmt: skip
def test_without_the_fix_a_no_grad_pass_corrupts_gradients(setup):
    path, ids, _, fgrads = setup
    qpeft = _lora(_quantized(path, fix_trap=False))
    qpeft.eval()
    with torch.no_grad():
        qpeft(input_ids=ids)  # repacks the 4-bit weights into the inference layout
    assert _rel_err(_lora_grads(qpeft, ids), fgrads) > 0.5  # the trap is real on this CPU
    assert disable_cpu_inference_repack(qpeft) == 14  # repairs an already repacked model
    assert _rel_err(_lora_grads(qpeft, ids), fgrads) < 3e-2  # bf16 compute noise; the trap gives ~1
