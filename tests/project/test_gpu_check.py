"""``bench/gpu_check.py --tiny``: the prepared GPU check runs end to end on CPU and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def check(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu-check") / "check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "bench/gpu_check.py", "--tiny", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return json.loads(out.read_text())


def test_every_section_ran_or_says_why_not(check):
    sections = check["sections"]
    assert list(sections) == ["build", "dtype", "train_cpo", "train_dpo", "train_sft_authors", "merge", "generate",
                              "vllm"]  # fmt: skip
    assert not [name for name, r in sections.items() if "error" in r]
    vllm = sections["vllm"]
    assert "skipped" in vllm or vllm["tokens_per_s"] > 0  # no GPU here: skipped with the reason
    assert check["tiny"] is True and check["environment"]["versions"]


def test_training_steps_are_timed_with_the_recipe_settings(check):
    for method in ("cpo", "dpo"):
        r = check["sections"][f"train_{method}"]
        assert r["recipe"] == f"recipes/tiny/{method}/qlora.yaml" and r["lora_r"] == 8
        assert r["steps"] == 2 and r["seconds_per_step"] > 0 and r["peak_rss_gib"] > 0


def test_the_authors_sft_step_runs_with_its_recipe_and_float32_adapters(check):
    r = check["sections"]["train_sft_authors"]
    assert (
        r["recipe"] == "recipes/meditron-7b/sft/authors.yaml" and r["use_dora"] is True and r["lora_r"] == 64
    )
    assert r["steps"] == 2 and r["seconds_per_step"] > 0
    assert list(r["trainable_dtypes"]) == [
        "torch.float32"
    ]  # fp16 recipe: no bf16 adapters for the GradScaler


def test_dtype_merge_and_generation_figures_are_consistent(check):
    s = check["sections"]
    auto, bf16 = s["dtype"]["auto"], s["dtype"]["bfloat16"]
    assert auto["dtype_used"] == "float32" and s["dtype"]["default"]["dtype_used"] == "float32"  # CPU
    assert bf16["dtype_used"] == "bfloat16" and bf16["weights_gib"] == pytest.approx(auto["weights_gib"] / 2)
    assert s["merge"]["max_abs_logit_diff_vs_unmerged"] < 1e-4  # merged weights = the adapters applied
    gen = s["generate"]
    assert gen["all_identical"] and gen["identical_outputs"] == "8/8"  # batched == one prompt at a time
    assert gen["batched"]["tokens_per_s"] > 0 and gen["one_at_a_time"]["tokens_per_s"] > 0


def test_section_timeouts_never_outlast_the_wrapper():
    """The caps sum past the budget; each section gets the smaller of its cap and what is left, so the
    whole run ends (JSON written) before gpu_check.sh's `timeout 590`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    wrapper = int((ROOT / "bench" / "gpu_check.sh").read_text().split("timeout ")[1].split()[0])
    assert mod.TOTAL_BUDGET_S < wrapper
    elapsed = 0.0
    for name in mod.SECTIONS:  # worst case: every section runs into its timeout
        elapsed += mod.section_timeout(name, elapsed)
    assert elapsed <= mod.TOTAL_BUDGET_S
    assert sum(mod.GPU_TIMEOUTS.values()) > mod.TOTAL_BUDGET_S  # so the clamp matters
    assert mod.section_timeout("vllm", mod.TOTAL_BUDGET_S - 30) == 30
