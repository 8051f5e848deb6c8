"""Base model + tokenizer loading for QLoRA: Hub id, local path, or a tiny model.

``tiny://llama`` (optionally ``tiny://llama?seed=3``) builds the package's tiny
Llama once into the lmolt cache, so recipes, tests and the quickstart run on a
CPU in seconds without any pre-pushed model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from lmolt_hub.hub.ref import HubRef, is_local, local_ref, repo_info
from lmolt_hub.training.config import TINY_SCHEME, RecipeError

logger = logging.getLogger(__name__)


def tiny_model_path(spec: str) -> Path:
    """``lmolt_hub.tiny.tiny_model_path`` with a recipe's error."""
    from lmolt_hub.tiny import TinySpecError
    from lmolt_hub.tiny import tiny_model_path as build_tiny

    try:
        return build_tiny(spec)
    except TinySpecError as exc:
        raise RecipeError(str(exc)) from None


def publish_tiny_base(spec: str, namespace: str) -> str:
    """Hub id of the tiny model ``spec`` under ``namespace``, pushed there once.

    An adapter pushed to the Hub must name a parent others can download: a
    ``tiny://`` parent lives only in this machine's cache, so it is published
    first (deterministic: the same seed gives the same weights) and trained from there.
    """
    from huggingface_hub import HfApi

    from lmolt_hub.tiny import push_tiny_base

    url = urlparse(spec)
    seed = int(parse_qs(url.query).get("seed", ["0"])[0])
    repo = f"{namespace}/tiny-{url.netloc}-seed{seed}"
    files = set()
    if HfApi().repo_exists(repo):
        files = set(HfApi().list_repo_files(repo))
    if "config.json" not in files:
        push_tiny_base(repo, seed=seed)
    return repo


def resolve_base_model(name: str, revision: str | None = None) -> HubRef:
    """The base model as a pinned reference (``source`` is what ``from_pretrained`` is given)."""
    if name.startswith(TINY_SCHEME):
        return HubRef(name, local_path=tiny_model_path(name))
    if is_local(name):
        if not Path(name).expanduser().exists():
            raise RecipeError(f"base model path {name} does not exist")
        return local_ref(name)
    info = repo_info(name, revision, what="base model", error=RecipeError)
    files = {s.rfilename for s in info.siblings or []}
    if "adapter_config.json" in files and "config.json" not in files:
        raise RecipeError(
            f"{name!r} is a LoRA adapter, not a full model: train on a merged model instead "
            "(push the parent run with push_merged: true and use <repo>-merged, or merge it with lmolt-hub merge)"
        )
    # Pin the exact commit so the card's parent revision is what was trained on.
    return HubRef(name, revision, info.sha)


def load_tokenizer(ref: HubRef, pad_token: str | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ref.source, revision=ref.pinned)
    if pad_token is not None and tok.pad_token is None:  # a pad token the model already has wins
        if pad_token not in tok.get_vocab():
            raise RecipeError(f"tokenizer_pad_token {pad_token!r} is not in the vocabulary of {ref.id}")
        tok.pad_token = pad_token
    if tok.pad_token is None:
        raise RecipeError(
            f"the tokenizer of {ref.id} has no pad token: set tokenizer_pad_token in the recipe "
            f"(e.g. tokenizer_pad_token: '{tok.unk_token or tok.eos_token}')"
        )
    if tok.eos_token is None:
        raise RecipeError(f"the tokenizer of {ref.id} has no EOS token; generations could never stop")
    return tok


def check_bnb_backend(use_cpu: bool) -> None:
    """Fail early, naming the fix, when 4-bit weights cannot be made on this machine."""
    import torch

    try:
        import bitsandbytes as bnb
    except ImportError as e:
        raise RecipeError(
            "load_in_4bit needs bitsandbytes: pip install 'lmolt-hub[train]' (bitsandbytes>=0.45), "
            "or set load_in_4bit: false to train LoRA on full-precision weights"
        ) from e
    device = "cuda" if torch.cuda.is_available() and not use_cpu else "cpu"
    try:  # a tiny real quantisation: proves the kernel exists for this device
        bnb.functional.quantize_4bit(torch.zeros(64, dtype=torch.bfloat16, device=device), quant_type="nf4")
    except Exception as e:
        raise RecipeError(
            f"bitsandbytes {getattr(bnb, '__version__', '?')} has no 4-bit backend for {device}: "
            f"install a bitsandbytes build for this device or set load_in_4bit: false ({e})"
        ) from e


