"""Loading checkpoints from the (local) Hub: shas recorded, adapters resolved, clear errors."""

from __future__ import annotations

import json
import shutil

import pytest

from lmolt_hub.generation.loading import ModelLoadError, load_model, resolve


@pytest.fixture(scope="module")
def hub_model(local_hub, tiny_llama_dir):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("evalorg/tiny-llama", exist_ok=True)
    commit = api.upload_folder(repo_id="evalorg/tiny-llama", folder_path=str(tiny_llama_dir))
    return "evalorg/tiny-llama", commit.oid


def test_hub_model_is_pinned_to_its_commit(hub_model):
    repo, sha = hub_model
    lm = load_model(repo)
    assert lm.info["id"] == repo and lm.info["sha"] == sha and lm.info["local_path"] is None
    assert resolve(repo, revision=sha).sha == sha


def test_unknown_model_and_missing_revision_fail_clearly(hub_model):
    with pytest.raises(ModelLoadError, match="neither a local directory nor a model on the Hub"):
        resolve("evalorg/does-not-exist")
    with pytest.raises(ModelLoadError, match="revision 'no-such-branch' not found"):
        resolve(hub_model[0], revision="no-such-branch")


def test_hub_adapter_records_adapter_and_base_sha(hub_model, tmp_path):
    from huggingface_hub import HfApi

    from lmolt_hub.generation.loading import _content_hash

    from helpers.models import make_tiny_adapter

    repo, base_sha = hub_model
    adapter_dir, _, _ = make_tiny_adapter(resolve(repo).path, tmp_path)
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = repo
    (adapter_dir / "adapter_config.json").write_text(json.dumps(cfg))
    api = HfApi()
    api.create_repo("evalorg/tiny-adapter", exist_ok=True)
    adapter_sha = api.upload_folder(repo_id="evalorg/tiny-adapter", folder_path=str(adapter_dir)).oid
    info = load_model("evalorg/tiny-adapter").info
    assert (info["sha"], info["adapter_sha"], info["base_model"], info["base_sha"]) == (
        adapter_sha,
        adapter_sha,
        repo,
        base_sha,
    )
    # pickles are never downloaded when safetensors exist
    pickled = tmp_path / "both"
    shutil.copytree(adapter_dir, pickled)
    (pickled / "adapter_model.bin").write_bytes(b"not a real pickle")
    api.upload_folder(repo_id="evalorg/tiny-adapter", folder_path=str(pickled))
    ref = resolve("evalorg/tiny-adapter")
    assert not (ref.path / "adapter_model.bin").exists() and _content_hash(ref.path)


def test_offline_mode_uses_the_cached_snapshot(hub_model):
    import os
    import subprocess
    import sys

    repo, sha = hub_model
    resolve(repo)  # now in the cache
    code = (
        "from lmolt_hub.generation.loading import ModelLoadError, resolve\n"
        f"print(resolve({repo!r}).sha)\n"
        "try:\n    resolve('evalorg/never-downloaded')\nexcept ModelLoadError as e:\n    print(e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert out.splitlines()[0] == sha
    assert "HF_HUB_OFFLINE is set" in out
