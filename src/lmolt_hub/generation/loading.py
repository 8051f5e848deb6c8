"""Load any checkpoint for generation: a Hub id or a local path, a full model or a PEFT adapter.

Safety first: ``trust_remote_code`` stays off unless asked, and pickle weights
(``*.bin``, ``*.pt``) are refused unless ``allow_pickle``; when both formats
exist only the safetensors files are downloaded. Every Hub download is pinned
to the commit sha that ``model_info`` resolved, and the shas (model, adapter,
base) are recorded so the results say exactly what was evaluated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.hub.ref import HubRef, is_local, repo_info

log = logging.getLogger(__name__)

# "default": bf16 on CUDA (fp16 where the GPU lacks bf16), float32 on CPU; "auto": as stored in the
# checkpoint (the LPM24 bases are stored in F32: ~27 GB of weights for a 7B model).
DTYPES = ("default", "auto", "float32", "bfloat16", "float16")
SAFE_WEIGHTS = (".safetensors",)
PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Other frameworks' weights and exports we never need.
_IGNORE = ["*.h5", "*.msgpack", "*.onnx", "*.onnx_data", "*.gguf", "*.ot", "*.tflite", "original/*"]
_ADAPTER_CONFIG = "adapter_config.json"


class ModelLoadError(RuntimeError):
    """A checkpoint could not be resolved or loaded; the message names the problem and the fix."""


@dataclass(kw_only=True)
class ModelRef(HubRef):
    """Where a checkpoint lives and what it is, before any weights are loaded."""

    path: Path  # local directory with the files (the Hub snapshot, or local_path itself)
    content_sha256: str | None  # hash of local weight + config files (cache key for local paths)
    is_adapter: bool
    is_seq2seq: bool = False
    base: ModelRef | None = None

    def key(self) -> str:
        """What identifies these weights: the Hub commit, else the content hash."""
        return self.sha or f"sha256:{self.content_sha256}"


@dataclass
class LoadOptions:
    dtype: str = "default"
    load_in_4bit: bool = False
    trust_remote_code: bool = False
    allow_pickle: bool = False
    device: str | None = None  # None: cuda when available, else cpu

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    ref: ModelRef
    options: LoadOptions
    info: dict[str, Any] = field(default_factory=dict)  # the results' "model" block


def _weight_files(names: list[str]) -> tuple[list[str], list[str]]:
    safe = [n for n in names if n.endswith(SAFE_WEIGHTS)]
    pickled = [n for n in names if n.endswith(PICKLE_WEIGHTS) and not n.endswith("training_args.bin")]
    return safe, pickled


def _check_weights(model: str, names: list[str], allow_pickle: bool) -> list[str]:
    """Patterns to skip when downloading; raise when only pickle weights exist and they are not allowed."""
    safe, pickled = _weight_files(names)
    if safe:
        return [f"*{ext}" for ext in PICKLE_WEIGHTS]  # safetensors preferred: never fetch pickles
    if pickled and not allow_pickle:
        raise ModelLoadError(
            f"{model}: only pickle weights ({', '.join(sorted(pickled)[:3])}) and no safetensors; loading "
            "pickles can run arbitrary code. Convert the checkpoint to safetensors, or pass --allow-pickle "
            "if you trust it."
        )
    if not safe and not pickled:
        raise ModelLoadError(f"{model}: no model or adapter weights found (expected *.safetensors)")
    return []


def _content_hash(path: Path) -> str:
    """sha256 over the config, tokenizer and weight files of a local checkpoint (sorted, with names)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel or rel == "README.md":
            continue  # caches and cards do not change the outputs
        h.update(rel.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 24), b""):
                h.update(chunk)
    return h.hexdigest()


def _hub_snapshot(model: str, revision: str | None, allow_pickle: bool) -> tuple[Path, str]:
    from huggingface_hub import constants, snapshot_download

    if constants.HF_HUB_OFFLINE:
        return _offline_snapshot(model, revision, allow_pickle)
    info = repo_info(model, revision, error=ModelLoadError)
    names = [s.rfilename for s in (info.siblings or [])]
    ignore = _check_weights(model, names, allow_pickle) + _IGNORE
    # Download by the name asked for (so the cache records the ref for offline use), then make sure
    # it is the commit model_info saw; if the branch moved in between, fetch that commit itself.
    path = Path(snapshot_download(model, revision=revision, ignore_patterns=ignore))
    if path.name != info.sha:
        path = Path(snapshot_download(model, revision=info.sha, ignore_patterns=ignore))
    return path, info.sha


