"""The multi-process path: a tiny CPO run on 2 CPU processes (torchrun + gloo) via accelerate launch."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from helpers.demo_triples import save_demo_triples

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_cpo_run_trains_and_pushes_once(local_hub, session_dir: Path, tmp_path: Path):
    from huggingface_hub import HfApi

    dataset, _ = save_demo_triples(session_dir / "training-demo")
    out = tmp_path / "ddp"
    repo = "lmolt-train-test/tiny-cpo-ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "recipes/accelerate_configs/cpu_ddp.yaml"),
        "--num_processes", "2", "--main_process_port", str(_free_port()),
        str(ROOT / "recipes/cpo.py"), "--config", str(ROOT / "recipes/tiny/cpo/qlora.yaml"),
        "--dataset_name", dataset, "--output_dir", str(out), "--max_train_samples", "8",
        "--gradient_accumulation_steps", "1", "--max_length", "512",
        "--push_to_hub", "true", "--hub_model_id", repo,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "2 per device x 1 accumulation x 2 processes = 4" in log
    assert "2 processes make the global batch 4 instead of the recipe's single-process 2" in log
    info = json.loads((out / "run_info.json").read_text())
    assert info["distributed"] == {"num_processes": 2, "backend": "gloo"}
    assert info["batch"]["global_batch_size"] == 4
    # 8 rows / (2 per device x 2 processes) = 2 optimiser steps, logged once by rank 0
    losses = [h for h in info["log_history"] if "loss" in h]
    assert [h["step"] for h in losses] == [1, 2]
    # the tiny:// parent was published first, so the pushed adapter names a parent on the Hub
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "lmolt-train-test/tiny-llama-seed0"
    assert info["base_model"]["sha"] == HfApi().model_info("lmolt-train-test/tiny-llama-seed0").sha
    commits = [c for c in HfApi().list_repo_commits(repo) if c.title.startswith("lmolt-hub:")]
    assert len(commits) == 1 and log.count(f"pushed {repo}@main") == 1
    # LoRA weights all take part: DDP's unused-parameter search is off, so it does not warn (issue 14)
    assert (
        "find_unused_parameters" not in log
        and info["config"]["training"]["ddp_find_unused_parameters"] is False
    )
