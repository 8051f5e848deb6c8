"""FSDP + QLoRA for every method (``recipes/accelerate_configs/fsdp_qlora.yaml``).

FSDP flattens the frozen parameters of each wrapped decoder layer into one
tensor, so they must share a dtype. The trl/peft FSDP-QLoRA recipe makes that
true: 4-bit weights stored as bf16 (``bnb_4bit_quant_storage`` = the compute
dtype, set in ``models.load_base_model``), norms left in bf16, and the trainable
LoRA layers wrapped as units of their own (transformers' ``update_fsdp_plugin_peft``).
trl 1.16's SFT, DPO and KTO trainers follow it. Its experimental CPOTrainer does
not: for a 4-bit model it always calls peft's ``prepare_model_for_kbit_training``,
which casts every non-4-bit parameter (norms, embeddings, lm_head) to fp32, and
then keeps the norms in fp32 (``peft_module_casting_to_bf16``). FSDP then stops
with "Must flatten tensors with uniform dtype but got torch.bfloat16 and
torch.float32". So under FSDP we apply the adapter ourselves, as the other
trainers do, and hand CPO a ready PeftModel: it then skips that cast.
"""

from __future__ import annotations

import os

from lmolt_hub.training.registry import METHODS, method_spec

# Trainers that cast a k-bit model's norms to fp32 before adding the adapter (trl 1.16): the
# entries with ``kbit_casting`` (training/registry.py).
KBIT_CASTING_METHODS = tuple(name for name, m in METHODS.items() if m.kbit_casting)


def fsdp_enabled(training_args) -> bool:
    """Launched with an FSDP config (accelerate sets ACCELERATE_USE_FSDP) or asked via ``fsdp``."""
    return bool(getattr(training_args, "fsdp", None)) or os.environ.get(
        "ACCELERATE_USE_FSDP", ""
    ).lower() in ("1", "true")


def adapt_for_fsdp_qlora(method: str, model, peft_config, fsdp: bool):
    """(model, peft_config) to give the trainer: under FSDP a 4-bit model for a k-bit-casting
    trainer (CPO) gets its LoRA adapter here, so the trainer sees a PeftModel and no peft_config.
    Otherwise both are returned unchanged."""
    quantized = getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)
    if not (fsdp and quantized and peft_config is not None and method_spec(method).kbit_casting):
        return model, peft_config
    from peft import get_peft_model

    return get_peft_model(model, peft_config), None
