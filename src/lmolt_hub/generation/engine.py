"""The generation engine: one model, pinned, loaded once, generating with a cache.

``Engine`` is what every stage that generates uses: the harness (evaluation/), the data
stage's rejected outputs (data/negatives.py) and the leaderboard's spot check. It

- resolves the checkpoint once (``loading.resolve``: Hub commit sha or local content hash;
  pickle weights refused unless allowed),
- picks the backend (``auto``: vLLM when usable, else hf) and falls back to hf, saying why,
  when vLLM cannot serve an adapter,
- loads the weights only when something has to be generated (``start``),
- keeps raw generations in a ``GenerationCache`` keyed by everything that changes them,
- and cleans every raw continuation with the one ``postprocess``.

``generate_all`` (cache + sharding over ``accelerate`` processes + progress bar) is the loop
under ``Engine.generate``; it takes any ``Backend``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmolt_hub.generation.backends import (
    Backend,
    GenerationParams,
    HFBackend,
    VLLMBackend,
    VLLMUnsupported,
    choose_backend,
    vllm_engine_args,
)
from lmolt_hub.generation.cache import GenerationCache
from lmolt_hub.generation.loading import (
    LoadOptions,
    ModelRef,
    load_network,
    load_tokenizer,
    model_info_block,
    resolve,
    resolve_dtype,
)
from lmolt_hub.generation.postprocess import postprocess, stop_strings

log = logging.getLogger(__name__)
CACHE_FORMAT = 2  # bump when the meaning of a cached raw output changes
STOPS_FILE = "stop_strings.json"  # beside the generations: the tokenizer's EOS/pad texts


@dataclass
class Generations:
    """What ``Engine.generate`` returns: raw continuations, cleaned outputs, and how many were new."""

    raws: list[str]
    outputs: list[str]
    generated: int  # produced now (not read from the cache)
    unique: int  # distinct prompts
    notes: list[str] = field(default_factory=list)


def warn(msg: str) -> None:
    """A warning the user sees (stderr) and the log keeps."""
    print(f"warning: {msg}", file=sys.stderr)
    log.warning(msg)


class Engine:
    """Generate with one checkpoint (see the module docstring).

    ``batch_size`` and ``max_input_tokens`` (truncate prompts from the left; None: never) apply
    to the hf backend. ``use_cache=False`` generates everything and writes nothing.
    """

    def __init__(
        self,
        ref: ModelRef,
        load: LoadOptions | None = None,
        *,
        backend: str = "auto",
        batch_size: int = 16,
        max_input_tokens: int | None = None,
        cache_dir: str | None = None,
        use_cache: bool = True,
        show_progress: bool = True,
    ) -> None:
        self.ref = ref
        self.load = dataclasses.replace(load or LoadOptions())  # a copy: the caller's is never changed
        self.load.dtype = resolve_dtype(self.load)  # concrete ("bfloat16", not "default"): keys the cache
        self.batch_size, self.max_input_tokens = batch_size, max_input_tokens
        self.cache_dir, self.use_cache, self.show_progress = cache_dir, use_cache, show_progress
        self.backend_name = self._choose(backend)
        self.notes: list[str] = []  # e.g. why vLLM was not used
        # from config.json and the safetensors headers: complete without loading any weights
        self.info = model_info_block(ref, self.load, backend=self.backend_name)
        self._backend: Backend | None = None
        self._tokenizer: Any = None
        self._caches: dict[str, GenerationCache] = {}

    @classmethod
    def for_model(
        cls, model: str, revision: str | None = None, load: LoadOptions | None = None, **kwargs: Any
    ) -> Engine:
        """Resolve ``model`` (Hub id or local path; full model or adapter) and make its engine."""
        load = load or LoadOptions()
        return cls(resolve(model, revision, load.allow_pickle), load, **kwargs)

    def _choose(self, requested: str) -> str:
        name = choose_backend(requested, seq2seq=self.ref.is_seq2seq, load_in_4bit=self.load.load_in_4bit)
        state = distributed_state()
        if name == "vllm" and state is not None and state.num_processes > 1:
            # vLLM batches across all GPUs itself; one vLLM engine per launched process would fight over them.
            if requested == "vllm":
                raise ValueError(
                    "--backend vllm runs in one process: use `python eval_harness/run.py`, not a launcher"
                )
            return "hf"
        return name

    # -- loading ---------------------------------------------------------------------------

    @property
    def is_seq2seq(self) -> bool:
        return self.ref.is_seq2seq

    @property
    def tokenizer(self) -> Any:
        """The tokenizer the prompts are built and measured with (no weights are loaded)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.ref, self.load)
        return self._tokenizer

    def start(self, prompts: Sequence[str] = (), max_new_tokens: int = 512) -> None:
        """Load the backend; vLLM's context is sized for ``prompts`` + ``max_new_tokens``."""
        if self._backend is not None:
            return
        if self.backend_name == "vllm":
            try:
                self._backend = self._vllm(prompts, max_new_tokens)
                return
            except VLLMUnsupported as exc:
                self.notes.append(f"{exc}; generating with --backend hf instead")
                warn(self.notes[-1])
                self.backend_name = "hf"
        net = load_network(self.ref, self.load)
        self.info = model_info_block(self.ref, self.load, net, backend=self.backend_name)
        self._backend = HFBackend(net, self.tokenizer, self.batch_size, self.max_input_tokens)

    def _vllm(self, prompts: Sequence[str], max_new_tokens: int) -> Backend:
        tok = self.tokenizer
        base = self.ref.base if self.ref.is_adapter else self.ref
        adapter = str(self.ref.path) if self.ref.is_adapter else None
        longest = max((len(ids) for ids in tok(list(prompts))["input_ids"]), default=1) if prompts else 1
        args = vllm_engine_args(
            base.path,
            adapter,
            max_prompt_tokens=longest,
            max_new_tokens=max_new_tokens,
            dtype=self.load.dtype,
            tokenizer=tok.name_or_path,
            trust_remote_code=self.load.trust_remote_code,
        )
        return VLLMBackend(args, tok, adapter_path=adapter)

    # -- cache -----------------------------------------------------------------------------

    def cache_fields(self, params: GenerationParams) -> dict[str, Any]:
        """What keys the cache. Deliberately absent: batch size and number of processes (they do not
        change greedy outputs)."""
        ref = self.ref
        fields: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "model": ref.key(),
            "adapter": ref.key() if ref.is_adapter else None,
            "base": ref.base.key() if ref.base else None,
            "dtype": self.load.dtype,
            "load_in_4bit": self.load.load_in_4bit,
            "backend": self.backend_name,
            "generation": params.to_dict(),
        }
        if self.max_input_tokens is not None:  # only when set: older caches stay valid
            fields["max_input_tokens"] = self.max_input_tokens
        return fields

    def _cache(self, params: GenerationParams) -> GenerationCache | None:
        if not self.use_cache:
            return None
        fields = self.cache_fields(params)
        cache = GenerationCache(self.cache_dir, fields)
        return self._caches.setdefault(cache.key, cache)

    def close(self) -> None:
        for cache in self._caches.values():
            cache.close()
        self._caches.clear()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generating ------------------------------------------------------------------------

    def stop_strings(self) -> tuple[str, ...]:
        return stop_strings(self.tokenizer)

    def _stops(self, cache: GenerationCache | None) -> tuple[str, ...]:
        """``stop_strings``, kept with the cache: they depend only on the tokenizer, which the key
        pins, so a fully cached run cleans its outputs without loading the tokenizer."""
        saved = cache.extra(STOPS_FILE) if cache is not None and self._tokenizer is None else None
        if isinstance(saved, list) and all(isinstance(x, str) for x in saved):
            return tuple(saved)
        stops = self.stop_strings()
        if cache is not None and cache.extra(STOPS_FILE) != list(stops):
            cache.put_extra(STOPS_FILE, list(stops))
        return stops

    def pending(self, prompts: Sequence[str], params: GenerationParams) -> int:
        """How many distinct ``prompts`` have no cached output (all of them without a cache)."""
        unique = list(dict.fromkeys(prompts))
        cache = self._cache(params)
        return len(unique) - (len(cache.get(unique)) if cache is not None else 0)

    def generate(
        self, prompts: Sequence[str], params: GenerationParams, desc: str = "generating"
    ) -> Generations:
        """Raw and post-processed outputs of ``prompts``, in order (cached ones are not regenerated)."""
        cache = self._cache(params)
        if self._backend is None and self.pending(prompts, params):
            self.start(prompts, params.max_new_tokens)
        backend = self._backend if self._backend is not None else _Unused()
        raws, generated = generate_all(
            backend, prompts, params, cache=cache, desc=desc, show_progress=self.show_progress
        )
        stops = self._stops(cache)
        outputs = [postprocess(raw, prompt, stops) for raw, prompt in zip(raws, prompts, strict=True)]
        return Generations(raws, outputs, generated, len(set(prompts)), list(self.notes))


