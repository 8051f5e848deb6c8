"""Generation backends behind one interface: prompts in, *raw* continuations out.

A raw continuation is the decoded new tokens, up to and including the first EOS;
``postprocess`` (``generation/postprocess.py``) turns it into the answer, and
``engine.generate_all`` adds the cache, sharding over ``accelerate`` processes and a
progress bar.

- ``hf``: transformers ``generate``; prompts sorted by length and batched with
  left padding (so the batches are dense and each prompt ends where generation
  starts), greedy unless sampling is asked for. Seq2seq models work too.
- ``vllm``: optional (``pip install lmolt-hub[vllm]``); used by ``--backend
  auto`` when vllm is installed and a GPU is present. ``vllm_engine_args``
  sizes the engine from the adapter (LoRA rank, target modules) and the run
  (longest prompt + new tokens); an adapter vLLM cannot serve raises
  ``VLLMUnsupported`` with the reason, and the engine falls back to hf.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from lmolt_hub.generation.postprocess import stop_strings
from lmolt_hub.prompts import SECTION_MARKERS

log = logging.getLogger(__name__)

BACKENDS = ("auto", "hf", "vllm")
OnBatch = Callable[[list[int], list[str]], None]


@dataclass(frozen=True)
class GenerationParams:
    """Every parameter that changes what is generated (all of it is recorded and keys the cache)."""

    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    num_beams: int = 1
    repetition_penalty: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.do_sample and self.temperature <= 0:
            raise ValueError("sampling needs temperature > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    name: str

    def generate(
        self, prompts: Sequence[str], params: GenerationParams, on_batch: OnBatch | None = None
    ) -> list[str]:
        """Raw continuations of ``prompts``, in the order given; ``on_batch(indices, raws)`` after each batch."""
        ...

    def stop_strings(self) -> tuple[str, ...]:
        """Text of the tokens that end an answer (EOS, pad) for ``postprocess``."""
        ...


class HFBackend:
    """transformers ``generate``, batched and length-sorted, left padding."""

    name = "hf"

    def __init__(
        self, model: Any, tokenizer: Any, batch_size: int = 16, max_input_tokens: int | None = None
    ) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, max(1, batch_size)
        self.max_input_tokens = max_input_tokens  # None: prompts are never truncated
        self.is_seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        self.tokenizer.padding_side = "left"
        # a causal prompt loses its header, never its "### Response:" end; a seq2seq input its tail
        self.tokenizer.truncation_side = "right" if self.is_seq2seq else "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def stop_strings(self) -> tuple[str, ...]:
        return stop_strings(self.tokenizer)

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = ids if isinstance(ids, list) else [ids]
        return {i for i in [*ids, self.tokenizer.eos_token_id] if i is not None}

    def _generate_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "do_sample": params.do_sample,
            "num_beams": params.num_beams,
            "repetition_penalty": params.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.do_sample:
            kw |= {"temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k}
        else:  # unset sampling knobs so a checkpoint's generation_config cannot warn or interfere
            kw |= {"temperature": None, "top_p": None, "top_k": None}
        return kw

    def _decode(self, new_tokens: list[int], eos: set[int]) -> str:
        """The continuation's text up to the first EOS, which is marked by the EOS token text.

        Other special tokens (padding, BOS, UNK) are dropped: they are never part of an answer.
        """
        out: list[int] = []
        stopped = False
        for t in new_tokens:
            if t in eos:
                stopped = True
                break
            out.append(t)
        text = self.tokenizer.decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return text + (self.tokenizer.eos_token or "") if stopped else text

    def _encode(self, prompts: list[str]) -> Any:
        limit = self.max_input_tokens
        return self.tokenizer(
            prompts, return_tensors="pt", padding=True, truncation=limit is not None, max_length=limit
        ).to(self.model.device)

    def _generate_batch(
        self, prompts: list[str], params: GenerationParams, seed_offset: int = 0
    ) -> list[str]:
        """Raw continuations of one padded batch."""
        import torch

        enc = self._encode(prompts)
        if params.do_sample:  # reproducible for a given batch size (greedy needs no seed)
            torch.manual_seed(params.seed + seed_offset)
        with torch.inference_mode():
            gen = self.model.generate(**enc, **self._generate_kwargs(params))
        new = gen if self.is_seq2seq else gen[:, enc["input_ids"].shape[1] :]
        eos, raws = self._eos_ids(), []
        for row in new.tolist():
            if self.is_seq2seq and row and row[0] == self.model.config.decoder_start_token_id:
                row = row[1:]
            raws.append(self._decode(row, eos))
        return raws

    def generate(
        self, prompts: Sequence[str], params: GenerationParams, on_batch: OnBatch | None = None
    ) -> list[str]:
        if not prompts:
            return []
        # Token counts as the model sees them (special tokens included): similar lengths share a batch.
        lengths = [len(ids) for ids in self.tokenizer(list(prompts))["input_ids"]]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])  # longest first: OOM shows early
        outputs: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            raws = self._generate_batch([prompts[i] for i in idx], params, seed_offset=start)
            for i, raw in zip(idx, raws, strict=True):
                outputs[i] = raw
            if on_batch:
                on_batch(idx, raws)
        return outputs


# LoRA ranks vLLM accepts for max_lora_rank; an adapter's rank is rounded up to the next one.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256)
# Layers vLLM applies LoRA to in Llama-family models (it packs q/k/v and gate/up itself).
# Embedding and lm_head LoRA are not served by current vLLM.
VLLM_LORA_MODULES = frozenset(
    {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "qkv_proj", "gate_up_proj"}
)
# config.json keys that bound the context length, in order of preference.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


class VLLMUnsupported(ValueError):
    """vLLM cannot serve this model or adapter; the message says why (the engine then uses hf)."""


def _lora_rank(cfg: dict[str, Any]) -> int:
    """The largest rank in the adapter (``r`` and any per-layer ``rank_pattern``)."""
    pattern = cfg.get("rank_pattern") or {}
    return max([int(cfg.get("r") or 0), *(int(v) for v in pattern.values())])


def _unservable(cfg: dict[str, Any]) -> str | None:
    """Why vLLM cannot serve the LoRA adapter ``cfg`` (adapter_config.json), or None."""
    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        return f"it is a {cfg.get('peft_type')} adapter; vLLM serves only LoRA"
    if cfg.get("use_dora"):
        return "it is a DoRA adapter (use_dora: true), which vLLM does not support"
    if cfg.get("modules_to_save"):
        return (
            f"it saves full modules ({', '.join(cfg['modules_to_save'])}); vLLM needs modules_to_save empty"
        )
    if cfg.get("bias", "none") != "none":
        return f"it trains biases (bias: {cfg['bias']}); vLLM serves LoRA without bias"
    rank = _lora_rank(cfg)
    if rank > VLLM_LORA_RANKS[-1]:
        return f"its LoRA rank {rank} exceeds vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}"
    targets = cfg.get("target_modules")
    if isinstance(targets, str):
        if targets != "all-linear":
            return f"its target_modules is a pattern ({targets!r}) vLLM may not match"
    elif not targets:
        return "its adapter_config.json names no target_modules"
    else:
        other = sorted({t.rsplit(".", 1)[-1] for t in targets} - VLLM_LORA_MODULES)
        if other:
            return f"it adapts {', '.join(other)}, which vLLM does not serve LoRA on"
    return None


def _context_limit(model_dir: Path) -> int | None:
    cfg_file = model_dir / "config.json"
    cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}
    cfg = cfg.get("text_config", cfg)
    return next((int(cfg[k]) for k in _CONTEXT_KEYS if cfg.get(k)), None)


def vllm_engine_args(
    model_dir: str | Path,
    adapter_dir: str | Path | None = None,
    *,
    max_prompt_tokens: int,
    max_new_tokens: int,
    dtype: str = "auto",
    tokenizer: str | None = None,
    trust_remote_code: bool = False,
    max_num_seqs: int = 256,
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for ``model_dir`` (+ the LoRA adapter in ``adapter_dir``).

    Pure (reads only the two config files; vllm need not be installed). ``max_model_len`` is the
    longest prompt plus ``max_new_tokens``, capped at the model's context length, so the KV cache
    is not sized for contexts the eval set never reaches. Raises ``VLLMUnsupported`` with the
    reason when vLLM cannot serve the adapter.
    """
    model_dir = Path(model_dir)
    needed = max_prompt_tokens + max_new_tokens
    limit = _context_limit(model_dir)
    args: dict[str, Any] = {
        "model": str(model_dir),
        "tokenizer": tokenizer or str(model_dir),
        "dtype": dtype,
        "trust_remote_code": trust_remote_code,
        "max_num_seqs": max_num_seqs,
        "max_model_len": min(needed, limit) if limit else needed,
        "enable_lora": adapter_dir is not None,
    }
    if adapter_dir is None:
        return args
    cfg_file = Path(adapter_dir) / "adapter_config.json"
    if not cfg_file.exists():
        raise VLLMUnsupported(f"{adapter_dir} has no adapter_config.json")
    cfg = json.loads(cfg_file.read_text())
    reason = _unservable(cfg)
    if reason:
        raise VLLMUnsupported(f"vLLM cannot serve the adapter in {adapter_dir}: {reason}")
    rank = _lora_rank(cfg)
    args |= {
        "max_lora_rank": next(r for r in VLLM_LORA_RANKS if r >= rank),
        "max_loras": 1,  # one adapter per run
    }
    return args


