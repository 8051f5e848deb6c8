"""The model check: the only part of validation that calls the Hub about the submitted model."""

from __future__ import annotations

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
        from lmolt_hub.cards import parse_card

        readme = api.hf_hub_download(repo_id, "README.md", revision=revision)
        meta = parse_card(Path(readme).read_text(encoding="utf-8"))[0]
        return meta.get("license")
    except Exception:  # noqa: BLE001 - no card means no licence
        return None


def _check_loads(model_id: str, revision: str) -> None:
    """transformers must know the architecture without remote code (the config is enough to tell)."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(model_id, revision=revision, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - whatever a hostile config.json makes transformers raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(f"model {model_id} does not load without remote code: {first}") from None


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


def check_model(api: Any, model_id: str, revision: str) -> dict[str, Any]:
    """Existence at ``revision`` (-> its commit sha), no remote code, no pickle-only weights, a
    licence, and an adapter's base. Returns facts (``sha``, ``license``, ``base_model``...)."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        info = api.model_info(model_id, revision=revision)
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
    facts: dict[str, Any] = {"sha": sha}
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
        _check_loads(model_id, sha)
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
