"""A crashed run resumes from its checkpoint and ends with the adapter of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from lmolt_hub.training import RecipeError, train

from helpers.demo_triples import save_demo_triples

ROOT = Path(__file__).resolve().parents[2]
RECIPE = str(ROOT / "recipes/tiny/cpo/qlora.yaml")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Crash(TrainerCallback):
    """Dies like a killed job, after the checkpoint of step ``after`` was written."""

    def __init__(self, after: int):
        self.after = after

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > self.after:
            raise KeyboardInterrupt(f"killed at step {state.global_step}")


def _args(dataset: str, out: Path) -> list[str]:
    return ["--dataset_name", dataset, "--output_dir", str(out), "--max_train_samples", "8",
            "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1", "--max_length", "512",
            "--save_strategy", "steps", "--save_steps", "2", "--seed", "7"]  # fmt: skip


def test_killed_run_resumes_to_the_same_adapter(session_dir: Path, tmp_path: Path):
    dataset, _ = save_demo_triples(session_dir / "training-demo")
    full = train("cpo", RECIPE, _args(dataset, tmp_path / "full"))
    assert full["resumed_from"] is None

    broken = tmp_path / "broken"
    with pytest.raises(KeyboardInterrupt):
        train("cpo", RECIPE, _args(dataset, broken), callbacks=[Crash(after=2)])
    assert (broken / "checkpoint-2").is_dir() and not (broken / "adapter_model.safetensors").exists()

    resumed = train("cpo", RECIPE, [*_args(dataset, broken), "--resume", "true"])
    assert resumed["resumed_from"].endswith("checkpoint-2")

    a = load_file(Path(full["output_dir"]) / "adapter_model.safetensors")
    b = load_file(broken / "adapter_model.safetensors")
    assert a.keys() == b.keys() and len(a) > 0
    init = load_file(broken / "checkpoint-2" / "adapter_model.safetensors")
    assert any(not torch.equal(a[k], init[k]) for k in a)  # steps 3-4 really trained after the resume
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_resume_without_checkpoint_names_the_fix(session_dir: Path, tmp_path: Path):
    dataset, _ = save_demo_triples(session_dir / "training-demo")
    with pytest.raises(RecipeError, match="no checkpoint-.*without --resume"):
        train("cpo", RECIPE, [*_args(dataset, tmp_path / "empty"), "--resume", "true"])


def test_sigkilled_run_resumes_from_its_last_complete_checkpoint(session_dir: Path, tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys
    import time

    dataset, _ = save_demo_triples(session_dir / "training-demo")
    args = [
        *_args(dataset, tmp_path / "x"),
        "--max_steps",
        "60",
        "--save_steps",
        "3",
        "--max_train_samples",
        "12",
    ]
    full = train("cpo", RECIPE, [*args, "--output_dir", str(tmp_path / "full")])

    killed = tmp_path / "killed"
    cmd = [
        sys.executable,
        str(ROOT / "recipes/cpo.py"),
        "--config",
        RECIPE,
        *args,
        "--output_dir",
        str(killed),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (killed / "checkpoint-3" / "trainer_state.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, (
                "run ended before its first checkpoint"
            )
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up, like an OOM kill or a lost node
    finally:
        proc.wait(timeout=30)
    assert not (killed / "adapter_model.safetensors").exists(), "the run finished before it was killed"
    # A checkpoint half-written when the job died (no trainer_state.json) must be skipped.
    (killed / "checkpoint-999").mkdir()
    (killed / "checkpoint-999" / "adapter_model.safetensors").write_bytes(b"partial")

    resumed = train("cpo", RECIPE, [*args, "--output_dir", str(killed)])  # automatic resume
    step = int(resumed["resumed_from"].rsplit("-", 1)[-1])
    assert 3 <= step < 60 and step % 3 == 0
    a = load_file(Path(full["output_dir"]) / "adapter_model.safetensors")
    b = load_file(killed / "adapter_model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
