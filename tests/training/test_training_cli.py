"""`lmolt-hub train` end to end in-process: help, a bad dataset, a one-direction run with evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from lmolt_hub.cli import main
from lmolt_hub.hub.cards import parse_card

from helpers.demo_triples import save_demo_triples

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_recipe_fields(capsys):
    assert main(["train", "cpo", "--help"]) == 0
    out = capsys.readouterr().out
    assert (
        "--dataset_name" in out
        and "--beta" in out
        and "--lora_r" in out
        and "--overwrite_hub_revision" in out
    )


def test_bad_dataset_exits_2_with_the_fix(session_dir: Path, tmp_path: Path, capsys):
    dataset, _ = save_demo_triples(session_dir / "training-demo")
    rc = main(["train", "kto", "--config", str(ROOT / "recipes/tiny/kto/qlora.yaml"),
               "--dataset_name", dataset, "--output_dir", str(tmp_path / "kto")])  # fmt: skip
    assert rc == 2
    assert "use dataset_config: kto" in capsys.readouterr().err
    assert not (tmp_path / "kto" / "adapter_model.safetensors").exists()


def test_one_direction_run_with_evaluation_mid_training(session_dir: Path, tmp_path: Path):
    dataset, _ = save_demo_triples(session_dir / "training-demo")
    out = tmp_path / "sft-l2m"
    rc = main(["train", "sft", "--config", str(ROOT / "recipes/tiny/sft/qlora.yaml"), "--dataset_name", dataset,
               "--output_dir", str(out), "--directions", "caption2smiles", "--max_steps", "2",
               "--gradient_accumulation_steps", "1", "--eval_strategy", "steps", "--eval_steps", "1",
               "--dataset_test_split", "validation", "--max_length", "512"])  # fmt: skip
    assert rc == 0
    card, body = parse_card((out / "README.md").read_text())
    assert card["lmolt"]["directions"] == ["caption2smiles"] and card["license"] == "apache-2.0"
    info = json.loads((out / "run_info.json").read_text())
    assert info["config"]["script"]["directions"] == ["caption2smiles"]
    # the no-grad evaluation passes ran between training steps (the AVX512-BF16 repack trap's trigger)
    assert [h["step"] for h in info["log_history"] if "eval_loss" in h] == [1, 2]
    assert all(h["loss"] == h["loss"] for h in info["log_history"] if "loss" in h)  # no NaN