class _Unused:
    """Stands in for the backend when every prompt is cached (the weights are never loaded)."""

    name = "cached"

    def generate(self, prompts: Sequence[str], params: GenerationParams, on_batch: Any = None) -> list[str]:
        if prompts:
            raise RuntimeError("generation needed, but the backend was not started")
        return []


# What launchers (torchrun, accelerate launch, MPI) set; the sizes accelerate itself reads.
_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def launched_processes() -> int:
    """How many processes a launcher started this run with (1 for a plain ``python`` run)."""
    sizes = [os.environ.get(v, "").strip() for v in _WORLD_SIZE_VARS]
    return max([int(s) for s in sizes if s.isdigit()], default=1)


def distributed_state():
    """accelerate's process state (rank, world size, device); None in a single process or
    without accelerate.

    Works under ``accelerate launch`` (GPUs) and under ``torchrun`` on CPU: accelerate only
    sets up a multi-process CPU group when told it runs on CPU. A single process never builds
    it: importing accelerate and probing the devices costs ~2 s, which a cached re-score would
    otherwise spend on nothing.
    """
    if launched_processes() <= 1:
        return None
    try:
        import torch
        from accelerate import PartialState
    except ImportError:
        return None
    return PartialState(cpu=not torch.cuda.is_available())


def generate_all(
    backend: Backend,
    prompts: Sequence[str],
    params: GenerationParams,
    cache: Any = None,
    desc: str = "generating",
    show_progress: bool = True,
) -> tuple[list[str], int]:
    """Raw outputs of ``prompts`` (in order) and how many were generated (not cached).

    Cached prompts are skipped; the rest are split across ``accelerate`` processes
    (round-robin over the length-sorted list, so every process gets similar work),
    appended to the cache after every batch, and gathered back in order on every
    process.
    """
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(prompts))
    done: dict[str, str] = cache.get(unique) if cache is not None else {}
    pending = [p for p in unique if p not in done]
    state = distributed_state()
    rank, world = (state.process_index, state.num_processes) if state is not None else (0, 1)
    if world > 1:
        state.wait_for_everyone()  # every process has read the cache before any writes to it: same `pending`
    mine = pending[rank::world]
    bar = tqdm(
        total=len(pending),
        desc=desc,
        unit="sample",
        dynamic_ncols=True,
        disable=not show_progress or rank != 0 or not pending,
    )
    produced: dict[str, str] = {}

    def on_batch(indices: list[int], raws: list[str]) -> None:
        pairs = [(mine[i], raw) for i, raw in zip(indices, raws, strict=True)]
        produced.update(pairs)
        if cache is not None:
            cache.append(pairs)  # durable before the next batch starts
        bar.update(len(pairs) * world)  # the other processes advance at about the same rate

    try:
        backend.generate(mine, params, on_batch=on_batch)
    finally:
        bar.close()
    if world > 1:
        from accelerate.utils import gather_object

        produced = dict(gather_object(list(produced.items())))
    done.update(produced)
    missing = [p for p in unique if p not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} prompts got no output (a process failed?)")
    return [done[p] for p in prompts], len(pending)
