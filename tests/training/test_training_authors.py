"""What the authors ran, as recipes: kto_pair DPO, their SFT (DoRA, constant 2e-4, full-sequence loss,
no EOS), best-epoch selection in every Meditron recipe, and the checks that keep those options sane."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lmolt_hub.training import RecipeError, parse_recipe
from lmolt_hub.training import datasets as tdata

from helpers.demo_triples import build_demo_triples

ROOT = Path(__file__).resolve().parents[2]
MEDITRON = ROOT / "recipes" / "meditron-7b"
TRAIN_RECIPES = sorted(p for m in ("sft", "dpo", "cpo", "kto") for p in (MEDITRON / m).glob("*.yaml"))
CPU = ["--use_cpu", "true"]  # bf16/fp16 recipes need it on a machine without a GPU; nothing else changes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _parse(method: str, path: Path, extra: list[str] | None = None):
    return parse_recipe(method, str(path), [*CPU, *(extra or [])])


@pytest.mark.parametrize("path", TRAIN_RECIPES, ids=lambda p: "/".join(p.parts[-2:]))
def test_every_meditron_recipe_keeps_the_best_epoch_by_validation_loss(path: Path):
    script, t, _ = _parse(path.parent.name, path)
    assert script.dataset_test_split == "validation"
    assert (t.eval_strategy.value, t.save_strategy.value) == ("epoch", "epoch")
    assert t.load_best_model_at_end and t.metric_for_best_model == "eval_loss" and t.greater_is_better is False


def test_dpo_recipes_name_their_loss_and_the_chains_use_the_authors_one():
    _, paper, _ = _parse("dpo", MEDITRON / "dpo/qlora.yaml")
    _, authors, m = _parse("dpo", MEDITRON / "dpo/authors.yaml")
    assert paper.loss_type == ["sigmoid"] and authors.loss_type == ["kto_pair"]
    assert authors.beta == 0.1 and authors.learning_rate == 5e-5 and authors.lr_scheduler_type.value == "cosine"
    assert authors.warmup_steps == 0.1 and authors.max_grad_norm == 0.3 and authors.optim.value == "adamw_torch_fused"
    assert (m.lora_r, m.lora_alpha, m.lora_dropout) == (64, 16, 0.05)  # their argument_parser.py default
    for chain in ("ties-dpo", "slerp-dpo"):
        step = yaml.safe_load((MEDITRON / chain / "chain.yaml").read_text())["train"]
        assert step["method"] == "dpo" and step["config"] == "../dpo/authors.yaml"


def test_the_authors_cpo_recipe_uses_trl_0_8_defaults_where_dpo_py_set_none():
    _, t, m = _parse("cpo", MEDITRON / "cpo/authors.yaml")
    assert t.lr_scheduler_type.value == "linear" and t.max_grad_norm == 1.0 and t.learning_rate == 5e-5
    assert t.loss_type == "sigmoid" and t.cpo_alpha == 1.0 and t.beta == 0.1 and m.lora_dropout == 0.05


def test_the_authors_sft_recipe_mirrors_sft_py():
    script, t, m = _parse("sft", MEDITRON / "sft/authors.yaml")
    assert m.use_dora and (m.lora_r, m.lora_alpha, m.lora_dropout) == (64, 16, 0.05)
    assert t.learning_rate == 2e-4 and t.lr_scheduler_type.value == "constant" and t.warmup_steps == 0.03
    assert t.optim.value == "paged_adamw_32bit" and t.weight_decay == 0.001 and t.fp16 and not t.bf16
    assert t.completion_only_loss is False and script.append_eos is False and t.packing is False
    _, paper, pm = _parse("sft", MEDITRON / "sft/qlora.yaml")  # the paper's Fig. 5 setting stays
    assert paper.completion_only_loss is True and not pm.use_dora and paper.learning_rate == 5e-5


@pytest.mark.parametrize(
    ("method", "extra", "message"),
    [
        ("dpo", ["--loss_type", "kto_pair", "sigmoid"], "cannot be combined"),
        ("dpo", ["--loss_type", "kto_pair", "--ld_alpha", "0.5"], "does not support ld_alpha"),
        ("dpo", ["--append_eos", "false"], "append_eos: false only applies to sft"),
        ("sft", ["--load_best_model_at_end", "true"], "needs an evaluation"),
        ("sft", ["--eval_strategy", "epoch", "--save_strategy", "epoch"], "dataset_test_split"),
    ],
)
def test_inconsistent_options_are_refused_with_the_fix(method: str, extra: list[str], message: str):
    with pytest.raises(RecipeError, match=message):
        parse_recipe(method, str(ROOT / f"recipes/tiny/{method}/qlora.yaml"), extra)


def test_paged_optimizer_falls_back_to_adamw_on_the_cpu():
    from lmolt_hub.training.methods import cpu_optimizer_fallback

    _, t, _ = _parse("sft", MEDITRON / "sft/authors.yaml")
    assert cpu_optimizer_fallback(t) == "paged_adamw_32bit" and t.optim.value == "adamw_torch"
    assert cpu_optimizer_fallback(t) is None  # nothing left to change


def _sft_rows(trainer_cls, tiny_llama_dir: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    rows = tdata.prepare("sft", build_demo_triples(2)["train"])
    args = SFTConfig(output_dir=str(tmp_path), max_length=1024, completion_only_loss=False, report_to=[],
                     use_cpu=True, bf16=False)  # fmt: skip
    trainer = trainer_cls(model=AutoModelForCausalLM.from_pretrained(tiny_llama_dir), args=args,
                          train_dataset=rows, processing_class=tok)  # fmt: skip
    return trainer.train_dataset, tok


def test_no_eos_sft_trains_on_exactly_trls_sequences_minus_the_eos(tiny_llama_dir: Path, tmp_path: Path):
    from trl import SFTTrainer

    from lmolt_hub.training.trainers import NoEOSSFTTrainer

    with_eos, tok = _sft_rows(SFTTrainer, tiny_llama_dir, tmp_path / "a")
    without, _ = _sft_rows(NoEOSSFTTrainer, tiny_llama_dir, tmp_path / "b")
    assert len(with_eos) == len(without) > 0
    for a, b in zip(with_eos, without, strict=True):
        assert a["input_ids"][-1] == tok.eos_token_id and tok.eos_token_id not in b["input_ids"]
        assert b["input_ids"] == a["input_ids"][:-1] and b["labels"] == a["labels"][:-1]
        assert b["labels"] == b["input_ids"]  # completion_only_loss false: the prompt is trained on too
