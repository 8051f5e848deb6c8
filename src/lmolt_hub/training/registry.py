"""The training methods: one entry per method, holding everything in which the methods differ.

Every other training module reads a method's behaviour from its entry (``method_spec(name)``), never
from its name. Adding a method is one entry in ``METHODS`` plus its recipe; docs/training.md walks
through ORPO from trl. The zoo's names (``naming.METHODS``: ``<org>/lmolt-<method>``) are a separate,
shared vocabulary: add the name there too to publish under a zoo name.

trl loads only when a method's classes are asked for (``Method.classes()``), so reading the table is
cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class RecipeError(ValueError):
    """A recipe or its inputs cannot work; the message names the fix."""


def _losses(training_args) -> list[str]:
    loss = getattr(training_args, "loss_type", None)
    return [loss] if isinstance(loss, str) else list(loss or [])


@dataclass(frozen=True)
class Method:
    """What one training method needs from the shared run (training/methods.py)."""

    name: str
    # () -> (trl config class, trainer class): imported on call, so trl loads only when training
    classes: Callable[[], tuple[type, type]]
    # dataset columns the trainer reads, as the data stage writes them (triples or KTO rows)
    columns: tuple[str, ...]
    # one line for the model card: exactly which loss was optimised (training_args, script_args)
    objective: Callable[[Any, Any], str]
    # dataset column -> trainer column (SFT trains on ``chosen`` as its ``completion``)
    rename: Mapping[str, str] = field(default_factory=dict)
    # rows are (prompt, completion, label): triples can be unpaired into them (unpair_triples)
    unpaired: bool = False
    # the trainer reads rows in order (KTO's KL term pairs each row with its batch neighbours):
    # shuffle the training rows once, with the run's seed
    shuffle: bool = False
    # rows in one forward per example: 2 when chosen and rejected go through together (memory plan)
    rows_per_example: int = 1
    # a reference forward (adapter off, no gradients) besides the policy's (memory plan)
    reference_pass: bool = False
    # the trainer casts a k-bit model's norms to fp32 before adding the adapter (training/fsdp.py)
    kbit_casting: bool = False
    # () -> the trainer to use with ``append_eos: false``; None: the method always appends EOS
    no_eos_trainer: Callable[[], type] | None = None
    # training settings this method always runs with, whatever the recipe says
    settings: Mapping[str, Any] = field(default_factory=dict)
    # extra recipe checks: (script_args, training_args) -> raises RecipeError
    validate: Callable[[Any, Any], None] | None = None
    # the method's own keys people change, for `lmolt-hub train <method> --help` (key -> one line)
    help_keys: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- SFT


def _sft_classes() -> tuple[type, type]:
    from trl import SFTConfig, SFTTrainer

    return SFTConfig, SFTTrainer


def _no_eos_sft() -> type:
    from lmolt_hub.training.trainers import NoEOSSFTTrainer

    return NoEOSSFTTrainer


def _sft_objective(training_args, script_args) -> str:
    where = "the completion only" if getattr(training_args, "completion_only_loss", None) is not False \
        else "prompt + completion"  # fmt: skip
    eos = "EOS appended" if script_args.append_eos else "no EOS appended (the authors' sft.py)"
    return f"next-token cross-entropy on {where}; {eos}"


# ---------------------------------------------------------------- DPO


def _dpo_classes() -> tuple[type, type]:
    from trl import DPOConfig

    from lmolt_hub.training.trainers import LmoltDPOTrainer  # trl's, plus trl 0.8's kto_pair loss

    return DPOConfig, LmoltDPOTrainer


def _dpo_objective(training_args, script_args) -> str:
    losses = _losses(training_args)
    if losses == ["kto_pair"]:
        return ("kto_pair: trl 0.8's paired KTO/HALO loss (batch-mean KL reference points clamped at 0), "
                "as the authors' dpo.py ran it for the paper's DPO rows")  # fmt: skip
    if losses == ["sigmoid"]:
        return "sigmoid: DPO as written in the paper (Eq. 5, Rafailov et al. 2023)"
    return f"trl DPO loss {' + '.join(losses)}"


def _validate_kto_pair(script_args, training_args) -> None:
    """kto_pair (trl 0.8's paired KTO loss) is a whole loss of its own: nothing mixes into it."""
    from lmolt_hub.training.trainers import KTO_PAIR

    losses = list(training_args.loss_type)
    if KTO_PAIR not in losses:
        return
    if losses != [KTO_PAIR]:
        raise RecipeError(
            f"loss_type {KTO_PAIR} cannot be combined with other losses {losses}: use [{KTO_PAIR}]"
        )
    for name, ok in (("ld_alpha", training_args.ld_alpha is None), ("use_weighting", not training_args.use_weighting),
                     ("f_divergence_type", str(getattr(training_args.f_divergence_type, "value", training_args.f_divergence_type)) == "reverse_kl")):  # fmt: skip
        if not ok:
            raise RecipeError(f"loss_type {KTO_PAIR} (trl 0.8's loss) does not support {name}; remove it")


# ---------------------------------------------------------------- CPO


def _cpo_classes() -> tuple[type, type]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    return CPOConfig, CPOTrainer


def _cpo_objective(training_args, script_args) -> str:
    losses = _losses(training_args)
    return (
        f"CPO {' + '.join(losses) or 'sigmoid'} preference loss + {training_args.cpo_alpha} x NLL on chosen"
    )


# ---------------------------------------------------------------- KTO


def _kto_classes() -> tuple[type, type]:
    from trl import KTOConfig, KTOTrainer

    return KTOConfig, KTOTrainer


def _kto_objective(training_args, script_args) -> str:
    return f"KTO ({getattr(training_args, 'loss_type', 'kto')}) on the card prompt as plain text (no chat format)"


def _validate_kto_batch(script_args, training_args) -> None:
    if (training_args.per_device_train_batch_size < 2
            and getattr(training_args, "loss_type", "kto") != "apo_zero_unpaired"):  # fmt: skip
        accum = max(1, training_args.gradient_accumulation_steps // 2)
        raise RecipeError(
            "KTO estimates its KL term from the other rows of a device batch, so it needs "
            f"per_device_train_batch_size >= 2: set it to 2 and gradient_accumulation_steps to {accum} "
            "to keep the global batch"
        )


# ---------------------------------------------------------------- the table

TRIPLE = ("prompt", "chosen", "rejected")
METHODS: dict[str, Method] = {
    "sft": Method("sft", _sft_classes, ("prompt", "chosen"), _sft_objective, rename={"chosen": "completion"},
                  no_eos_trainer=_no_eos_sft,
                  help_keys={"completion_only_loss": "loss on the answer only (false: prompt + answer)"}),
    "dpo": Method("dpo", _dpo_classes, TRIPLE, _dpo_objective, rows_per_example=2, reference_pass=True,
                  validate=_validate_kto_pair,
                  help_keys={"beta": "strength of the preference term", "loss_type": "e.g. [sigmoid] or [kto_pair]"}),
    # CPO's collator needs the raw columns; trl sets this itself, with a warning
    "cpo": Method("cpo", _cpo_classes, TRIPLE, _cpo_objective, rows_per_example=2, kbit_casting=True,
                  settings={"remove_unused_columns": False},
                  help_keys={"beta": "strength of the preference term", "cpo_alpha": "weight of the NLL term on chosen",
                             "loss_type": "sigmoid | hinge | ipo | simpo | alphapo"}),
    "kto": Method("kto", _kto_classes, ("prompt", "completion", "label"), _kto_objective, unpaired=True,
                  shuffle=True, reference_pass=True, validate=_validate_kto_batch,
                  help_keys={"beta": "strength of the KL term", "desirable_weight": "weight of True rows",
                             "undesirable_weight": "weight of False rows"}),
}  # fmt: skip


def method_spec(name: str) -> Method:
    """The entry of ``name``, or a RecipeError naming the methods there are."""
    try:
        return METHODS[name]
    except KeyError:
        raise RecipeError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}") from None


def names_where(test: Callable[[Method], bool]) -> str:
    """The methods whose entry passes ``test``, for messages ("only applies to kto")."""
    return ", ".join(name for name, m in METHODS.items() if test(m))
