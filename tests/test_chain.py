"""The tiny chain end to end on the local Hub: two one-direction SFT models -> SLERP (and TIES)
merge -> push -> CPO on the merge -> push -> fresh-process load + generate -> lineage tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mergekit")
pytest.importorskip("trl")

from lmolt_hub.chain import ChainError, load_chain, run_chain  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ORG = "lmolt-chain-test"
CHAIN = ROOT / "recipes/tiny/slerp-cpo/chain.yaml"
FAST = ["--max_train_samples", "4", "--gradient_accumulation_steps", "1", "--max_length", "512"]


@pytest.fixture(scope="module")
def chain_run(local_hub, tmp_path_factory):
    from helpers.demo_triples import build_demo_triples

    build_demo_triples(8).push_to_hub(f"{ORG}/lmolt-triples", config_name="default")
    work = tmp_path_factory.mktemp("chain")
    logs: list[str] = []
    result = run_chain(CHAIN, org=ORG, work_dir=work, train_args=FAST, log=logs.append)
    return {"result": result, "work": work, "logs": logs}


def test_chain_pushes_every_step_and_resumes(chain_run):
    res = chain_run["result"]
    assert [p["hub_model_id"] for p in res["parents"]] == [
        f"{ORG}/lmolt-sft-caption2smiles", f"{ORG}/lmolt-sft-smiles2caption"
    ]  # fmt: skip
    assert res["merge"]["hub_model_id"] == f"{ORG}/lmolt-slerp" and len(res["merge"]["hub_revision"]) == 40
    assert (
        res["train"]["hub_model_id"] == f"{ORG}/lmolt-slerp-cpo" and len(res["train"]["hub_revision"]) == 40
    )
    # the CPO adapter was trained on the merge at exactly the pushed revision
    from huggingface_hub import HfApi

    card = HfApi().model_info(f"{ORG}/lmolt-slerp-cpo").card_data.to_dict()
    assert card["lmolt"]["parent"] == f"{ORG}/lmolt-slerp"
    assert card["lmolt"]["parent_revision"] == res["merge"]["hub_revision"]
    # parents already on the Hub are reused by other chains (recipes/tiny/ties-cpo shares them)
    from lmolt_hub.chain import _existing_model

    reuse = _existing_model(f"{ORG}/lmolt-sft-caption2smiles")
    assert reuse["hub_revision"] == res["parents"][0]["hub_revision"]
    assert _existing_model(f"{ORG}/lmolt-sft-nothing") is None
    # a second run resumes from chain_state.json: nothing is trained or merged again
    logs: list[str] = []
    again = run_chain(CHAIN, org=ORG, work_dir=chain_run["work"], train_args=FAST, log=logs.append)
    assert again == res and logs == []


def test_slerp_cpo_loads_in_a_fresh_process(chain_run):
    code = (
        "from transformers import AutoModelForCausalLM, AutoTokenizer;"
        "from lmolt_hub.prompts import build_prompt;"
        f"m = AutoModelForCausalLM.from_pretrained('{ORG}/lmolt-slerp-cpo');"
        f"t = AutoTokenizer.from_pretrained('{ORG}/lmolt-slerp-cpo');"
        "x = t(build_prompt('smiles2caption', 'CCO'), return_tensors='pt');"
        "out = m.generate(**x, max_new_tokens=5, do_sample=False, min_new_tokens=5);"
        "print(type(m).__name__, out.shape[1] - x['input_ids'].shape[1])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].endswith(" 5")


def test_ties_merge_of_the_same_parents_and_full_lineage(chain_run, tmp_path):
    from lmolt_hub.lineage import format_tree, lineage
    from lmolt_hub.merging import merge_from_config

    ties = merge_from_config(
        ROOT / "recipes/tiny/merges/ties.yaml", tmp_path / "ties", push_to=f"{ORG}/lmolt-ties",
        variables={"org": ORG}, check_generation=True,
    )  # fmt: skip
    assert ties["method"] == "ties" and ties["hub_revision"]
    roles = {p["ref"]: p["role"] for p in ties["parents"]}
    assert roles["tiny://llama"] == "base"
    # the parents are adapters: each was merged into its base before TIES
    assert all(
        p["adapter"]["id"].startswith(f"{ORG}/lmolt-sft-") for p in ties["parents"] if p["role"] == "input"
    )

    tree = lineage(f"{ORG}/lmolt-slerp-cpo")
    assert tree["kind"] == "adapter" and tree["method"] == "cpo"
    merge = tree["parents"][0]
    assert (merge["id"], merge["kind"], merge["method"]) == (f"{ORG}/lmolt-slerp", "merge", "slerp")
    assert merge["revision"] == chain_run["result"]["merge"]["hub_revision"]
    sft = {p["id"]: p for p in merge["parents"]}
    assert set(sft) == {f"{ORG}/lmolt-sft-caption2smiles", f"{ORG}/lmolt-sft-smiles2caption"}
    for p in sft.values():
        assert p["kind"] == "adapter" and p["method"] == "sft"
        assert p["parents"][0]["id"] == f"{ORG}/tiny-llama-seed0" and p["datasets"][0]["id"] == f"{ORG}/lmolt-triples"
    assert tree["datasets"][0]["id"] == f"{ORG}/lmolt-triples"
    text = format_tree(tree)
    print(text)  # shown with pytest -s
    assert "caption2smiles" in text and "t=0.05" in text and text.count(f"{ORG}/tiny-llama-seed0") == 2
    proc = subprocess.run([sys.executable, "-m", "lmolt_hub.cli", "lineage", f"{ORG}/lmolt-slerp-cpo"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == text


def test_chain_recipe_validation(tmp_path, capsys):
    bad = tmp_path / "chain.yaml"
    bad.write_text("org: x\nmerge: {config: nowhere.yaml}\ntrain: {method: cpo, config: c.yaml}\n")
    with pytest.raises(ChainError, match="nowhere.yaml.*does not exist"):
        load_chain(bad)
    bad.write_text("org: x\nmerge: {config: m.yaml}\ntrain: {method: orpo, config: c.yaml}\n")
    with pytest.raises(ChainError, match="train/method"):
        load_chain(bad)
    bad.write_text("merge: {config: m.yaml, typo: 1}\ntrain: {method: cpo, config: c.yaml}\n")
    with pytest.raises(ChainError, match="typo"):
        load_chain(bad)
    for recipe in sorted((ROOT / "recipes").glob("*/*/chain.yaml")):
        chain = load_chain(recipe, org="someone")
        fusion, method, *variant = recipe.parent.name.split("-")  # e.g. slerp-cpo-authors: a variant
        suffix = "".join(f"-{v}" for v in variant)
        # the cpu study publishes under its own track prefix (lmolt-cpu-*), never mixed with the zoo's names
        prefix = "lmolt-cpu-" if recipe.parent.parent.name == "cpu-study" else "lmolt-"
        assert (
            chain["merge"]["name"] == f"{prefix}{fusion}{suffix}"
            and chain["train"]["name"] == f"{prefix}{fusion}-{method}{suffix}"
        ), recipe
    # the CLI: --dry-run prints the resolved plan; a bad recipe is exit status 2 with the reason
    import argparse

    from lmolt_hub import chain as chain_cli

    def run(*argv: str) -> int:
        parser = argparse.ArgumentParser()
        chain_cli.add_arguments(parser)
        return chain_cli.main(parser.parse_args(list(argv)))

    assert run(str(CHAIN), "--org", "someone", "--dry-run") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["train"]["overrides"] == ["--dataset_name", "someone/lmolt-triples"]
    assert run(str(bad), "--dry-run") == 2
    assert "typo" in capsys.readouterr().err
