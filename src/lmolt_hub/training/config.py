"""Recipe parsing: YAML -> ``trl.TrlParser`` -> (ScriptArguments, <Method>Config, ModelConfig).

Alignment-handbook style: one YAML per recipe holds the fields of all three
dataclasses; command-line flags override the YAML; a key that no dataclass
knows is an error (a typo must never silently fall back to a default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmolt_hub.training.registry import RecipeError, method_spec, names_where

TINY_SCHEME = "tiny://"


@dataclass
class ScriptArguments:
    """What is trained on, and where the result goes (fields not in the trl configs)."""

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Triple dataset: a Hub id (e.g. org/lmolt-triples) or a local dataset directory."},
    )
    dataset_config: str | None = field(
        default=None, metadata={"help": "Dataset config: 'default' (triples) or 'kto' (unpaired rows)."}
    )
    dataset_revision: str | None = field(default=None, metadata={"help": "Dataset branch, tag or commit."})
    dataset_train_split: str = field(default="train", metadata={"help": "Training split."})
    dataset_test_split: str | None = field(
        default=None, metadata={"help": "Evaluation split (used when eval_strategy is not 'no')."}
    )
    directions: list[str] | None = field(
        default=None,
        metadata={"help": "Keep only these directions (smiles2caption, caption2smiles); default: both."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use only the first N training rows (after the direction filter)."}
    )
    unpair_triples: bool = field(
        default=False,
        metadata={"help": "KTO only: turn triples into unpaired rows (chosen -> True, rejected -> False)."},
    )
    append_eos: bool = field(
        default=True,
        metadata={
            "help": "SFT only: end every training sequence with EOS (trl's default). false mirrors the authors' "
            "sft.py, whose model never learned to stop."
        },
    )
    tokenizer_pad_token: str | None = field(
        default=None,
        metadata={"help": "Pad token to use only when the base tokenizer has none (e.g. '<unk>' or '</s>')."},
    )
    hub_org: str | None = field(
        default=None, metadata={"help": "Namespace of the pushed model when hub_model_id is not given."}
    )
    hub_name: str | None = field(
        default=None,
        metadata={"help": "Repository name when hub_model_id is not given (default lmolt-<method>)."},
    )
    hub_branch_per_run: bool = field(
        default=False,
        metadata={"help": "Push to a new branch run-<UTC timestamp> instead of hub_revision/main."},
    )
    overwrite_hub_revision: bool = field(
        default=False, metadata={"help": "Allow pushing onto a Hub revision that already holds a model."}
    )
    push_merged: bool = field(
        default=False,
        metadata={"help": "Also push the base model with the adapter merged in (full weights)."},
    )
    merged_hub_model_id: str | None = field(
        default=None, metadata={"help": "Repository of the merged model (default <hub_model_id>-merged)."}
    )
    resume: bool = field(
        default=False,
        metadata={"help": "Resume from the last checkpoint in output_dir (error when there is none)."},
    )
    auto_resume: bool = field(
        default=True, metadata={"help": "Resume automatically when output_dir already holds a checkpoint."}
    )
    model_license: str = field(default="llama2", metadata={"help": "Licence written into the model card."})
    torch_threads: int | None = field(
        default=None,
        metadata={
            "help": "CPU threads for torch (tiny models: 1 avoids thread contention on shared machines)."
        },
    )


def method_classes(method: str) -> tuple[type, type]:
    """(Config class, Trainer class) of ``method`` (its entry in ``training.registry.METHODS``)."""
    return method_spec(method).classes()


def make_parser(method: str):
    from trl import ModelConfig, TrlParser

    class Parser(TrlParser):
        def error(self, message: str):  # one line instead of a 300-option usage dump
            raise RecipeError(f"command line: {message}")

    config_cls, _ = method_classes(method)
    # allow_abbrev=False: `--learning-rat` must be an error, never a silent prefix match.
    return Parser(
        (ScriptArguments, config_cls, ModelConfig), prog=f"lmolt-hub train {method}", allow_abbrev=False
    )


def refuse_unknown(parser, config_path, config_unknown: list[str], cli_unknown: list[str]) -> None:
    """One line naming the first unknown key, where it came from, and the closest known key."""
    from lmolt_hub.hub.errors import did_you_mean

    dests = [a.dest for a in parser._actions if a.option_strings]
    keys = [k[2:] for k in config_unknown[::2]]
    if keys:
        raise RecipeError(f"recipe {config_path}: unknown key {keys[0]!r}{did_you_mean(keys[0], dests)}")
    flags = [a.split("=", 1)[0] for a in cli_unknown if a.startswith("-")]
    if cli_unknown:
        flag = flags[0] if flags else cli_unknown[0]
        raise RecipeError(f"unknown command-line option {flag!r}{did_you_mean(flag, dests, '--')}")


def split_config_flag(args: list[str]) -> tuple[str | None, list[str]]:
    """Pull ``--config PATH`` (or ``--config=PATH``) out of ``args``."""
    rest, config = [], None
    it = iter(args)
    for a in it:
        if a == "--config":
            config = next(it, None)
            if config is None:
                raise RecipeError("--config needs a path to a recipe YAML")
        elif a.startswith("--config="):
            config = a.split("=", 1)[1]
        else:
            rest.append(a)
    return config, rest


def load_recipe_yaml(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise RecipeError(f"recipe {p} does not exist; pass --config recipes/<model>/<method>/<variant>.yaml")
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {p} must be a YAML mapping of option: value")
    return data


def parse_recipe(
    method: str,
    config_path: str | os.PathLike | None,
    overrides: list[str] | None = None,
    values: dict[str, Any] | None = None,
):
    """(script_args, training_args, model_args) from a recipe, CLI overrides and typed ``values``.

    Unknown keys in the YAML and unknown flags on the command line both raise
    RecipeError naming them. ``values`` (field name -> value, set by a program such as the chain)
    are applied to the parsed dataclasses last, before validation.
    """
    overrides = list(overrides or [])
    extra_config, overrides = split_config_flag(overrides)
    config_path = config_path or extra_config
    parser = make_parser(method)
    args = list(overrides)
    if config_path is not None:
        load_recipe_yaml(config_path)  # readable mapping, or a clear error
        args = ["--config", str(config_path), *args]
    try:
        *parsed, config_unknown, cli_unknown = parser.parse_args_and_config(
            args, return_remaining_strings=True, separate_remaining_strings=True
        )
    except RecipeError:
        raise
    except ValueError as e:  # bad values
        if "use_cpu" in str(e):
            raise RecipeError(
                f"{config_path} asks for bf16 on a GPU but none is visible: run it on a GPU machine, "
                "or add --use_cpu true to train on the CPU"
            ) from e
        raise RecipeError(f"invalid recipe {config_path or '(command line)'}: {e}") from e
    refuse_unknown(parser, config_path, config_unknown, cli_unknown)
    script_args, training_args, model_args = parsed
    apply_values(values or {}, parsed)
    validate(method, script_args, training_args, model_args)
    return script_args, training_args, model_args


def apply_values(values: dict[str, Any], parsed: list[Any]) -> None:
    """Set each typed value on the parsed dataclass that has a field of that name."""
    import dataclasses

    for name, value in values.items():
        owner = next((a for a in parsed if name in {f.name for f in dataclasses.fields(a)}), None)
        if owner is None:
            raise RecipeError(f"unknown training setting {name!r}")
        setattr(owner, name, value)


def validate(method: str, script_args: ScriptArguments, training_args, model_args) -> None:
    from lmolt_hub.prompts import DIRECTIONS

    if not script_args.dataset_name:
        raise RecipeError(
            "no dataset: set dataset_name (e.g. <org>/lmolt-triples) in the recipe or on the CLI"
        )
    if not model_args.model_name_or_path:
        raise RecipeError("no base model: set model_name_or_path (a Hub id, a local path or tiny://llama)")
    for d in script_args.directions or []:
        if d not in DIRECTIONS:
            raise RecipeError(
                f"unknown direction {d!r} in directions; expected some of {', '.join(DIRECTIONS)}"
            )
    if model_args.load_in_4bit and not model_args.use_peft:
        raise RecipeError("load_in_4bit trains only LoRA adapters: set use_peft: true (QLoRA)")
    spec = method_spec(method)
    if script_args.unpair_triples and not spec.unpaired:
        raise RecipeError(
            f"unpair_triples only applies to {names_where(lambda m: m.unpaired)}; remove it from this recipe"
        )
    if not script_args.append_eos and spec.no_eos_trainer is None:
        raise RecipeError(
            f"append_eos: false only applies to {names_where(lambda m: m.no_eos_trainer is not None)} "
            f"({method} always ends chosen/rejected with EOS); remove it"
        )
    if not script_args.append_eos and getattr(training_args, "packing", False):
        raise RecipeError("append_eos: false needs packing: false (packed sequences are cut at max_length)")
    if spec.validate is not None:
        spec.validate(script_args, training_args)
    _validate_checkpoint_selection(script_args, training_args)


def _strategy(value) -> str:
    return str(getattr(value, "value", value))


def _validate_checkpoint_selection(script_args, training_args) -> None:
    """Evaluating needs a validation split; keeping the best epoch needs an evaluation at every save."""
    evaluates = _strategy(training_args.eval_strategy) != "no"
    if evaluates and not script_args.dataset_test_split:
        raise RecipeError(
            "eval_strategy is set but dataset_test_split is not: name the validation split "
            "(dataset_test_split: validation)"
        )
    if training_args.load_best_model_at_end and not evaluates:
        raise RecipeError(
            "load_best_model_at_end needs an evaluation to choose by: set eval_strategy: epoch "
            "(and save_strategy: epoch) with dataset_test_split: validation"
        )
