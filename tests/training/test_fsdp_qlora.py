"""FSDP + QLoRA for every method, and every accelerate config loaded by accelerate itself (issue 15, item 4).

FSDP's flattening check runs on CPU (gloo, one process), so the failure trl 1.16's CPOTrainer
causes, and our way around it, are shown with the real trainers on a tiny 4-bit Llama.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

CONFIGS = sorted(Path(__file__).resolve().parents[2].glob("recipes/accelerate_configs/*.yaml"))

WRAP_SCRIPT = r"""
import json, os, sys, torch, torch.distributed as dist
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[3], TRL_EXPERIMENTAL_SILENCE="1")
dist.init_process_group("gloo", rank=0, world_size=1)
from datasets import Dataset
from peft import LoraConfig
from peft.utils.other import fsdp_auto_wrap_policy
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from trl import DPOConfig, DPOTrainer
from trl.experimental.cpo import CPOConfig, CPOTrainer
from lmolt_hub.training.fsdp import adapt_for_fsdp_qlora

path, out = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(path)
data = Dataset.from_dict({"prompt": ["C", "O"], "chosen": ["CC", "OO"], "rejected": ["N", "S"]})
quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=torch.bfloat16)
common = dict(output_dir=out, use_cpu=True, report_to=[], gradient_checkpointing=True, max_length=32)
result = {}
for name, trainer_cls, config_cls, ours in [("cpo_trl", CPOTrainer, CPOConfig, False),
                                            ("cpo_lmolt", CPOTrainer, CPOConfig, True),
                                            ("dpo_trl", DPOTrainer, DPOConfig, False)]:
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, quantization_config=quant)
    peft_config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    if ours:
        model, peft_config = adapt_for_fsdp_qlora("cpo", model, peft_config, fsdp=True)
    trainer = trainer_cls(model=model, args=config_cls(**common), train_dataset=data,
                          processing_class=tok, peft_config=peft_config)
    net = trainer.model
    try:  # the wrapping transformers does under FSDP + PEFT: LoRA layers and decoder layers as units
        FSDP(net, auto_wrap_policy=fsdp_auto_wrap_policy(net), device_id=torch.device("cpu"),
             use_orig_params=False)
        result[name] = "ok"
    except ValueError as e:
        result[name] = str(e)
print("RESULT " + json.dumps(result))
"""


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_accelerate_loads_and_validates_every_config(path):
    """accelerate's own loader and launch validation, as ``accelerate launch --config_file`` runs them."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    cfg = load_config_from_file(str(path))
    assert cfg.num_processes >= 1 and cfg.num_machines == 1
    parsed = launch_command_parser().parse_args(["--config_file", str(path), "x.py"])
    args, _, _ = _validate_launch_command(parsed)
    assert args.num_processes == cfg.num_processes
    if path.name == "zero3.yaml":
        assert args.use_deepspeed and cfg.deepspeed_config["zero_stage"] == 3
    if path.name == "fsdp_qlora.yaml":
        assert args.use_fsdp and args.mixed_precision == "bf16"


def test_fsdp_qlora_config_builds_accelerates_fsdp_plugin_on_cpu(monkeypatch):
    """The environment ``accelerate launch`` derives from fsdp_qlora.yaml yields the intended plugin."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env
    from torch.distributed.fsdp import ShardingStrategy

    from lmolt_hub.training.fsdp import fsdp_enabled

    path = next(p for p in CONFIGS if p.name == "fsdp_qlora.yaml")
    args, _, _ = _validate_launch_command(
        launch_command_parser().parse_args(["--config_file", str(path), "x.py"])
    )
    env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_SYNC_MODULE_STATES"] == "true"
    assert env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"  # rank 0 loads, the others receive (GPU only)
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    for key in ("FSDP_SYNC_MODULE_STATES", "FSDP_CPU_RAM_EFFICIENT_LOADING"):
        monkeypatch.setenv(key, "false")  # both ask the GPU for its device index when the plugin is built
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 1 and plugin.sharding_strategy == ShardingStrategy.FULL_SHARD
    assert plugin.use_orig_params is False and plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"

    class Args:  # what the trainers' config looks like without an fsdp field set
        fsdp = None

    assert fsdp_enabled(Args())
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    assert not fsdp_enabled(Args())


def test_only_cpo_casts_kbit_models_in_trl():
    """Why only CPO needs our path: its trainer calls prepare_model_for_kbit_training, the others do not."""
    from trl import DPOTrainer, KTOTrainer, SFTTrainer
    from trl.experimental.cpo import cpo_trainer

    from lmolt_hub.training.fsdp import KBIT_CASTING_METHODS

    assert "prepare_model_for_kbit_training(model" in inspect.getsource(cpo_trainer.CPOTrainer.__init__)
    for trainer in (DPOTrainer, KTOTrainer, SFTTrainer):
        assert "prepare_model_for_kbit_training" not in inspect.getsource(inspect.getmodule(trainer))
    assert KBIT_CASTING_METHODS == ("cpo",)


def test_cpo_qlora_wraps_under_fsdp_only_with_lmolts_path(tiny_llama_dir, tmp_path):
    script = tmp_path / "wrap.py"
    script.write_text(WRAP_SCRIPT)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [sys.executable, str(script), str(tiny_llama_dir), str(tmp_path / "out"), str(port)],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, proc.stderr[-3000:]
    result = json.loads(line[len("RESULT ") :])
    # trl's own CPO path: fp32 norms next to bf16-stored 4-bit weights in one FSDP unit
    assert "uniform dtype" in result["cpo_trl"]
    assert result["cpo_lmolt"] == "ok"  # adapter applied first: CPO skips the cast
    assert result["dpo_trl"] == "ok"  # DPO never casts: the FSDP-QLoRA guides' setting works as is


def test_adapter_is_applied_early_only_for_cpo_under_fsdp():
    from lmolt_hub.training.fsdp import adapt_for_fsdp_qlora

    class Quantized:
        is_loaded_in_4bit = True

    model, cfg = Quantized(), object()
    assert adapt_for_fsdp_qlora("dpo", model, cfg, fsdp=True) == (model, cfg)
    assert adapt_for_fsdp_qlora("cpo", model, cfg, fsdp=False) == (model, cfg)
    assert adapt_for_fsdp_qlora("cpo", object(), cfg, fsdp=True)[1] is cfg  # not quantised