def _offline_snapshot(model: str, revision: str | None, allow_pickle: bool) -> tuple[Path, str]:
    """HF_HUB_OFFLINE=1: the cached snapshot of ``model`` (its folder name is the commit sha)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(model, revision=revision, local_files_only=True))
    except LocalEntryNotFoundError as exc:
        raise ModelLoadError(
            f"{model}: HF_HUB_OFFLINE is set and revision {revision or 'main'!r} is not in the local cache"
        ) from exc
    names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    _check_weights(model, names, allow_pickle)
    return path, path.name


def resolve(model: str, revision: str | None = None, allow_pickle: bool = False, _depth: int = 0) -> ModelRef:
    """Find ``model`` (local path or Hub id), fetch its files, and resolve an adapter's base."""
    if _depth > 3:
        raise ModelLoadError(f"{model}: adapter chain too deep (an adapter whose base is an adapter ...)")
    local = is_local(model)
    if local:
        path = Path(model).expanduser().resolve()
        if not path.is_dir():
            raise ModelLoadError(f"local model path {path} does not exist or is not a directory")
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        _check_weights(model, names, allow_pickle)
        sha, content = None, _content_hash(path)
    else:
        path, sha = _hub_snapshot(model, revision, allow_pickle)
        content = None
    ref = ModelRef(id=model, revision=revision, sha=sha, local_path=path if local else None, path=path,
                   content_sha256=content, is_adapter=False)  # fmt: skip
    adapter_cfg = path / _ADAPTER_CONFIG
    if adapter_cfg.exists():
        cfg = json.loads(adapter_cfg.read_text())
        base_id = cfg.get("base_model_name_or_path")
        if not base_id:
            raise ModelLoadError(f"{model}: {_ADAPTER_CONFIG} has no base_model_name_or_path")
        ref.is_adapter = True
        ref.base = resolve(base_id, cfg.get("revision"), allow_pickle, _depth + 1)
        ref.is_seq2seq = ref.base.is_seq2seq
    else:
        config_file = path / "config.json"
        if not config_file.exists():
            raise ModelLoadError(
                f"{model}: no config.json (and no {_ADAPTER_CONFIG}): not a transformers model"
            )
        ref.is_seq2seq = bool(json.loads(config_file.read_text()).get("is_encoder_decoder", False))
    return ref


def choose_dtype(requested: str, device_type: str, bf16_supported: bool = False) -> str:
    """The dtype name to load with: ``default`` resolved for the device, anything else kept.

    Pure: ``device_type`` is ``cuda``/``cpu``/... and ``bf16_supported`` what the GPU reports.
    On CUDA, half precision halves the weights and the KV cache (fp32 7B weights alone are ~27 GB)
    and is what the models were trained in; on CPU float32 is the fast and exact choice.
    """
    if requested not in DTYPES:
        raise ModelLoadError(f"unknown dtype {requested!r}; expected one of {', '.join(DTYPES)}")
    if requested != "default":
        return requested
    if device_type == "cuda":
        return "bfloat16" if bf16_supported else "float16"
    return "float32"


def resolve_dtype(opt: LoadOptions) -> str:
    """``choose_dtype`` for the device ``opt`` loads onto."""
    import torch

    device = _device(opt)
    is_cuda = torch.device(device).type == "cuda"
    return choose_dtype(opt.dtype, "cuda" if is_cuda else device, is_cuda and torch.cuda.is_bf16_supported())


def _torch_dtype(name: str):
    import torch

    if name not in DTYPES or name == "default":
        raise ModelLoadError(f"unknown dtype {name!r}; expected one of {', '.join(DTYPES[1:])}")
    return "auto" if name == "auto" else getattr(torch, name)


def _device(opt: LoadOptions) -> str:
    import torch

    return opt.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _load_weights(ref: ModelRef, opt: LoadOptions):
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    cls = AutoModelForSeq2SeqLM if ref.is_seq2seq else AutoModelForCausalLM
    safe, _ = _weight_files([p.name for p in ref.path.rglob("*") if p.is_file()])
    kwargs: dict[str, Any] = {
        "dtype": _torch_dtype(resolve_dtype(opt)),
        "trust_remote_code": opt.trust_remote_code,
        "use_safetensors": (bool(safe) or None) if opt.allow_pickle else True,
        # straight onto the device: a 7B F32 checkpoint is never materialised in CPU RAM first
        "device_map": {"": _device(opt)},
    }
    if opt.load_in_4bit:
        import torch
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    try:
        model = cls.from_pretrained(str(ref.path), **kwargs)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise ModelLoadError(
                f"{ref.id}: needs custom code from the repository; pass --trust-remote-code if you trust it"
            ) from exc
        raise
    return model


