"""What the authors ran, as recipes: kto_pair DPO, their CPO (1 epoch, linear, clip 1.0), their SFT (DoRA,
constant 2e-4, full-sequence loss, no EOS, fp16 with float32 adapters), best-epoch selection in every
Meditron recipe, and the checks that keep those options sane."""

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
# CPO_Meditron7b_reverse: their inference.py scored the last epoch (checkpoint-1188), not the best one
LAST_EPOCH = {MEDITRON / "cpo/authors-reverse.yaml"}
CPU = ["--use_cpu", "true"]  # bf16/fp16 recipes need it on a machine without a GPU; nothing else changes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _parse(method: str, path: Path, extra: list[str] | None = None):
    return parse_recipe(method, str(path), [*CPU, *(extra or [])])


@pytest.mark.parametrize("path", TRAIN_RECIPES, ids=lambda p: "/".join(p.parts[-2:]))
def test_every_meditron_recipe_keeps_the_best_epoch_by_validation_loss(path: Path):
    script, t, _ = _parse(path.parent.name, path)
    assert script.dataset_test_split == "validation"
    assert (t.eval_strategy.value, t.save_strategy.value) == ("epoch", "epoch")
    assert t.metric_for_best_model == "eval_loss" and t.greater_is_better is False
    assert t.load_best_model_at_end is (path not in LAST_EPOCH)


def test_dpo_recipes_name_their_loss_and_the_chains_use_the_authors_one():
    _, paper, _ = _parse("dpo", MEDITRON / "dpo/qlora.yaml")
    _, authors, m = _parse("dpo", MEDITRON / "dpo/authors.yaml")
    assert paper.loss_type == ["sigmoid"] and authors.loss_type == ["kto_pair"]
    assert (
        authors.beta == 0.1 and authors.learning_rate == 5e-5 and authors.lr_scheduler_type.value == "cosine"
    )
    assert (
        authors.warmup_steps == 0.1
        and authors.max_grad_norm == 0.3
        and authors.optim.value == "adamw_torch_fused"
    )
    assert (m.lora_r, m.lora_alpha, m.lora_dropout) == (64, 16, 0.05)  # their argument_parser.py default
    for chain in ("ties-dpo", "slerp-dpo"):
        step = yaml.safe_load((MEDITRON / chain / "chain.yaml").read_text())["train"]
        assert step["method"] == "dpo" and step["config"] == "../dpo/authors.yaml"


def _cpo_schedule(t) -> tuple:
    return (t.num_train_epochs, t.lr_scheduler_type.value, t.warmup_steps, t.max_grad_norm, t.learning_rate,
            t.weight_decay, t.beta)  # fmt: skip


def test_the_authors_cpo_recipe_uses_trl_0_8_defaults_where_dpo_py_set_none():
    _, t, m = _parse("cpo", MEDITRON / "cpo/authors.yaml")
    # dpo.py's CPOConfig(beta=0.1, warmup_ratio=0.1), argument_parser.py's epochs=1, the rest defaults
    assert _cpo_schedule(t) == (1, "linear", 0.1, 1.0, 5e-5, 0.0, 0.1)
    assert t.loss_type == "sigmoid" and t.cpo_alpha == 1.0 and m.lora_dropout == 0.05
    assert "caption2smiles" in m.model_name_or_path
    _, fig5, _ = _parse("cpo", MEDITRON / "cpo/qlora.yaml")  # the paper's text stays as a variant
    assert _cpo_schedule(fig5) == (3, "cosine", 0.1, 0.3, 5e-5, 0.0, 0.1) and fig5.load_best_model_at_end
    _, rev, rm = _parse("cpo", MEDITRON / "cpo/authors-reverse.yaml")  # CPO_Meditron7b_reverse
    assert "smiles2caption" in rm.model_name_or_path and _cpo_schedule(rev) == (3, *_cpo_schedule(t)[1:])
    names = {yaml.safe_load((MEDITRON / f"cpo/{n}.yaml").read_text())["hub_name"]
             for n in ("authors", "qlora", "authors-reverse")}  # fmt: skip
    assert names == {"lmolt-cpo", "lmolt-cpo-fig5", "lmolt-cpo-reverse"}


def test_the_authors_sft_recipe_follows_sft_py():
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


def test_authors_sft_under_fp16_trains_float32_adapters_with_a_grad_scaler(
    tiny_llama_dir: Path, tmp_path: Path
):
    """sft/authors.yaml's settings (4-bit NF4, DoRA, fp16) on the tiny Llama: trl 1.16 casts the adapters
    of a 4-bit model to bf16, which CUDA's fp16 GradScaler cannot unscale; the run casts them back to
    float32 (as sft.py's adapters were) and a GradScaler optimiser step goes through. On CUDA the same
    step runs in bench/gpu_check.py (train_sft_authors); here the GradScaler is torch's CPU one."""
    import torch

    pytest.importorskip("bitsandbytes")
    from lmolt_hub.hub.ref import HubRef
    from lmolt_hub.training.methods import build_trainer
    from lmolt_hub.training.models import keep_trainable_fp32, load_base_model, load_tokenizer, lora_config

    script, t, m = _parse("sft", MEDITRON / "sft/authors.yaml", [
        "--model_name_or_path", str(tiny_llama_dir), "--output_dir", str(tmp_path), "--max_length", "256",
        "--push_to_hub", "false"])  # fmt: skip
    assert t.fp16 and not t.bf16 and m.load_in_4bit and m.use_dora and script.append_eos is False
    ref = HubRef(str(tiny_llama_dir), local_path=tiny_llama_dir)
    rows = tdata.prepare("sft", build_demo_triples(2)["train"])
    trainer = build_trainer("sft", load_base_model(ref, m, t), load_tokenizer(ref, script.tokenizer_pad_token),
                            t, lora_config(m), rows, rows, append_eos=script.append_eos)  # fmt: skip
    trainable = {n: p for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert {p.dtype for p in trainable.values()} == {torch.bfloat16, torch.float32}  # trl's cast (DoRA's
    # magnitude vectors excepted): what failed on CUDA at the first optimiser step
    assert keep_trainable_fp32(trainer.model, t) > 0
    assert trainable and all(p.dtype == torch.float32 for p in trainable.values())
    assert keep_trainable_fp32(trainer.model, t) == 0  # nothing left to cast
    # one fp16-style optimiser step: scaled loss, unscale, inf/nan check, step (CPU autocast has no fp16
    # path for this bf16-compute 4-bit model, so the forward runs as the model computes it)
    optimizer = torch.optim.AdamW(trainable.values(), lr=t.learning_rate, weight_decay=t.weight_decay)
    scaler = torch.amp.GradScaler("cpu")
    trainer.model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    scaler.scale(trainer.model(**batch).loss).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in trainable.values())
    before = {n: p.detach().clone() for n, p in trainable.items()}
    scaler.step(optimizer)
    scaler.update()
    assert scaler.get_scale() == 65536.0  # no inf/nan found: the step was taken, not skipped
    assert all(not torch.equal(before[n], p) for n, p in trainable.items())


def test_float32_cast_only_under_fp16():
    import torch

    from lmolt_hub.training.models import keep_trainable_fp32

    class Args:
        fp16 = False

    layer = torch.nn.Linear(2, 2).to(torch.bfloat16)
    assert keep_trainable_fp32(layer, Args()) == 0
    assert layer.weight.dtype == torch.bfloat16  # bf16 runs keep trl's bf16 adapters (the QLoRA advice)


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
