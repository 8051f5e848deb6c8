"""Peak GPU memory, estimated before anything is downloaded (``--dry-run``).

Pure arithmetic on the model's shape (from its config.json) and the recipe's
settings, itemised so a user can see what to change:

- weights at the loading precision: 4-bit NF4 (0.5 byte per weight, plus one
  absmax per 64 weights: fp32, or 8-bit with a second fp32 level per 256 blocks
  under double quantisation); embeddings, lm_head and norms stay at the compute
  dtype (bitsandbytes never quantises them);
- LoRA: fp32 parameters + fp32 gradients + two fp32 AdamW states (16 bytes each);
  full fine-tuning: weights + gradients at the dtype + two fp32 AdamW states;
- activations saved for backward at the configured length and batch (paired
  methods, DPO and CPO, run chosen and rejected together: two rows per example).
  Per token and layer, in the compute dtype: attention block 8h (norm input,
  normed input, q, k, v, attention output, o_proj input, MLP norm input ...),
  MLP 4i (gate, up, act(gate), product); LoRA dropout keeps its output plus a
  one-byte mask for every adapted input. With gradient checkpointing only each
  layer's input (h) is kept, plus one layer recomputed at a time;
- logits: bf16 logits, their fp32 copy and the fp32 log-softmax for the loss;
- a fixed allowance for the CUDA context, cuBLAS workspaces and fragmentation.

The plan of a training step (``training.dry_run.plan_training``) adds what its method needs
(``training.registry``: rows per example, a reference pass); generation's is ``plan_generation``.

Attention scores are not stored (SDPA/flash attention). It is an estimate:
``bench/gpu_check.py`` measures the real peak for the 7B shape on a GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

GIB = 1024**3
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
NF4_BLOCK = 64  # weights per absmax (bitsandbytes 4-bit blocksize)
DQ_BLOCK = 256  # absmax values per second-level fp32 constant (double quantisation)
CUDA_OVERHEAD = 1 * GIB  # context, cuBLAS workspace, allocator fragmentation
LORA_BYTES_PER_PARAM = 4 + 4 + 8  # fp32 parameter, gradient, AdamW exp_avg + exp_avg_sq
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    """What memory depends on in a Llama-style decoder."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied_embeddings: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> ModelShape:
        """From a transformers config object or a config.json dict."""
        get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
        heads = int(get("num_attention_heads"))
        return cls(
            hidden=int(get("hidden_size")),
            layers=int(get("num_hidden_layers")),
            intermediate=int(get("intermediate_size")),
            vocab=int(get("vocab_size")),
            heads=heads,
            kv_heads=int(get("num_key_value_heads") or heads),
            tied_embeddings=bool(get("tie_word_embeddings", False)),
        )

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of one decoder layer."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}  # fmt: skip

    def linear_params(self) -> int:
        return self.layers * sum(a * b for a, b in self.linears().values())

    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def norm_params(self) -> int:
        return (2 * self.layers + 1) * self.hidden

    def total_params(self) -> int:
        return self.linear_params() + self.embedding_params() + self.norm_params()


# Meditron-7B (= Llama-2-7B with the LPM24 vocabulary of 32,017 tokens).
MEDITRON_7B = ModelShape(hidden=4096, layers=32, intermediate=11008, vocab=32017, heads=32, kv_heads=32)


def nf4_bytes_per_weight(double_quant: bool) -> float:
    """Bytes per 4-bit weight including its quantisation constants."""
    if double_quant:
        return 0.5 + 1 / NF4_BLOCK + 4 / (NF4_BLOCK * DQ_BLOCK)
    return 0.5 + 4 / NF4_BLOCK


def lora_targets(shape: ModelShape, targets: str | Sequence[str] | None) -> list[str]:
    """The linear layers of ``shape`` that LoRA adapts ("all-linear": all but lm_head)."""
    if not targets:
        return []
    if isinstance(targets, str):
        targets = ALL_LINEAR if targets == "all-linear" else [targets]
    names = {t.rsplit(".", 1)[-1] for t in targets}
    return [n for n in shape.linears() if n in names or "all-linear" in names]


def lora_params(shape: ModelShape, r: int, targets: str | Sequence[str] | None) -> int:
    """A (r x in) + B (out x r) for every adapted linear layer."""
    lin = shape.linears()
    return shape.layers * sum(r * (lin[n][0] + lin[n][1]) for n in lora_targets(shape, targets))