def load_tokenizer(ref: ModelRef, opt: LoadOptions):
    from transformers import AutoTokenizer

    # An adapter repo may ship its own tokenizer (e.g. with added tokens); otherwise use the base's.
    src = ref
    if ref.is_adapter and not any(
        (ref.path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")
    ):
        src = ref.base
    tok = AutoTokenizer.from_pretrained(str(src.path), trust_remote_code=opt.trust_remote_code)
    tok.padding_side = "left"  # decoder-only generation pads on the left
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (names, dtypes, shapes); no tensor data is read."""
    with open(path, "rb") as f:
        raw = f.read(8)
        size = int.from_bytes(raw, "little") if len(raw) == 8 else -1
        if not 0 < size <= _MAX_HEADER:
            raise ValueError(f"{path.name}: not a safetensors file (header size {size})")
        header = json.loads(f.read(size))
    if not isinstance(header, dict):
        raise ValueError(f"{path.name}: not a safetensors file (header is not an object)")
    header.pop("__metadata__", None)
    return header


_MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own limit
# safetensors dtype codes -> torch names (the floating ones: they decide "auto")
_ST_FLOAT = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
             "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}  # fmt: skip


def _weights_facts(path: Path) -> tuple[int | None, str | None]:
    """(number of weights, dtype of the first floating tensor) of the top-level safetensors files of
    a checkpoint, from their headers; (None, None) when a header cannot be read."""
    files = sorted(path.glob("*.safetensors"))
    total, first_float = 0, None
    try:
        for f in files:
            for t in safetensors_header(f).values():
                total += math.prod(t["shape"])
                first_float = first_float or _ST_FLOAT.get(t["dtype"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None  # a damaged file: only loading it would fail, reading the facts need not
    return (total if files else None), first_float


def _config(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def _architecture(cfg: dict[str, Any], seq2seq: bool) -> str | None:
    """What ``from_pretrained`` builds: the config's first architecture, else the auto class's pick."""
    archs = cfg.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    try:
        from transformers.models.auto import modeling_auto as auto

        table = (
            auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES
            if seq2seq
            else auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        )
        return table.get(cfg.get("model_type"))
    except ImportError:
        return None


def _stored_dtype(cfg: dict[str, Any], first_float: str | None) -> str | None:
    """``dtype="auto"`` as transformers resolves it: the config's dtype, else the first floating weight's."""
    stored = cfg.get("dtype") or cfg.get("torch_dtype")
    return str(stored).removeprefix("torch.") if stored else first_float


def model_info_block(
    ref: ModelRef, opt: LoadOptions, model: Any = None, backend: str = "hf"
) -> dict[str, Any]:
    """The results' ``model`` block, from the checkpoint's files: architecture from config.json,
    parameter count and stored dtype from the safetensors headers, dtype from the load options, so a
    run that generates nothing (all cached) records the same block without loading weights. A loaded
    ``model`` only fills what the files leave open."""
    net_ref = ref.base if ref.is_adapter and ref.base is not None else ref
    cfg = _config(net_ref.path)
    n_weights, first_float = _weights_facts(net_ref.path)
    if ref.is_adapter and n_weights is not None:
        n_adapter = _weights_facts(ref.path)[0]
        n_weights = None if n_adapter is None else n_weights + n_adapter
    arch = _architecture(cfg, ref.is_seq2seq)
    if opt.dtype == "auto":
        # vLLM resolves "auto" itself (half precision for F32 checkpoints): not knowable from the files
        used = None if backend == "vllm" else _stored_dtype(cfg, first_float)
    else:
        used = None if opt.dtype == "default" else opt.dtype
    if model is not None:
        archs = getattr(getattr(model, "config", None), "architectures", None)
        arch = arch or (archs[0] if archs else type(model).__name__)
        used = used or str(getattr(model, "dtype", "") or "").removeprefix("torch.") or None
    return {
        "id": ref.id,
        "revision": ref.revision,
        "sha": ref.sha,
        "adapter_sha": ref.sha if ref.is_adapter else None,
        "base_model": ref.base.id if ref.base else None,
        "base_sha": ref.base.sha if ref.base else None,
        "dtype": opt.dtype,
        "dtype_used": used,  # what the weights were computed in (e.g. float32 for "auto" on an F32 base)
        "load_in_4bit": opt.load_in_4bit,
        "is_adapter": ref.is_adapter,
        "architecture": arch,
        "parameters": n_weights,  # weights in the safetensors files (base + adapter); None if unreadable
        "local_path": str(ref.path) if ref.sha is None else None,
        "content_sha256": ref.content_sha256,
        "base_content_sha256": ref.base.content_sha256 if ref.base else None,
    }


def load_model(
    model: str, revision: str | None = None, options: LoadOptions | None = None, ref: ModelRef | None = None
) -> LoadedModel:
    """Resolve (unless ``ref`` is given) and load ``model`` in eval mode; an adapter is applied to its base."""
    opt = options or LoadOptions()
    ref = ref or resolve(model, revision, opt.allow_pickle)
    net = load_network(ref, opt)
    tok = load_tokenizer(ref, opt)
    return LoadedModel(model=net, tokenizer=tok, ref=ref, options=opt, info=model_info_block(ref, opt, net))


def load_network(ref: ModelRef, opt: LoadOptions) -> Any:
    """The weights of ``ref`` in eval mode; an adapter is applied to its base."""
    if ref.is_adapter:
        from peft import PeftModel

        base = _load_weights(ref.base, opt)
        net = PeftModel.from_pretrained(base, str(ref.path), is_trainable=False)
    else:
        net = _load_weights(ref, opt)
    return net.eval()


def _read_json(repo: str, name: str, revision: str | None) -> dict[str, Any] | None:
    """One small JSON file of a local folder or a Hub repo (None when absent); no weights."""
    if is_local(repo):
        f = Path(repo).expanduser() / name
        return json.loads(f.read_text()) if f.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return json.loads(Path(hf_hub_download(repo, name, revision=revision)).read_text())
    except EntryNotFoundError:
        return None


def dry_run(model: str, revision: str | None = None, *, dtype: str = "default", load_in_4bit: bool = False,
            batch_size: int = 16, max_new_tokens: int = 512, max_prompt_tokens: int = 512,
            printer=print) -> int:  # fmt: skip
    """Print the estimated peak GPU memory of evaluating ``model`` (only its config files are read).

    The plan is for a CUDA GPU even on a machine without one: ``default`` is bf16 there, ``auto``
    the dtype stored in the checkpoint (float32 for the LPM24 bases).
    """
    import torch

    from lmolt_hub.memory import DTYPE_BYTES, ModelShape, plan_generation, report

    adapter = _read_json(model, _ADAPTER_CONFIG, revision)
    base, base_rev = (
        (adapter.get("base_model_name_or_path"), adapter.get("revision")) if adapter else (model, revision)
    )
    cfg = _read_json(base, "config.json", base_rev) if base else None
    if cfg is None:
        raise ModelLoadError(f"{model}: no config.json (and no adapter base): not a transformers model")
    try:
        shape = ModelShape.from_config(cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{model}: --dry-run estimates decoder-only (Llama-style) models only") from exc
    bf16 = torch.cuda.is_bf16_supported() if torch.cuda.is_available() else True
    used = choose_dtype(dtype, "cuda", bf16)
    if used == "auto":
        stored = str(cfg.get("torch_dtype") or cfg.get("dtype") or "float32")
        used = stored if stored in DTYPE_BYTES else "float32"
    plan = plan_generation(
        shape, dtype=used, load_in_4bit=load_in_4bit, batch_size=batch_size, max_prompt_tokens=max_prompt_tokens,
        max_new_tokens=max_new_tokens, lora_r=(adapter or {}).get("r"),
        lora_target_modules=(adapter or {}).get("target_modules"),
    )  # fmt: skip
    plan.notes.append(
        f"hf backend, prompts of up to {max_prompt_tokens} tokens; vLLM instead reserves a fixed share of the GPU"
    )
    report(plan, printer=printer, title=f"{model} ({used}): generation memory")
    printer("dry run: nothing was generated or downloaded besides config files")
    return 0
