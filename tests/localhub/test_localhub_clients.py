"""Local Hub contract with the real clients: transformers, peft, datasets, huggingface_hub.

Everything is pushed from this process, then ONE fresh subprocess (empty HF cache)
loads it all back and reports what it saw as JSON; the tests compare. Sharing the
subprocess keeps the import cost (~10 s for transformers + datasets) paid once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

ORG = f"lmolt-clients-{uuid.uuid4().hex[:6]}"
LOADER = r"""
import json, sys
import torch
from huggingface_hub import snapshot_download
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
from datasets import load_dataset

spec = json.loads(sys.argv[1])
out = {}
tok = AutoTokenizer.from_pretrained(spec["model"])
ids = tok(spec["text"], return_tensors="pt").input_ids
model = AutoModelForCausalLM.from_pretrained(spec["model"])
with torch.no_grad():
    out["logits"] = model(ids).logits[0, -1, :8].tolist()
    base = AutoModelForCausalLM.from_pretrained(spec["model"])
    peft = PeftModel.from_pretrained(base, spec["adapter"])
    out["adapter_logits"] = peft(ids).logits[0, -1, :8].tolist()
ds = load_dataset(spec["dataset"])
out["splits"] = {k: v.to_dict() for k, v in ds.items()}
stream = load_dataset(spec["dataset"], split="validation", streaming=True)
out["streamed"] = list(stream)
for key, rev in spec["revisions"].items():
    path = snapshot_download(spec["model"], revision=rev, allow_patterns=["marker.txt"])
    out[key] = open(path + "/marker.txt").read()
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def pushed(local_hub, tiny_llama_dir, tmp_path_factory):
    """Push a tiny Llama, a LoRA adapter and a two-split dataset; return what a loader should see."""
    import torch
    from datasets import Dataset, DatasetDict
    from huggingface_hub import HfApi
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    api = HfApi(endpoint=local_hub.url, token=local_hub.token)
    model_id, adapter_id, dataset_id = f"{ORG}/tiny-llama", f"{ORG}/tiny-lora", f"{ORG}/triples"
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    model.push_to_hub(model_id)
    tok.push_to_hub(model_id)
    text = "CCO is ethanol"
    ids = tok(text, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits[0, -1, :8].tolist()

    torch.manual_seed(0)
    lora_cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama_dir), lora_cfg)
    peft_model.push_to_hub(adapter_id)
    with torch.no_grad():
        adapter_logits = peft_model(ids).logits[0, -1, :8].tolist()

    splits = {
        "train": {"id": ["a", "b", "c"], "source": ["CCO", "C", "O"], "label": [True, False, True]},
        "validation": {"id": ["v"], "source": ["CC"], "label": [False]},
    }
    DatasetDict({k: Dataset.from_dict(v) for k, v in splits.items()}).push_to_hub(dataset_id)

    # revisions: a branch, a fixed sha, a pull request, each with its own marker
    first = api.upload_file(path_or_fileobj=b"sha", path_in_repo="marker.txt", repo_id=model_id).oid
    api.create_branch(model_id, branch="exp", revision=first)
    api.upload_file(path_or_fileobj=b"branch", path_in_repo="marker.txt", repo_id=model_id, revision="exp")
    pr = api.upload_file(path_or_fileobj=b"pr", path_in_repo="marker.txt", repo_id=model_id, create_pr=True)
    api.upload_file(path_or_fileobj=b"main", path_in_repo="marker.txt", repo_id=model_id)
    revisions = {"by_sha": first, "by_branch": "exp", "by_pr": pr.pr_revision, "by_main": "main"}

    spec = {
        "model": model_id,
        "adapter": adapter_id,
        "dataset": dataset_id,
        "text": text,
        "revisions": revisions,
    }
    env = dict(os.environ, HF_HOME=str(tmp_path_factory.mktemp("fresh_hf_home")))
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(spec)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    loaded = json.loads(proc.stdout.split("RESULT", 1)[1])
    expected = {"logits": logits, "adapter_logits": adapter_logits, "splits": splits}
    return {"loaded": loaded, "expected": expected, "api": api, "ids": (model_id, adapter_id, dataset_id)}


def test_tiny_llama_roundtrip_same_logits(pushed):
    assert pushed["loaded"]["logits"] == pytest.approx(pushed["expected"]["logits"], abs=1e-5)


def test_lora_adapter_loads_with_peft(pushed):
    loaded, expected = pushed["loaded"]["adapter_logits"], pushed["expected"]["adapter_logits"]
    assert loaded == pytest.approx(expected, abs=1e-5)
    # a non-trivial adapter: it changes the base model's output
    assert loaded != pytest.approx(pushed["expected"]["logits"], abs=1e-5)


def test_datasetdict_two_splits_and_streaming(pushed):
    assert pushed["loaded"]["splits"] == pushed["expected"]["splits"]
    validation = pushed["expected"]["splits"]["validation"]
    assert pushed["loaded"]["streamed"] == [
        dict(zip(validation, row, strict=True)) for row in zip(*validation.values(), strict=True)
    ]


def test_snapshot_download_by_branch_sha_and_pr(pushed):
    loaded = pushed["loaded"]
    assert (loaded["by_sha"], loaded["by_branch"], loaded["by_pr"], loaded["by_main"]) == (
        "sha",
        "branch",
        "pr",
        "main",
    )


def test_pushed_repos_are_listed_with_cards(pushed):
    api = pushed["api"]
    model_id, adapter_id, dataset_id = pushed["ids"]
    assert {m.id for m in api.list_models(author=ORG)} == {model_id, adapter_id}
    assert [d.id for d in api.list_datasets(author=ORG)] == [dataset_id]
    info = api.dataset_info(dataset_id)
    assert info.card_data is not None and "configs" in info.card_data.to_dict()
    adapter = api.model_info(adapter_id)
    assert adapter.card_data.to_dict().get("library_name")  # parsed from the README front matter
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {s.rfilename for s in adapter.siblings}