def weight_bytes(shape: ModelShape, dtype: str, load_in_4bit: bool, double_quant: bool = True) -> float:
    """Frozen weights: 4-bit linears (when asked) plus embeddings, lm_head and norms at ``dtype``."""
    b = DTYPE_BYTES[dtype]
    rest = (shape.embedding_params() + shape.norm_params()) * b
    if load_in_4bit:
        return shape.linear_params() * nf4_bytes_per_weight(double_quant) + rest
    return shape.linear_params() * b + rest


def activation_bytes_per_token(
    shape: ModelShape, dtype: str, gradient_checkpointing: bool, lora_r: int | None = None,
    targets: str | Sequence[str] | None = None, lora_dropout: float = 0.0,
) -> float:  # fmt: skip
    """Bytes kept for backward per token, all layers (logits excluded)."""
    b = DTYPE_BYTES[dtype]
    h, i = shape.hidden, shape.intermediate
    layer = b * (8 * h + 4 * i)
    if lora_r:
        lin = shape.linears()
        adapted = lora_targets(shape, targets)
        if lora_dropout > 0:  # dropout output + its one-byte mask, per adapted input
            layer += sum((b + 1) * lin[n][0] for n in adapted)
        layer += b * lora_r * len(adapted)  # A's output, saved as B's input
    if gradient_checkpointing:  # layer inputs only, and one layer recomputed at a time
        return shape.layers * b * h + layer
    return shape.layers * layer


def logits_bytes_per_token(shape: ModelShape, dtype: str) -> float:
    """Logits in the compute dtype, their fp32 copy and the fp32 log-softmax."""
    return shape.vocab * (DTYPE_BYTES[dtype] + 4 + 4)


@dataclass
class MemoryPlan:
    """Estimated peak per device, itemised (bytes)."""

    parts: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def lines(self) -> list[str]:
        out = [f"  {name:<46} {v / GIB:8.2f} GiB" for name, v in self.parts.items()]
        out.append(f"  {'estimated peak per device':<46} {self.total / GIB:8.2f} GiB")
        return out + [f"  note: {n}" for n in self.notes]


def plan_generation(
    shape: ModelShape,
    *,
    dtype: str = "bfloat16",
    load_in_4bit: bool = False,
    batch_size: int = 16,
    max_prompt_tokens: int = 512,
    max_new_tokens: int = 512,
    lora_r: int | None = None,
    lora_target_modules: str | Sequence[str] | None = None,
) -> MemoryPlan:
    """Peak memory of batched generation (hf backend): weights, KV cache, the prefill's largest layer."""
    b = DTYPE_BYTES[dtype]
    parts: dict[str, float] = {}
    label = "NF4 + double quant" if load_in_4bit else dtype
    parts[f"weights ({label})"] = weight_bytes(shape, dtype, load_in_4bit, True)
    if lora_r:
        parts[f"LoRA adapter r={lora_r}"] = lora_params(shape, lora_r, lora_target_modules) * 4
    ctx = max_prompt_tokens + max_new_tokens
    parts[f"KV cache ({batch_size} x {ctx} tokens)"] = 2 * shape.layers * shape.kv_dim * b * batch_size * ctx
    prefill = batch_size * max_prompt_tokens
    parts["prefill activations (one layer)"] = prefill * b * (4 * shape.hidden + 3 * shape.intermediate)
    parts["logits (last position)"] = batch_size * shape.vocab * 4
    parts["CUDA context + workspace"] = CUDA_OVERHEAD
    return MemoryPlan(parts)


def visible_gpu_bytes() -> list[int]:
    """Total memory of each visible CUDA device (empty without one)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())]


def report(plan: MemoryPlan, devices: Sequence[int] | None = None, printer: Callable[[str], None] = print,
           title: str = "memory plan") -> bool:  # fmt: skip
    """Print ``plan`` and compare it with the visible devices; True when it fits (or no GPU to compare)."""
    devices = visible_gpu_bytes() if devices is None else list(devices)
    printer(f"{title} (estimate):")
    for line in plan.lines():
        printer(line)
    if not devices:
        printer("  no GPU visible here: compare the peak with the memory of the GPU you will use")
        return True
    smallest = min(devices)
    if plan.total > smallest:
        printer(
            f"warning: the estimated peak {plan.total / GIB:.1f} GiB exceeds the smallest visible GPU "
            f"({smallest / GIB:.1f} GiB): lower the batch or max_length, turn on gradient_checkpointing "
            "or load_in_4bit, or use more GPUs with FSDP"
        )
        return False
    printer(f"  fits: {len(devices)} visible GPU(s), smallest {smallest / GIB:.1f} GiB")
    return True
