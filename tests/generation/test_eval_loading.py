"""Checkpoint loading: local paths, pickle refusal, adapters resolved to their base, clear errors."""

from __future__ import annotations

import json
import shutil

import pytest

from lmolt_hub.generation.loading import LoadOptions, ModelLoadError, load_model, resolve

from helpers.models import make_tiny_adapter


@pytest.fixture(scope="module")
def tiny_adapter(tiny_llama_dir, tmp_path_factory):
    return make_tiny_adapter(tiny_llama_dir, tmp_path_factory.mktemp("adapter"))


def test_local_full_model_records_a_content_hash(tiny_llama_dir):
    lm = load_model(str(tiny_llama_dir), options=LoadOptions(dtype="float32"))
    assert lm.info["is_adapter"] is False and lm.info["sha"] is None
    assert lm.info["content_sha256"] == resolve(str(tiny_llama_dir)).content_sha256
    assert lm.info["architecture"] == "LlamaForCausalLM"
    assert lm.tokenizer.padding_side == "left"
    assert not lm.model.training


def test_pickle_weights_are_refused_unless_allowed(tiny_llama_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    path = tmp_path / "pickled"
    shutil.copytree(tiny_llama_dir, path)
    state = load_file(path / "model.safetensors")
    (path / "model.safetensors").unlink()
    torch.save(state, path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="--allow-pickle"):
        resolve(str(path))
    lm = load_model(str(path), options=LoadOptions(allow_pickle=True))
    assert lm.info["content_sha256"]


def test_missing_and_non_model_paths_fail_clearly(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no model or adapter weights"):
        resolve(str(tmp_path / "empty"))
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        from lmolt_hub.generation.loading import _torch_dtype

        _torch_dtype("float8")


def test_adapter_resolves_its_base_from_adapter_config(tiny_adapter):
    adapter_dir, base_dir, _ = tiny_adapter
    ref = resolve(str(adapter_dir))
    assert ref.is_adapter and ref.base.path == base_dir.resolve()
    lm = load_model(str(adapter_dir))
    assert lm.info["is_adapter"] and lm.info["base_model"] == str(base_dir)
    from peft import PeftModel

    assert isinstance(lm.model, PeftModel)
    bad = adapter_dir.parent / "orphan"
    shutil.copytree(adapter_dir, bad)
    cfg = json.loads((bad / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(adapter_dir.parent / "missing-base")
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="missing-base"):
        resolve(str(bad))


def test_4bit_loading_quantises_linear_layers(tiny_llama_dir):
    import bitsandbytes as bnb

    from lmolt_hub.generation.backends import GenerationParams, HFBackend

    lm = load_model(str(tiny_llama_dir), options=LoadOptions(load_in_4bit=True))
    assert lm.info["load_in_4bit"] is True
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in lm.model.modules())
    (out,) = HFBackend(lm.model, lm.tokenizer).generate(
        ["The molecule is"], GenerationParams(max_new_tokens=3)
    )
    assert isinstance(out, str)


def test_remote_code_is_refused_unless_trusted(tiny_llama_dir, tmp_path):
    path = tmp_path / "custom"
    shutil.copytree(tiny_llama_dir, path)
    cfg = json.loads((path / "config.json").read_text())
    cfg |= {
        "model_type": "custom-llama",
        "auto_map": {
            "AutoConfig": "configuration_custom.CustomConfig",
            "AutoModelForCausalLM": "modeling_custom.CustomLlama",
        },
    }
    (path / "config.json").write_text(json.dumps(cfg))
    ran = tmp_path / "ran"
    (path / "configuration_custom.py").write_text(
        f"open({str(ran)!r}, 'w').close()\nfrom transformers import LlamaConfig\n\n"
        "class CustomConfig(LlamaConfig):\n    model_type = 'custom-llama'\n"
    )
    (path / "modeling_custom.py").write_text(
        "from transformers import LlamaForCausalLM\n\nclass CustomLlama(LlamaForCausalLM):\n    pass\n"
    )
    with pytest.raises(ModelLoadError, match="--trust-remote-code"):
        load_model(str(path))
    assert not ran.exists()  # the repository's code never ran
