"""``--dry-run`` memory plan: the estimate against a hand computation for Meditron-7B's shape, and the
dry run of a recipe and of the harness (issue 15, item 5)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmolt_hub.memory import GIB, MEDITRON_7B, ModelShape, plan_generation, report
from lmolt_hub.training.dry_run import plan_training

ROOT = Path(__file__).resolve().parents[2]
MEDITRON_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 32, "vocab_size": 32017, "max_position_embeddings": 4096,
    "torch_dtype": "float32", "tie_word_embeddings": False,
}  # fmt: skip


def test_meditron_7b_qlora_cpo_plan_matches_a_hand_computation():
    """Meditron recipe: NF4 + double quant, r=64 all-linear, dropout 0.1, batch 1, 1024 tokens, checkpointing."""
    plan = plan_training(MEDITRON_7B, method="cpo")
    p = dict(plan.parts)
    # Linear weights per layer: q,k,v,o 4 x 4096^2 + gate,up,down 3 x 4096 x 11008 = 202,375,168; x 32 layers.
    linear = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)
    assert linear == 6_476_005_376
    # NF4: half a byte, one 8-bit absmax per 64 weights, one fp32 per 256 absmax; the rest in bf16:
    # embeddings + lm_head 2 x 32017 x 4096, norms 65 x 4096.
    weights = linear * (0.5 + 1 / 64 + 4 / (64 * 256)) + (2 * 32017 * 4096 + 65 * 4096) * 2
    assert p["weights (NF4 + double quant)"] == pytest.approx(weights)
    assert weights / GIB == pytest.approx(3.60, abs=0.01)
    # LoRA r=64: per layer 4 x 64 x 8192 (attention) + 3 x 64 x 15104 (MLP) = 4,997,120; 159.9M in all;
    # fp32 param + grad + 2 AdamW states = 16 bytes each.
    lora = 32 * (4 * 64 * 8192 + 3 * 64 * 15104)
    assert lora == 159_907_840
    assert p["LoRA r=64: 159.9M params+grads+AdamW"] == lora * 16
    # Activations, 2 rows (chosen + rejected) x 1024 tokens, bf16. One layer per token:
    # 2 x (8 x 4096 + 4 x 11008) = 153,600; dropout outputs + masks 3 x (6 x 4096 + 11008) = 106,752;
    # LoRA A outputs 2 x 64 x 7 = 896. Checkpointing keeps 32 layer inputs (2 x 4096 each) + one layer.
    layer = 2 * (8 * 4096 + 4 * 11008) + 3 * (6 * 4096 + 11008) + 2 * 64 * 7
    assert layer == 261_248
    acts = 2048 * (32 * 2 * 4096 + layer)
    assert p["activations (2048 tokens, with checkpointing)"] == acts
    # Logits: bf16 + fp32 copy + fp32 log-softmax = 10 bytes per vocabulary entry and token.
    assert p["logits + loss"] == 2048 * 32017 * 10
    total = weights + lora * 16 + acts + 2048 * 32017 * 10 + GIB
    assert plan.total == pytest.approx(total)
    assert 8.5 < total / GIB < 8.7  # fits a 24 GB card; the paper's setting


def test_without_checkpointing_and_longer_batches_the_plan_grows_as_computed():
    base = plan_training(MEDITRON_7B, method="sft", per_device_batch=4, gradient_checkpointing=False)
    acts = base.parts["activations (4096 tokens, without checkpointing)"]
    assert acts == 4096 * 32 * 261_248  # no chosen/rejected doubling for sft
    assert base.total > 24 * GIB  # so the dry run warns on a 24 GB card
    lines: list[str] = []
    assert report(base, devices=[24 * GIB], printer=lines.append) is False
    assert any(line.startswith("warning: the estimated peak") and "24.0 GiB" in line for line in lines)
    assert report(plan_training(MEDITRON_7B, method="cpo"), devices=[24 * GIB], printer=lines.append)


def test_fsdp_shards_weights_and_lora_states_but_not_activations():
    one = plan_training(MEDITRON_7B, method="dpo")
    eight = plan_training(MEDITRON_7B, method="dpo", fsdp_processes=8)
    w = "weights (NF4 + double quant)"
    assert eight.parts[w] == pytest.approx(one.parts[w] / 8)
    assert eight.parts["logits + loss"] == one.parts["logits + loss"]


def test_generation_plan_shows_what_bf16_saves_on_an_f32_checkpoint():
    fp32 = plan_generation(MEDITRON_7B, dtype="float32", batch_size=16)
    bf16 = plan_generation(MEDITRON_7B, dtype="bfloat16", batch_size=16)
    params = MEDITRON_7B.total_params()
    assert params == 6_476_005_376 + 2 * 32017 * 4096 + 65 * 4096  # 6.74B
    assert fp32.parts["weights (float32)"] == params * 4  # ~25 GiB: OOM on a 24 GB card
    assert bf16.parts["weights (bfloat16)"] == params * 2
    # KV cache: 2 (k, v) x 32 layers x 4096 x 2 bytes x 16 sequences x 1024 tokens
    assert bf16.parts["KV cache (16 x 1024 tokens)"] == 2 * 32 * 4096 * 2 * 16 * 1024


def test_shape_from_a_config_dict():
    assert ModelShape.from_config(MEDITRON_CONFIG) == MEDITRON_7B


def _run(args, cwd=ROOT):
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def meditron_config_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("meditron-config")
    (d / "config.json").write_text(json.dumps(MEDITRON_CONFIG))
    return d


def test_recipe_dry_run_prints_the_plan_and_the_global_batch(meditron_config_dir):
    """The Meditron CPO recipe on this GPU-less machine: only config.json is read, nothing trains."""
    proc = _run(["recipes/cpo.py", "--config", "recipes/meditron-7b/cpo/qlora.yaml",
                 "--model_name_or_path", str(meditron_config_dir), "--dry-run"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "estimated peak per device" in out and "8.59 GiB" in out
    assert "global batch = 1 per device x 64 accumulation x 1 processes = 64" in out
    assert "dry run: nothing was trained" in out


def test_harness_dry_run_compares_auto_and_default_dtype(meditron_config_dir):
    auto = _run(["eval_harness/run.py", "--model", str(meditron_config_dir), "--dtype", "auto", "--dry-run"])
    assert auto.returncode == 0, auto.stderr[-2000:]
    assert "weights (float32)" in auto.stdout  # the stored F32 of the LPM24 bases
    default = _run(["eval_harness/run.py", "--model", str(meditron_config_dir), "--dry-run"])
    assert "weights (bfloat16)" in default.stdout  # what a CUDA GPU loads by default
