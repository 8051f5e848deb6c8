"""The model check: the only part of validation that calls the Hub about the submitted model."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from lmolt_hub.leaderboard.validate.basic import SubmissionError, _first_line, strict_json

SAFE_WEIGHTS = (".safetensors",)
PICKLE_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def _card_license(api: Any, repo_id: str, revision: str, info: Any) -> str | None:
    card = getattr(info, "card_data", None) or getattr(info, "cardData", None)
    license_ = card.get("license") if card is not None and hasattr(card, "get") else None
    if license_:
        return str(license_)
    try:  # fall back to the README front matter
        from lmolt_hub.hub.cards import parse_card

        readme = api.hf_hub_download(repo_id, "README.md", revision=revision)
        meta = parse_card(Path(readme).read_text(encoding="utf-8"))[0]
        return meta.get("license")
    except Exception:  # noqa: BLE001 - no card means no licence
        return None


# Stated limits (docs/leaderboard.md): what one submission may make the reviewer download and build.
MAX_PARAMS = 14_000_000_000  # a 7B model in any of the paper's set-ups fits with room to spare
MAX_DOWNLOAD_BYTES = 40 * 1024**3
_INSPECTED: dict[
    tuple[str, str, int], dict[str, int]
] = {}  # (model, commit sha, limit) -> counts that passed


def _text_config(cfg: Any) -> Any:
    getter = getattr(cfg, "get_text_config", None)
    return getter() if callable(getter) else cfg


def _int(cfg: Any, *names: str) -> int:
    for name in names:
        value = getattr(cfg, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def estimate_params(cfg: Any) -> int:
    """A transformer's parameter count from its config's sizes, before anything is built: the
    embedding plus per layer attention (4 h^2) and a gated MLP (3 h i). Exact for nothing, within
    a small factor for every decoder and encoder-decoder the harness loads."""
    text = _text_config(cfg)
    hidden = _int(text, "hidden_size", "d_model", "n_embd")
    layers = _int(text, "num_hidden_layers", "num_layers", "n_layer") + _int(text, "num_decoder_layers")
    inner = _int(text, "intermediate_size", "d_ff", "n_inner", "ffn_dim") or 4 * hidden
    vocab = _int(text, "vocab_size")
    return vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inner)


def _declared_shapes(cfg: Any) -> tuple[dict[str, tuple[int, ...]], int, str]:
    """(parameter name -> shape, parameter count, base-model prefix), built on the meta device
    (no memory is allocated for the weights)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if getattr(cfg, "is_encoder_decoder", False) else AutoModelForCausalLM
    with torch.device("meta"):
        model = auto.from_config(cfg)
    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    return shapes, sum(p.numel() for p in model.parameters()), str(getattr(model, "base_model_prefix", ""))


