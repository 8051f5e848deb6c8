"""Hub side of a run: push target checks, generation config, chat template, push (the card: card.py).

Pushes never overwrite a revision that already holds a model unless
``overwrite_hub_revision`` is set; with ``hub_branch_per_run`` every run goes
to its own branch ``run-<UTC timestamp>``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from lmolt_hub.hub import push as hub_push
from lmolt_hub.hub.push import check_target
from lmolt_hub.training.config import RecipeError

logger = logging.getLogger(__name__)
MODEL_FILES = ("adapter_config.json", "config.json", "adapter_model.safetensors", "model.safetensors")
PUSH_IGNORE = ["checkpoint-*", "checkpoint-*/**", "runs/**", "merged/**", "*.tmp", "training_args.bin"]


def hub_target(method: str, script_args, training_args) -> tuple[str | None, str | None]:
    """(repo id, revision) to push to; (None, None) when not pushing."""
    from lmolt_hub.naming import repo_id, zoo_name

    if not training_args.push_to_hub:
        return None, None
    rid = training_args.hub_model_id
    if not rid:
        if not script_args.hub_org:
            raise RecipeError("push_to_hub needs hub_model_id (org/name) or hub_org")
        rid = repo_id(script_args.hub_org, script_args.hub_name or zoo_name(method))
    revision = training_args.hub_revision
    if script_args.hub_branch_per_run:
        revision = "run-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return rid, revision


def check_revision_free(repo_id: str, revision: str | None, overwrite: bool) -> None:
    """Refuse (before training) to push onto a revision that already holds a model."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi()
    try:
        files = api.list_repo_files(repo_id, revision=revision)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return
    taken = sorted(set(files) & set(MODEL_FILES))
    if taken and not overwrite:
        raise RecipeError(
            f"{repo_id}@{revision or 'main'} already holds a model ({', '.join(taken)}); push to a new branch "
            "(hub_revision: <name> or hub_branch_per_run: true) or pass --overwrite_hub_revision"
        )


def check_push_access(repo_id: str) -> str:
    """Before training: the shared push target check (hub/push.py) with the recipe's own fixes."""
    return check_target(
        repo_id, error=RecipeError, who="push_to_hub", off_hint=", or pass --push_to_hub false",
        rename_hint="set hub_model_id: {user}/{name} (or hub_org)",
    )  # fmt: skip


def save_generation_config(model, tokenizer, out_dir: Path) -> None:
    """Generation config whose EOS is the tokenizer's, so generation stops where training put EOS."""
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    gen = GenerationConfig.from_dict(base.to_dict()) if base is not None else GenerationConfig()
    eos = gen.eos_token_id
    eos_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    if tokenizer.eos_token_id not in eos_ids:
        eos_ids.insert(0, tokenizer.eos_token_id)
    gen.eos_token_id = eos_ids[0] if len(eos_ids) == 1 else eos_ids
    gen.pad_token_id = tokenizer.pad_token_id
    gen.bos_token_id = tokenizer.bos_token_id
    gen.save_pretrained(out_dir)


def save_instruction_template(tokenizer, out_dir: Path) -> None:
    from lmolt_hub.prompts import SECTION_MARKERS, TEMPLATE_VERSION, TEMPLATES, chat_template, join_completion

    tokenizer.chat_template = chat_template()
    tokenizer.save_pretrained(out_dir)
    (out_dir / "instruction_template.json").write_text(
        json.dumps(
            {
                "template_version": TEMPLATE_VERSION,
                "templates": TEMPLATES,
                "completion_prefix": join_completion(""),  # prompt + " " + answer, as trained
                "stop_markers": list(SECTION_MARKERS),
                "eos_token": tokenizer.eos_token,
            },  # fmt: skip
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


def push_run(folder: Path, repo_id: str, revision: str | None, private: bool | None, message: str,
                ignore: list[str] | None = None) -> str:  # fmt: skip
    """Upload ``folder`` (checkpoints excluded) as one commit; returns the commit sha."""
    return hub_push.push_folder(
        folder, repo_id, revision=revision, private=bool(private), message=message,
        ignore=ignore if ignore is not None else PUSH_IGNORE, check=False,  # checked before training
    )  # fmt: skip


def save_merged(base_ref, model_args, adapter_dir: Path, out_dir: Path, tokenizer) -> Path:
    """Base model in full precision + the adapter merged in (never merged into 4-bit weights)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # The parent's own dtype ("auto"): a merge publishes the parent's precision, not the QLoRA compute dtype.
    base = AutoModelForCausalLM.from_pretrained(base_ref.source, revision=base_ref.pinned, dtype="auto")
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    save_generation_config(merged, tokenizer, out_dir)
    return out_dir
