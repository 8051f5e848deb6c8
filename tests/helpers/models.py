"""Tiny models the tests build on the fly (on top of the conftest fixtures' tiny Llama)."""

from __future__ import annotations


def make_tiny_adapter(base_dir, root):
    """A LoRA adapter with random (non-zero) weights on the tiny Llama, and the same merged into the base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, merged_dir = root / "adapter", root / "merged"
    if (merged_dir / "config.json").exists():
        return adapter_dir, base_dir, merged_dir
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(base, cfg)
    peft_model.save_pretrained(adapter_dir)
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(merged_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(merged_dir)
    return adapter_dir, base_dir, merged_dir
