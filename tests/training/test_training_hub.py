"""All four methods train the tiny model on CPU (QLoRA), push to the local Hub and load back fresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmolt_hub.hub.cards import parse_card
from lmolt_hub.training import RecipeError, train

ROOT = Path(__file__).resolve().parents[2]
ORG = "lmolt-train-test"
METHODS = ("sft", "dpo", "cpo", "kto")
FAST = ["--max_train_samples", "4", "--gradient_accumulation_steps", "1", "--max_length", "512"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def hub_inputs(local_hub):
    """The tiny base model and the demo triples (configs default + kto) on the local Hub."""
    from lmolt_hub.tiny import push_tiny_base

    from helpers.demo_triples import build_demo_triples, to_kto

    base = f"{ORG}/tiny-base"
    base_sha = push_tiny_base(base)
    triples = build_demo_triples(8)
    repo = f"{ORG}/lmolt-triples"
    triples.push_to_hub(repo, config_name="default")
    to_kto(triples).push_to_hub(repo, config_name="kto")
    return {"base": base, "base_sha": base_sha, "dataset": repo}


@pytest.fixture(scope="module")
def trained(hub_inputs, tmp_path_factory):
    out = {}
    for method in METHODS:
        extra = ["--push_merged", "true"] if method == "sft" else []
        out[method] = train(
            method,
            str(ROOT / f"recipes/tiny/{method}/qlora.yaml"),
            [
                "--model_name_or_path", hub_inputs["base"], "--dataset_name", hub_inputs["dataset"],
                "--output_dir", str(tmp_path_factory.mktemp(method)), "--push_to_hub", "true",
                "--hub_model_id", f"{ORG}/tiny-{method}", *FAST, *extra,
            ],
        )  # fmt: skip
    return out


def test_every_method_pushes_an_adapter_with_card_and_run_info(trained, hub_inputs):
    from huggingface_hub import HfApi
    from transformers import AutoTokenizer

    api = HfApi()
    for method, res in trained.items():
        assert res["hub_model_id"] == f"{ORG}/tiny-{method}" and len(res["hub_revision"]) == 40
        files = set(api.list_repo_files(res["hub_model_id"], revision=res["hub_revision"]))
        assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "run_info.json",
                "generation_config.json", "instruction_template.json", "tokenizer.json"} <= files  # fmt: skip
        assert not any(f.startswith("checkpoint-") for f in files)
        card, body = parse_card((Path(res["output_dir"]) / "README.md").read_text())
        assert card["base_model"] == hub_inputs["base"] and card["library_name"] == "peft"
        assert card["lmolt"]["parent_revision"] == hub_inputs["base_sha"]  # the exact parent commit
        assert card["lmolt"]["dataset_revision"] and card["datasets"] == [hub_inputs["dataset"]]
        assert f"recipes/tiny/{method}/qlora.yaml" in body and "lora_r: 8" in body  # verbatim recipe
        assert "| learning_rate |" in body and "Loss: first" in body and "## Limitations" in body
        info = json.loads((Path(res["output_dir"]) / "run_info.json").read_text())
        assert info["seed"] == 42 and info["batch"]["global_batch_size"] == 2 and info["train_rows"] == 4
        assert info["versions"]["trl"] and info["config"]["model"]["lora_r"] == 8
        gen = json.loads((Path(res["output_dir"]) / "generation_config.json").read_text())
        tok = AutoTokenizer.from_pretrained(res["output_dir"])
        assert (gen["eos_token_id"], gen["pad_token_id"]) == (tok.eos_token_id, tok.pad_token_id)
        assert tok.convert_ids_to_tokens(gen["eos_token_id"]) == "</s>"


LOAD_BACK = r"""
import json, sys, torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from lmolt_hub.prompts import build_prompt
base_id, repos = sys.argv[1], json.loads(sys.argv[2])
out = {}
for method, (repo, local) in repos.items():
    tok = AutoTokenizer.from_pretrained(repo)
    auto = AutoModelForCausalLM.from_pretrained(repo)  # base from adapter_config + the adapter
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_id), repo)
    saved = load_file(local + "/adapter_model.safetensors")
    lora = {k: v for k, v in peft.state_dict().items() if "lora_" in k}
    same = all(torch.equal(lora[k.replace(".weight", ".default.weight")], v) for k, v in saved.items())
    prompt = tok.apply_chat_template([{"role": "user", "content": "CCO"}], direction="smiles2caption",
                                     tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        a, p = auto(ids).logits, peft(ids).logits
    out[method] = {"same_weights": same and len(saved) > 0, "n_lora": len(saved),
                   "auto_eq_peft": bool(torch.allclose(a, p, atol=1e-5)),
                   "prompt_ok": prompt == build_prompt("smiles2caption", "CCO"),
                   "eos": auto.generation_config.eos_token_id}
    if method == "sft":
        merged = AutoModelForCausalLM.from_pretrained(repo + "-merged")
        with torch.no_grad():
            out["merged_eq_adapter"] = bool(torch.allclose(merged(ids).logits, p, atol=1e-4))
print(json.dumps(out))
"""


def test_adapters_load_back_in_a_fresh_process(trained, hub_inputs):
    repos = {m: [r["hub_model_id"], r["output_dir"]] for m, r in trained.items()}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", LOAD_BACK, hub_inputs["base"], json.dumps(repos)],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for method in METHODS:
        assert res[method]["same_weights"], method
        assert res[method]["auto_eq_peft"] and res[method]["prompt_ok"], res[method]
    assert res["merged_eq_adapter"] and trained["sft"]["merged_hub_model_id"] == f"{ORG}/tiny-sft-merged"


def test_existing_revision_is_never_overwritten_without_the_flag(trained, hub_inputs, tmp_path):
    from huggingface_hub import HfApi

    repo = trained["cpo"]["hub_model_id"]
    before = HfApi().model_info(repo).sha
    args = ["--model_name_or_path", hub_inputs["base"], "--dataset_name", hub_inputs["dataset"],
            "--output_dir", str(tmp_path / "again"), "--push_to_hub", "true", "--hub_model_id", repo, *FAST]  # fmt: skip
    with pytest.raises(RecipeError, match="already holds a model.*--overwrite_hub_revision"):
        train("cpo", str(ROOT / "recipes/tiny/cpo/qlora.yaml"), args)
    assert HfApi().model_info(repo).sha == before
    assert not (tmp_path / "again" / "adapter_model.safetensors").exists()  # refused before training
    # A branch per run lands beside main, leaving main untouched.
    res = train("cpo", str(ROOT / "recipes/tiny/cpo/qlora.yaml"),
                [*args, "--hub_branch_per_run", "true", "--max_steps", "1"])  # fmt: skip
    assert res["hub_branch"].startswith("run-")
    branches = {b.name for b in HfApi().list_repo_refs(repo).branches}
    assert res["hub_branch"] in branches and HfApi().model_info(repo).sha == before
    # With the flag, main is replaced by the new run.
    res = train("cpo", str(ROOT / "recipes/tiny/cpo/qlora.yaml"),
                [*args, "--overwrite_hub_revision", "true", "--max_steps", "1"])  # fmt: skip
    assert HfApi().model_info(repo).sha == res["hub_revision"] != before
