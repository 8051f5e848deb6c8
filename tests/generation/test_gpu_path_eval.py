"""The harness's GPU path without a GPU: vLLM engine arguments from real adapters, the fallback to hf
when vLLM cannot serve an adapter, and the dtype chosen per device (issue 15, items 1-2)."""

from __future__ import annotations

import json

import pytest

from lmolt_hub.generation.backends import VLLMUnsupported, vllm_engine_args
from lmolt_hub.generation.loading import LoadOptions, ModelLoadError, choose_dtype, load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _save_adapter(base_dir, out, **lora_kwargs):
    """A real peft LoRA adapter on the tiny Llama (adapter_config.json written by peft itself)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    cfg = LoraConfig(**{"r": 64, "lora_alpha": 16, "target_modules": "all-linear", **lora_kwargs})
    get_peft_model(base, cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def r64_adapter(tiny_llama_dir, tmp_path_factory):
    return _save_adapter(tiny_llama_dir, tmp_path_factory.mktemp("r64") / "adapter", lora_dropout=0.1)


def test_engine_args_from_a_real_r64_all_linear_adapter(tiny_llama_dir, r64_adapter):
    saved = json.loads((r64_adapter / "adapter_config.json").read_text())
    assert saved["r"] == 64 and any(
        t.endswith("q_proj") for t in saved["target_modules"]
    )  # all-linear, expanded
    args = vllm_engine_args(
        tiny_llama_dir, r64_adapter, max_prompt_tokens=300, max_new_tokens=512, dtype="bfloat16"
    )
    assert args["enable_lora"] is True
    assert args["max_lora_rank"] == 64  # vLLM's default 16 would reject the adapter
    assert args["max_loras"] == 1
    assert args["max_model_len"] == 812  # longest prompt + new tokens, under the model's 1024
    assert args["model"] == str(tiny_llama_dir) and args["dtype"] == "bfloat16"


def test_context_is_capped_at_the_model_limit_and_full_models_need_no_lora(tiny_llama_dir):
    args = vllm_engine_args(tiny_llama_dir, max_prompt_tokens=900, max_new_tokens=512)
    assert args["max_model_len"] == 1024  # max_position_embeddings of the tiny Llama
    assert args["enable_lora"] is False and "max_lora_rank" not in args


@pytest.mark.parametrize(("rank", "expected"), [(4, 8), (8, 8), (12, 16), (64, 64), (65, 128), (256, 256)])
def test_rank_is_rounded_up_to_a_size_vllm_accepts(tiny_llama_dir, tmp_path, rank, expected):
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": rank, "target_modules": ["q_proj", "v_proj"], "bias": "none"})
    )
    args = vllm_engine_args(tiny_llama_dir, tmp_path, max_prompt_tokens=10, max_new_tokens=10)
    assert args["max_lora_rank"] == expected


def test_rank_pattern_raises_the_rank(tiny_llama_dir, tmp_path):
    cfg = {"peft_type": "LORA", "r": 16, "rank_pattern": {"down_proj": 96}, "target_modules": ["down_proj"]}
    (tmp_path / "adapter_config.json").write_text(json.dumps(cfg))
    assert (
        vllm_engine_args(tiny_llama_dir, tmp_path, max_prompt_tokens=1, max_new_tokens=1)["max_lora_rank"]
        == 128
    )


def test_dora_and_saved_modules_are_refused_with_the_reason(tiny_llama_dir, tmp_path):
    dora = _save_adapter(tiny_llama_dir, tmp_path / "dora", r=8, use_dora=True)
    with pytest.raises(VLLMUnsupported, match="DoRA"):
        vllm_engine_args(tiny_llama_dir, dora, max_prompt_tokens=10, max_new_tokens=10)
    saved = _save_adapter(tiny_llama_dir, tmp_path / "mts", r=8, modules_to_save=["lm_head"])
    with pytest.raises(VLLMUnsupported, match="modules_to_save"):
        vllm_engine_args(tiny_llama_dir, saved, max_prompt_tokens=10, max_new_tokens=10)


@pytest.mark.parametrize(
    ("cfg", "reason"),
    [
        ({"r": 8, "target_modules": ["q_proj", "lm_head", "embed_tokens"]}, "embed_tokens, lm_head"),
        ({"r": 512, "target_modules": ["q_proj"]}, "rank 512"),
        ({"r": 8, "target_modules": ["q_proj"], "bias": "lora_only"}, "bias"),
        ({"r": 8, "target_modules": ".*attn.*"}, "pattern"),
        ({"peft_type": "IA3", "target_modules": ["q_proj"]}, "IA3"),
    ],
)
def test_unservable_adapters_name_the_problem(tiny_llama_dir, tmp_path, cfg, reason):
    (tmp_path / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(VLLMUnsupported, match=reason):
        vllm_engine_args(tiny_llama_dir, tmp_path, max_prompt_tokens=10, max_new_tokens=10)


def test_harness_falls_back_to_hf_when_vllm_cannot_serve_the_adapter(tiny_llama_dir, tmp_path, monkeypatch):
    """``--backend auto`` picked vLLM (as on a GPU machine with vllm); a DoRA adapter then runs on hf."""
    from lmolt_hub.evaluation import run as runner
    from lmolt_hub.generation import engine
    from lmolt_hub.generation.backends import GenerationParams
    from lmolt_hub.resources import chebi20_split

    dora = _save_adapter(tiny_llama_dir, tmp_path / "dora", r=8, use_dora=True)
    monkeypatch.setattr(engine, "choose_backend", lambda *a, **k: "vllm")
    doc = runner.evaluate_model(
        str(dora),
        eval_dataset=str(chebi20_split("validation")),
        limit=2,
        directions=["caption2smiles"],
        generation=GenerationParams(max_new_tokens=4),
        output_dir=str(tmp_path / "results"),
        use_cache=False,
        hallucination=False,
        bootstrap_resamples=0,
        metric_options={"fcd": False},
        show_progress=False,
    )
    assert doc["generation"]["backend"] == "hf"
    assert any("DoRA" in w and "--backend hf" in w for w in doc["warnings"])
    assert doc["model"]["dtype"] == "float32" and doc["model"]["dtype_used"] == "float32"  # CPU default


@pytest.mark.parametrize(
    ("requested", "device", "bf16", "expected"),
    [
        ("default", "cuda", True, "bfloat16"),  # A100/H100 and newer
        ("default", "cuda", False, "float16"),  # V100, T4
        ("default", "cpu", False, "float32"),
        ("default", "cpu", True, "float32"),
        ("float32", "cuda", True, "float32"),  # asked for: kept
        ("auto", "cuda", True, "auto"),  # the checkpoint's own dtype
    ],
)
def test_dtype_default_per_device(requested, device, bf16, expected):
    assert choose_dtype(requested, device, bf16) == expected


def test_unknown_dtype_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="unknown dtype 'fp8'"):
        choose_dtype("fp8", "cuda", True)


def test_dtype_used_is_recorded(tiny_llama_dir, tmp_path):
    """``auto`` keeps the stored dtype (recorded as used); the CPU default is float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bf16_dir = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16).save_pretrained(bf16_dir)
    AutoTokenizer.from_pretrained(tiny_llama_dir).save_pretrained(bf16_dir)
    auto = load_model(str(bf16_dir), options=LoadOptions(dtype="auto", device="cpu"))
    assert auto.info["dtype"] == "auto" and auto.info["dtype_used"] == "bfloat16"
    default = load_model(str(bf16_dir), options=LoadOptions(device="cpu"))
    assert default.info["dtype_used"] == "float32"