def _stored_shapes(model_id: str, revision: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from the safetensors headers (HTTP range reads, not the weights)."""
    from huggingface_hub import get_safetensors_metadata
    from huggingface_hub.errors import NotASafetensorsRepoError

    try:
        meta = get_safetensors_metadata(model_id, revision=revision)
    except NotASafetensorsRepoError:
        return {}
    return {name: tuple(info.shape) for f in meta.files_metadata.values() for name, info in f.tensors.items()}


def inspect_model(model_id: str, revision: str, max_params: int = MAX_PARAMS) -> dict[str, int]:
    """Run in a child (``sandbox.run_limited``): the config loads without remote code, the declared
    and the stored parameter counts are within ``max_params`` (the declared one estimated before
    anything is built), and every stored tensor has its declared shape."""
    from transformers import AutoConfig

    from lmolt_hub.leaderboard.sandbox import stage

    stage("reading config.json")
    try:
        cfg = AutoConfig.from_pretrained(model_id, revision=revision, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - whatever a hostile config.json makes transformers raise
        raise SubmissionError(
            f"model {model_id} does not load without remote code: {_first_line(exc)}"
        ) from None
    limit = f"over the reviewer's limit of {max_params:,}"
    if estimate_params(cfg) > max_params:
        raise SubmissionError(
            f"model {model_id}: config.json declares ~{estimate_params(cfg):,} parameters, {limit}"
        )
    stage("building the declared shapes on the meta device")
    declared, n_declared, prefix = _declared_shapes(cfg)
    if n_declared > max_params:
        raise SubmissionError(f"model {model_id}: config.json declares {n_declared:,} parameters, {limit}")
    stage("reading the safetensors headers")
    stored = _stored_shapes(model_id, revision)
    n_stored = sum(math.prod(shape) for shape in stored.values())
    if n_stored > max_params:
        raise SubmissionError(
            f"model {model_id}: its safetensors files hold {n_stored:,} parameters, {limit}"
        )
    for name, shape in sorted(stored.items()):
        bare = name.removeprefix(f"{prefix}.") if prefix else name
        want = declared.get(name) or declared.get(f"{prefix}.{name}") or declared.get(bare)
        if want is not None and want != shape:
            raise SubmissionError(
                f"model {model_id}: tensor {name} is stored with shape {list(shape)}, but config.json "
                f"declares {list(want)}"
            )
    return {"params": n_declared, "stored_params": n_stored}


def weights_sha256(siblings: list[Any]) -> str | None:
    """One hash of a model's weights: the files' content hashes (LFS sha256), not their names, so
    the same weights under another id or file name hash the same."""
    hashes = sorted(
        (getattr(s, "lfs", None) and getattr(s.lfs, "sha256", None)) or s.blob_id
        for s in siblings
        if s.rfilename.endswith(SAFE_WEIGHTS)
    )
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest() if hashes else None


def _repo_json(api: Any, model_id: str, name: str, revision: str, max_bytes: int = 1024 * 1024) -> dict:
    """A small JSON file of the model repo, strictly parsed; any problem is the submitter's."""
    path = Path(api.hf_hub_download(model_id, name, revision=revision))
    if path.stat().st_size > max_bytes:
        raise SubmissionError(f"model {model_id}: {name} is over {max_bytes:,} bytes")
    obj = strict_json(path.read_bytes(), f"model {model_id}: {name}")
    if not isinstance(obj, dict):
        raise SubmissionError(f"model {model_id}: {name} is not a JSON object")
    return obj


def _check_weights(model_id: str, names: list[str]) -> None:
    """The reviewer loads only safetensors: a model with pickle weights alone is refused up front."""
    weights = [n for n in names if n.endswith(SAFE_WEIGHTS + PICKLE_WEIGHTS) and "training_args" not in n]
    if weights and not any(n.endswith(SAFE_WEIGHTS) for n in weights):
        raise SubmissionError(
            f"model {model_id} has only pickle weights ({', '.join(sorted(weights)[:3])}); the reviewer "
            "never loads pickles (they can run code): push safetensors (save_pretrained does by default)"
        )


def check_model(
    api: Any,
    model_id: str,
    revision: str,
    *,
    limits: Any = None,
    max_params: int = MAX_PARAMS,
    max_download_bytes: int = MAX_DOWNLOAD_BYTES,
) -> dict[str, Any]:
    """Existence at ``revision`` (-> its commit sha), no remote code, no pickle-only weights, a
    download within ``max_download_bytes``, parameters within ``max_params`` with the declared shapes
    (checked in a child under ``limits``, a ``sandbox.Limits``), a licence, and an adapter's base.
    Returns facts (``sha``, ``license``, ``weights_sha256``, ``base_model``...)."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    from lmolt_hub.leaderboard.sandbox import Limits, SandboxError, run_limited

    try:
        info = api.model_info(model_id, revision=revision, files_metadata=True)
    except (HfHubHTTPError, HFValidationError) as exc:
        raise SubmissionError(
            f"model {model_id} not found at revision {revision} on the Hub ({_first_line(exc)})"
        ) from None
    names = [s.rfilename for s in info.siblings or []]
    if any(n.endswith(".py") for n in names):
        raise SubmissionError(
            f"model {model_id} ships Python files: models needing remote code are not accepted"
        )
    sha = info.sha
    size = sum(s.size or 0 for s in info.siblings or [])
    if size > max_download_bytes:
        raise SubmissionError(
            f"model {model_id} is {size:,} bytes, over the reviewer's download limit of {max_download_bytes:,}"
        )
    facts: dict[str, Any] = {"sha": sha, "weights_sha256": weights_sha256(list(info.siblings or []))}
    if "adapter_config.json" in names:
        cfg = _repo_json(api, model_id, "adapter_config.json", sha)
        base = cfg.get("base_model_name_or_path")
        if not base or not isinstance(base, str):
            raise SubmissionError(f"adapter {model_id} does not name its base model")
        try:
            base_info = api.model_info(base)
        except (HfHubHTTPError, HFValidationError):
            # e.g. a local path left in adapter_config.json: nobody else could load this adapter
            raise SubmissionError(
                f"adapter {model_id}: its base model {base!r} (adapter_config.json base_model_name_or_path) "
                "is not a model on the Hub"
            ) from None
        facts["base_model"] = base
        facts["base_sha"] = base_info.sha
    elif "config.json" in names:
        cfg = _repo_json(api, model_id, "config.json", sha)
        if cfg.get("auto_map"):
            raise SubmissionError(f"model {model_id} needs remote code (config.json has auto_map)")
        key = (model_id, sha, max_params)  # a commit's content never changes: inspect it once
        if key not in _INSPECTED:
            try:
                _INSPECTED[key] = run_limited(inspect_model, model_id, sha, max_params, limits=limits or Limits(),
                                              what=f"model check of {model_id}")  # fmt: skip
            except SandboxError as exc:
                raise SubmissionError(str(exc)) from None
        facts |= _INSPECTED[key]
    else:
        raise SubmissionError(f"model {model_id}@{revision} has neither config.json nor adapter_config.json")
    _check_weights(model_id, names)
    license_ = _card_license(api, model_id, sha, info)
    if not license_:
        raise SubmissionError(
            f"model {model_id}: its card declares no licence (add `license:` to the README)"
        )
    facts["license"] = license_
    return facts