class VLLMBackend:
    """vLLM offline inference (GPU). Adapters are served with vLLM's LoRA support.

    ``engine_args`` come from ``vllm_engine_args`` (LoRA rank, context length sized to the run).
    """

    name = "vllm"

    def __init__(self, engine_args: dict[str, Any], tokenizer: Any, adapter_path: str | None = None) -> None:
        from vllm import LLM

        self.tokenizer = tokenizer
        self.adapter_path = adapter_path
        self.chunk = 1024
        self.engine_args = dict(engine_args)
        self.llm = LLM(**self.engine_args)

    def stop_strings(self) -> tuple[str, ...]:
        return stop_strings(self.tokenizer)

    def generate(
        self, prompts: Sequence[str], params: GenerationParams, on_batch: OnBatch | None = None
    ) -> list[str]:
        from vllm import SamplingParams

        sp = SamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=params.temperature if params.do_sample else 0.0,
            top_p=params.top_p if params.do_sample else 1.0,
            top_k=(params.top_k or -1) if params.do_sample else -1,
            repetition_penalty=params.repetition_penalty,
            seed=params.seed,
            skip_special_tokens=True,
            stop=list(SECTION_MARKERS),
            include_stop_str_in_output=True,
        )
        lora = None
        if self.adapter_path:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("adapter", 1, self.adapter_path)
        # vLLM schedules its own batches; chunks bound what a crash can lose and drive the progress bar.
        raws: list[str] = []
        for start in range(0, len(prompts), self.chunk):
            chunk = list(prompts[start : start + self.chunk])
            outs = self.llm.generate(chunk, sp, lora_request=lora, use_tqdm=False)
            texts = [o.outputs[0].text for o in outs]
            raws += texts
            if on_batch:
                on_batch(list(range(start, start + len(chunk))), texts)
        return raws


def vllm_available() -> bool:
    """vllm is importable and a CUDA GPU is present."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def choose_backend(name: str, seq2seq: bool = False, load_in_4bit: bool = False) -> str:
    """``auto`` -> ``vllm`` when usable for this model, else ``hf``; an explicit choice is checked."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    usable = vllm_available() and not seq2seq and not load_in_4bit
    if name == "vllm" and not usable:
        raise ValueError(
            "--backend vllm needs vllm installed (pip install 'lmolt-hub[vllm]'), a CUDA GPU, and a "
            "decoder-only model loaded without --load-in-4bit"
        )
    if name == "auto":
        return "vllm" if usable else "hf"
    return name
