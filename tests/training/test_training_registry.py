"""The METHODS table: every training method is one entry, and a new one trains from its entry alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lmolt_hub.hub.cards import parse_card
from lmolt_hub.naming import METHODS as ZOO_METHODS
from lmolt_hub.training import registry
from lmolt_hub.training.registry import METHODS, Method, RecipeError, method_spec

from helpers.demo_triples import save_demo_triples

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "lmolt_hub" / "training"


def test_the_table_covers_the_zoo_methods_and_no_module_branches_on_a_name():
    assert tuple(METHODS) == ZOO_METHODS and all(m.name == key for key, m in METHODS.items())
    for path in SRC.glob("*.py"):
        text = path.read_text()
        assert "method ==" not in text and "method !=" not in text, path.name
    with pytest.raises(RecipeError, match="unknown method 'orpo'; expected one of sft, dpo, cpo, kto"):
        method_spec("orpo")


def _orpo_classes() -> tuple[type, type]:
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ORPOConfig, ORPOTrainer


# docs/training.md, "Adding a training method": the whole of ORPO is this entry plus its recipe.
ORPO = Method(
    "orpo", _orpo_classes, ("prompt", "chosen", "rejected"),
    objective=lambda training_args, script_args: f"ORPO: NLL on chosen + {training_args.beta} x odds-ratio loss",
    rows_per_example=2, help_keys={"beta": "weight of the odds-ratio term"},
)  # fmt: skip


@pytest.mark.slow
def test_a_method_registered_in_a_test_only_table_trains_and_writes_its_card(
    monkeypatch, session_dir: Path, tmp_path: Path
):
    pytest.importorskip("trl.experimental.orpo")
    from lmolt_hub.training import train

    monkeypatch.setattr(registry, "METHODS", {**METHODS, "orpo": ORPO})
    recipe = yaml.safe_load((ROOT / "recipes/tiny/cpo/qlora.yaml").read_text())
    for cpo_only in ("loss_type", "cpo_alpha"):
        recipe.pop(cpo_only)
    (tmp_path / "orpo.yaml").write_text(yaml.safe_dump(recipe))
    dataset, _ = save_demo_triples(session_dir / "training-demo")
    out = tmp_path / "orpo"
    res = train("orpo", str(tmp_path / "orpo.yaml"), ["--dataset_name", dataset, "--output_dir", str(out),
                                                      "--max_steps", "2", "--gradient_accumulation_steps", "1"])  # fmt: skip
    assert res["output_dir"] == str(out) and (out / "adapter_model.safetensors").is_file()
    card, body = parse_card((out / "README.md").read_text())
    assert card["lmolt"]["method"] == "orpo" and "orpo" in card["tags"]
    assert card["lmolt"]["objective"] == "ORPO: NLL on chosen + 0.1 x odds-ratio loss"
    info = json.loads((out / "run_info.json").read_text())
    losses = [h["loss"] for h in info["log_history"] if "loss" in h]
    assert len(losses) == 2 and all(v == v for v in losses)  # trained two steps, no NaN
    assert "orpo" not in METHODS  # the shipped table is untouched


def test_the_short_help_reads_a_registered_methods_keys(monkeypatch):
    from lmolt_hub.training.help import short_help

    monkeypatch.setattr(registry, "METHODS", {**METHODS, "orpo": ORPO})
    assert "--beta" in short_help("orpo") and "weight of the odds-ratio term" in short_help("orpo")