def quantization_config(model_args):
    import torch
    from transformers import BitsAndBytesConfig

    compute = getattr(torch, model_args.dtype) if model_args.dtype not in (None, "auto") else torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=model_args.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=model_args.use_bnb_nested_quant,
        bnb_4bit_compute_dtype=compute,
        bnb_4bit_quant_storage=model_args.bnb_4bit_quant_storage,
    )


def disable_cpu_inference_repack(model) -> int:
    """Keep every bnb Linear4bit in its trainable layout; returns how many layers were fixed.

    On CPUs with AVX512-BF16, bitsandbytes repacks 4-bit weights into an
    inference-only layout on the first no-grad forward (eval, generation), and
    training afterwards silently computes wrong gradients. Turning the repack
    off (and undoing one already done) keeps QLoRA gradients exact.
    """
    try:
        import bitsandbytes as bnb
        from bitsandbytes.nn import modules as bnb_modules
    except ImportError:
        return 0
    n = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            qs = getattr(module.weight, "quant_state", None)
            if qs is not None and getattr(qs, "packing_format_for_cpu", False):
                module.weight.data, module.weight.quant_state = (
                    bnb_modules._convert_weight_packed_for_cpu_inverse(module.weight.data, qs)
                )
            n += 1
    return n


def keep_trainable_fp32(model, training_args) -> int:
    """Under fp16 mixed precision, make every trainable parameter float32; return how many were cast.

    fp16 training unscales gradients with a GradScaler, which wants float32 gradients: trl 1.16 casts
    the LoRA weights of a 4-bit model to bf16 (the QLoRA paper's advice for bf16 runs), and CUDA's
    unscale kernel has no bf16 version (``"_amp_foreach_non_finite_check_and_unscale_cuda" not
    implemented for 'BFloat16'`` at the first optimiser step); fp16 weights fail too ("Attempting to
    unscale FP16 gradients"). The authors' sft.py (fp16) trained float32 adapters: peft's
    ``prepare_model_for_kbit_training`` + ``get_peft_model``, with no trl cast.
    """
    import torch

    if not getattr(training_args, "fp16", False):
        return 0
    n = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            n += 1
    if n:
        logger.info("fp16: %d trainable tensors cast to float32 for the GradScaler", n)
    return n


def sharded_training(training_args) -> bool:
    """FSDP or DeepSpeed: the launcher places the weights, so no device_map."""
    env = os.environ
    return bool(
        getattr(training_args, "fsdp", None)
        or getattr(training_args, "deepspeed", None)
        or env.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")
        or env.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true")
    )


def load_base_model(ref: HubRef, model_args, training_args, extra_kwargs: dict | None = None):
    """The base model, 4-bit NF4 when the recipe asks for QLoRA, with the CPU repack trap disabled."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"revision": ref.pinned}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    if model_args.dtype not in (None, "auto"):
        kwargs["dtype"] = getattr(torch, model_args.dtype)
    if model_args.load_in_4bit:
        check_bnb_backend(getattr(training_args, "use_cpu", False))
        sharded = sharded_training(training_args)
        if sharded and model_args.bnb_4bit_quant_storage is None:
            # FSDP flattens 4-bit and bf16 weights together: they must share a storage dtype.
            model_args.bnb_4bit_quant_storage = model_args.dtype or "bfloat16"
        kwargs["quantization_config"] = quantization_config(model_args)
        if torch.cuda.is_available() and not getattr(training_args, "use_cpu", False) and not sharded:
            from accelerate import PartialState

            # One full copy per process (DDP); FSDP-QLoRA shards via quant_storage instead.
            kwargs["device_map"] = {"": PartialState().local_process_index}
    kwargs.update(extra_kwargs or {})
    model = AutoModelForCausalLM.from_pretrained(ref.source, **kwargs)
    n = disable_cpu_inference_repack(model)
    if n:
        logger.info("QLoRA: %d Linear4bit layers kept in the trainable layout", n)
    return model


def lora_config(model_args):
    from trl import get_peft_config

    if not model_args.use_peft:
        return None
    if not model_args.lora_target_modules:
        raise RecipeError("use_peft needs lora_target_modules (the paper uses all-linear)")
    return get_peft_config(model_args)
