"""Recipe parsing, data shaping and bad-input checks of lmolt_hub.training (no training here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from lmolt_hub.training import RecipeError, parse_recipe
from lmolt_hub.training import datasets as tdata
from lmolt_hub.training.config import split_config_flag

from helpers.demo_triples import build_demo_triples, to_kto

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*/*/*.yaml"))
TRAIN_RECIPES = [
    p
    for p in RECIPES
    if p.parts[-3] in ("meditron-7b", "tiny") and p.parts[-2] in ("sft", "dpo", "cpo", "kto")
]


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _parse(method: str, path: Path | str, overrides: list[str]):
    return parse_recipe(method, str(path), overrides if _has_gpu() else [*overrides, "--use_cpu", "true"])


def test_recipes_exist_for_every_method():
    for model in ("meditron-7b", "tiny"):
        for method in ("sft", "dpo", "cpo", "kto"):
            assert (ROOT / "recipes" / model / method / "qlora.yaml").is_file()


@pytest.mark.parametrize("path", TRAIN_RECIPES, ids=lambda p: "/".join(p.parts[-3:]))
def test_every_training_recipe_parses(path: Path):
    method = path.parts[-2]
    # bf16 recipes need a GPU; without one, TrainingArguments wants use_cpu (the only override).
    script, targs, margs = parse_recipe(method, str(path), [] if _has_gpu() else ["--use_cpu", "true"])
    raw = yaml.safe_load(path.read_text())
    # Every YAML value reached its dataclass (nothing silently dropped).
    for key, value in raw.items():
        obj = next(o for o in (script, targs, margs) if hasattr(o, key))
        got = getattr(obj, key)
        got = got.value if hasattr(got, "value") else got
        if key not in ("use_cpu", "report_to"):  # report_to: none becomes []
            assert got == value or str(got) == str(value) or got == [value], (key, got, value)
    assert margs.load_in_4bit and margs.use_peft and margs.lora_target_modules == "all-linear"
    assert margs.bnb_4bit_quant_type == "nf4" and margs.use_bnb_nested_quant


@pytest.mark.parametrize("method", ["sft", "dpo", "cpo", "kto"])
def test_meditron_recipes_have_the_papers_hyperparameters(method: str):
    script, t, m = _parse(method, ROOT / f"recipes/meditron-7b/{method}/qlora.yaml", [])
    assert m.model_name_or_path == "language-plus-molecules/Meditron7b-caption2smiles-LPM24"
    batch = (2, 32) if method == "kto" else (1, 64)  # KTO's KL term needs 2 rows per device batch
    assert (t.num_train_epochs, t.per_device_train_batch_size, t.gradient_accumulation_steps) == (3, *batch)
    assert t.learning_rate == 5e-5 and t.lr_scheduler_type.value == "cosine" and t.warmup_steps == 0.1
    assert t.max_grad_norm == 0.3 and t.optim.value == "adamw_torch_fused" and t.bf16
    assert (m.lora_r, m.lora_alpha, m.lora_dropout, m.dtype) == (64, 16, 0.1, "bfloat16")
    assert script.dataset_name.endswith("/lmolt-triples")
    assert script.dataset_config == ("kto" if method == "kto" else "default")
    if method in ("dpo", "cpo"):
        assert t.beta == 0.1
    if method == "dpo":
        assert t.loss_type == ["sigmoid"]  # a list in trl 1.16


def test_cli_overrides_win_over_yaml():
    path = str(ROOT / "recipes/tiny/cpo/qlora.yaml")
    script, t, m = parse_recipe(
        "cpo",
        path,
        ["--learning_rate", "0.5", "--directions", "caption2smiles", "--model_name_or_path", "x/y"],
    )
    assert (
        t.learning_rate == 0.5 and script.directions == ["caption2smiles"] and m.model_name_or_path == "x/y"
    )
    # --config may also come inside the overrides (the recipe scripts' form)
    script2, *_ = parse_recipe("cpo", None, ["--config", path, "--dataset_name", "a/b"])
    assert script2.dataset_name == "a/b"


@pytest.mark.skipif(_has_gpu(), reason="checks the CPU-only message")
def test_bf16_recipe_without_gpu_names_the_fix():
    with pytest.raises(RecipeError, match="--use_cpu true"):
        parse_recipe("cpo", str(ROOT / "recipes/meditron-7b/cpo/qlora.yaml"), [])


def test_unknown_yaml_key_is_an_error(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text((ROOT / "recipes/tiny/sft/qlora.yaml").read_text() + "\nleraning_rate: 0.1\n")
    with pytest.raises(RecipeError, match="leraning_rate"):
        parse_recipe("sft", str(recipe), [])


def test_unknown_cli_flag_and_bad_values_are_errors():
    path = str(ROOT / "recipes/tiny/dpo/qlora.yaml")
    with pytest.raises(RecipeError, match="not_a_flag"):
        parse_recipe("dpo", path, ["--not_a_flag", "1"])
    with pytest.raises(RecipeError, match="direction"):
        parse_recipe("dpo", path, ["--directions", "smiles2smiles"])
    with pytest.raises(RecipeError, match="unknown method"):
        parse_recipe("ppo", path, [])
    with pytest.raises(RecipeError, match="does not exist"):
        parse_recipe("dpo", "nope.yaml", [])
    with pytest.raises(
        RecipeError, match="per_device_train_batch_size >= 2.*gradient_accumulation_steps to 1"
    ):
        parse_recipe("kto", str(ROOT / "recipes/tiny/kto/qlora.yaml"), ["--per_device_train_batch_size", "1"])
    with pytest.raises(RecipeError, match="use_peft"):
        parse_recipe("dpo", path, ["--use_peft", "false"])
    assert split_config_flag(["--config=a.yaml", "--x", "1"]) == ("a.yaml", ["--x", "1"])


@pytest.fixture(scope="module")
def demo():
    return build_demo_triples(8)


def test_demo_triples_follow_the_contract(demo):
    train = demo["train"]
    assert tuple(train.column_names) == tdata.TRIPLE_COLUMNS
    assert set(train["direction"]) == {"smiles2caption", "caption2smiles"}
    row = train[0]
    assert row["prompt"].endswith("### Response:") and row["chosen"] != row["rejected"]
    kto = to_kto(demo)["train"]
    assert tuple(kto.column_names) == tdata.KTO_COLUMNS and kto["label"][:2] == [True, False]


def test_prepare_shapes_each_method(demo):
    train = demo["train"]
    sft = tdata.prepare("sft", train)
    assert sft.column_names == ["prompt", "completion"] and sft[0]["completion"] == " " + train[0]["chosen"]
    for method in ("dpo", "cpo"):
        assert tdata.prepare(method, train).column_names == ["prompt", "chosen", "rejected"]
    kto = tdata.prepare("kto", to_kto(demo)["train"])
    assert kto.column_names == ["prompt", "completion", "label"]
    unpaired = tdata.prepare("kto", train, unpair=True, max_samples=4)
    assert unpaired["label"] == [True, False, True, False]
    only = tdata.prepare("cpo", train, directions=["caption2smiles"])
    assert len(only) == sum(d == "caption2smiles" for d in train["direction"])


def test_prompts_from_another_template_version_are_flagged(demo, caplog):
    old = demo["train"].map(lambda r: {"template_version": "some-older-template"})
    with caplog.at_level("WARNING", logger="lmolt_hub.training.datasets"):
        tdata.prepare("cpo", old)
    assert "some-older-template" in caplog.text and "rebuild the dataset" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="lmolt_hub.training.datasets"):
        tdata.prepare("cpo", demo["train"])
    assert "rebuild" not in caplog.text


def test_kto_given_triples_names_the_fix(demo):
    with pytest.raises(RecipeError, match="dataset_config: kto .*unpair_triples"):
        tdata.prepare("kto", demo["train"])
    with pytest.raises(RecipeError, match="dataset_config: default"):
        tdata.prepare("cpo", to_kto(demo)["train"])
    with pytest.raises(RecipeError, match="missing \\['rejected'\\]"):
        tdata.prepare("dpo", demo["train"].remove_columns("rejected"))
    with pytest.raises(RecipeError, match="only"):
        tdata.prepare("kto", to_kto(demo)["train"].filter(lambda r: r["label"]))


def test_tokenizer_without_pad_token_is_refused(tiny_llama_dir: Path, tmp_path: Path):
    from transformers import AutoTokenizer

    from lmolt_hub.hub.ref import HubRef
    from lmolt_hub.training.models import load_tokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    ref = HubRef("nopad", local_path=tmp_path)
    with pytest.raises(RecipeError, match="no pad token: set tokenizer_pad_token"):
        load_tokenizer(ref)
    assert load_tokenizer(ref, "<unk>").pad_token == "<unk>"
    with pytest.raises(RecipeError, match="not in the vocabulary"):
        load_tokenizer(ref, "<nope>")
    # a tokenizer that has a pad token keeps it (the recipe option is only a fallback)
    has_pad = HubRef("pad", local_path=Path(tiny_llama_dir))
    assert load_tokenizer(has_pad, "<unk>").pad_token == "<pad>"


def test_4bit_without_bitsandbytes_is_refused(monkeypatch):
    from lmolt_hub.training.models import check_bnb_backend

    check_bnb_backend(use_cpu=True)  # this machine has the CPU backend
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if it were not installed
    with pytest.raises(RecipeError, match="load_in_4bit: false"):
        check_bnb_backend(use_cpu=True)


def test_unwritable_output_dir_is_refused_before_training(tmp_path: Path):
    from lmolt_hub.training import train

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # unwritable even for root
    with pytest.raises(RecipeError, match="not writable.*pass --output_dir"):
        train("sft", str(ROOT / "recipes/tiny/sft/qlora.yaml"),
              ["--dataset_name", str(tmp_path), "--output_dir", str(blocker / "out")])  # fmt: skip
    assert blocker.read_text() == "not a directory"


def test_global_batch_warns_when_processes_change_it():
    from lmolt_hub.training.run_info import announce_batch

    _, t, _ = _parse("cpo", ROOT / "recipes/meditron-7b/cpo/qlora.yaml", [])
    lines: list[str] = []
    assert announce_batch(t, 1, lines.append)["global_batch_size"] == 64
    with pytest.warns(UserWarning, match="gradient_accumulation_steps to 16"):
        assert announce_batch(t, 4, lines.append)["global_batch_size"] == 256
    assert "1 per device x 64 accumulation x 4 processes = 256" in lines[-1]


def test_chat_template_renders_the_papers_prompt(tiny_llama_dir: Path):
    from transformers import AutoTokenizer

    from lmolt_hub.prompts import build_prompt, chat_template

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tok.chat_template = chat_template()
    for direction, source in (("smiles2caption", "CCO"), ("caption2smiles", "The molecule is ethanol.")):
        text = tok.apply_chat_template(
            [{"role": "user", "content": source}],
            direction=direction,
            tokenize=False,
            add_generation_prompt=True,
        )
        assert text == build_prompt(direction, source)
    with pytest.raises(Exception, match="direction"):
        tok.apply_chat_template([{"role": "user", "content": "CCO"}], tokenize=False)


def test_hub_target_names_and_branches():
    from lmolt_hub.training.publish import hub_target

    path = str(ROOT / "recipes/tiny/cpo/qlora.yaml")
    s, t, _ = parse_recipe("cpo", path, ["--push_to_hub", "true", "--hub_org", "me", "--hub_name", "lmolt-x"])
    assert hub_target("cpo", s, t) == ("me/lmolt-x", None)
    s, t, _ = parse_recipe("cpo", path, ["--push_to_hub", "true", "--hub_org", "me", "--hub_name", ""])
    assert hub_target("cpo", s, t) == ("me/lmolt-cpo", None)  # the zoo name of the method
    s, t, _ = parse_recipe(
        "cpo", path, ["--push_to_hub", "true", "--hub_model_id", "a/b", "--hub_revision", "exp"]
    )
    assert hub_target("cpo", s, t) == ("a/b", "exp")
    s, t, _ = parse_recipe(
        "cpo", path, ["--push_to_hub", "true", "--hub_model_id", "a/b", "--hub_branch_per_run", "true"]
    )
    assert hub_target("cpo", s, t)[1].startswith("run-")
    s, t, _ = parse_recipe("cpo", path, ["--push_to_hub", "false", "--hub_model_id", "a/b"])
    assert hub_target("cpo", s, t) == (None, None)
    s, t, _ = parse_recipe("cpo", path, ["--push_to_hub", "true", "--hub_org", ""])
    with pytest.raises(RecipeError, match="hub_model_id"):
        hub_target("cpo", s, t)
