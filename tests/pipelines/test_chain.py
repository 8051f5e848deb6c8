"""The tiny chain end to end on the local Hub: two one-direction SFT models -> SLERP (and TIES)
merge -> push -> CPO on the merge -> push -> fresh-process load + generate -> lineage tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("mergekit")
pytest.importorskip("trl")

from lmolt_hub.pipelines.chain import ChainError, load_chain, run_chain  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
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
    from lmolt_hub.pipelines.chain import _existing_model

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
    from lmolt_hub.hub.lineage import format_tree, lineage
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
        assert (
            p["parents"][0]["id"] == f"{ORG}/tiny-llama-seed0"
            and p["datasets"][0]["id"] == f"{ORG}/lmolt-triples"
        )
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

    from lmolt_hub.pipelines import chain as chain_cli

    def run(*argv: str) -> int:
        parser = argparse.ArgumentParser()
        chain_cli.add_arguments(parser)
        return chain_cli.main(parser.parse_args(list(argv)))

    assert run(str(CHAIN), "--org", "someone", "--dry-run") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["train"]["overrides"] == ["--dataset_name", "someone/lmolt-triples"]
    assert run(str(bad), "--dry-run") == 2
    assert "typo" in capsys.readouterr().err


def _resolved_training(chain: dict) -> tuple:
    """The training arguments a chain's train step runs with (its recipe plus the chain's overrides)."""
    import torch

    from lmolt_hub.training import parse_recipe

    step = chain["train"]
    cpu = [] if torch.cuda.is_available() else ["--use_cpu", "true"]  # bf16 recipes on a CPU-only machine
    return parse_recipe(step["method"], step["config"], [*step["overrides"], *cpu])


def test_the_paper_chains_train_and_merge_as_the_authors_did():
    meditron = ROOT / "recipes/meditron-7b"
    for fusion in ("slerp", "ties"):  # the CPO paper rows: 1 epoch, linear, warmup 0.1, clip 1.0 (dpo.py)
        chain = load_chain(meditron / f"{fusion}-cpo/chain.yaml", org="someone")
        _, t, _ = _resolved_training(chain)
        assert chain["train"]["name"] == f"lmolt-{fusion}-cpo" and chain["train"]["config"].endswith(
            "cpo/authors.yaml"
        )
        assert (t.num_train_epochs, t.lr_scheduler_type.value, t.warmup_steps, t.max_grad_norm) == (
            1,
            "linear",
            0.1,
            1.0,
        )
        assert (t.learning_rate, t.weight_decay, t.beta, t.loss_type) == (5e-5, 0.0, 0.1, "sigmoid")
    # the paper's Fig. 5 schedule is a named variant with its own zoo name
    fig5 = load_chain(meditron / "slerp-cpo/chain-fig5.yaml", org="someone")
    _, t, _ = _resolved_training(fig5)
    assert fig5["train"]["name"] == "lmolt-slerp-cpo-fig5" and fig5["merge"]["name"] == "lmolt-slerp"
    assert (t.num_train_epochs, t.lr_scheduler_type.value, t.max_grad_norm) == (3, "cosine", 0.3)
    # the TIES paper rows merge with mergekit's TIES as-is
    for method in ("cpo", "dpo"):
        chain = load_chain(meditron / f"ties-{method}/chain.yaml", org="someone")
        merge = yaml.safe_load(Path(chain["merge"]["config"]).read_text())
        assert chain["merge"]["name"] == "lmolt-ties" and merge["parameters"]["normalize"] is True


def test_no_file_repeats_the_retracted_claims():
    """The claim that the authors' best SLERP+CPO adapter was the first of three epochs (checkpoint-396 of
    1188) had no support, and the paper has no section 2.3 (fusion methods: §3.3, the 19:1: §4.3). The
    phrases are assembled here so that this file does not repeat them either."""
    retracted = (
        " ".join(("epoch", "1", "of", "3")),
        "Sec. " + "2.3",
        "396 of " + "1188",
        "epoch-1 " + "checkpoint",
    )
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:  # not a git checkout (e.g. an unpacked sdist): everything readable under the root
        tracked = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    hits = []
    for rel in tracked:
        path = ROOT / rel
        if not path.is_file() or path.suffix not in {".md", ".py", ".yaml", ".yml", ".txt", ".j2", ".sh"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{rel}: {claim}" for claim in retracted if claim in text]
    assert len(tracked) > 50 and hits == []
