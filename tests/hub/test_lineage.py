"""Merges pushed to the local Hub from Hub-id parents; `lmolt-hub lineage` reads the tree back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("mergekit")

from lmolt_hub.hub.lineage import format_tree, lineage  # noqa: E402
from lmolt_hub.merging import MergeConfigError, merge_from_config  # noqa: E402

ORG = "lineage-test"


def _push_model(path: Path, repo: str, card: dict | None = None) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo, exist_ok=True)
    if card is not None:
        front = yaml.safe_dump(card, sort_keys=False)
        (path / "README.md").write_text(f"---\n{front}---\n\n# {repo}\n", encoding="utf-8")
    return api.upload_folder(repo_id=repo, folder_path=str(path)).oid


@pytest.fixture(scope="module")
def parents(local_hub, tmp_path_factory) -> dict[str, str]:
    """Two one-direction parents on the Hub, each naming a common base and a dataset."""
    from lmolt_hub.tiny import build_tiny_llama, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    root = tmp_path_factory.mktemp("lineage-parents")
    shas = {}
    for name, seed in (("tiny-base", 0), ("lmolt-sft-caption2smiles", 1), ("lmolt-sft-smiles2caption", 2)):
        path = root / name
        build_tiny_llama(tok, seed=seed).save_pretrained(path)
        tok.save_pretrained(path)
        card = (
            None
            if name == "tiny-base"
            else {"base_model": f"{ORG}/tiny-base", "datasets": [f"{ORG}/lmolt-triples"]}
        )
        shas[name] = _push_model(path, f"{ORG}/{name}", card)
    return shas


def test_merge_from_hub_ids_push_and_lineage(parents, tmp_path):
    recipe = {
        "merge_method": "slerp",
        "base_model": "${org}/lmolt-sft-caption2smiles",
        "models": [
            {"model": "${org}/lmolt-sft-caption2smiles"},
            {"model": "${org}/lmolt-sft-smiles2caption"},
        ],
        "parameters": {"t": 0.05},
        "dtype": "float32",
    }
    cfg = tmp_path / "slerp.yaml"
    cfg.write_text(yaml.safe_dump(recipe, sort_keys=False))
    result = merge_from_config(cfg, tmp_path / "out", push_to=f"{ORG}/lmolt-slerp", variables={"org": ORG})
    assert result["hub_model_id"] == f"{ORG}/lmolt-slerp" and len(result["hub_revision"]) == 40
    pinned = {p["id"]: p["revision"] for p in result["parents"]}
    assert pinned == {
        f"{ORG}/lmolt-sft-caption2smiles": parents["lmolt-sft-caption2smiles"],
        f"{ORG}/lmolt-sft-smiles2caption": parents["lmolt-sft-smiles2caption"],
    }

    # pushing the same merge again is a no-op; another model onto that repo is refused
    again = merge_from_config(cfg, tmp_path / "out", push_to=f"{ORG}/lmolt-slerp", variables={"org": ORG})
    assert again["reused"] and again["hub_revision"] == result["hub_revision"]
    other = tmp_path / "slerp2.yaml"
    other.write_text(cfg.read_text().replace("t: 0.05", "t: 0.1"))
    with pytest.raises(MergeConfigError, match="already holds a different model"):
        merge_from_config(other, tmp_path / "out2", push_to=f"{ORG}/lmolt-slerp", variables={"org": ORG},
                          check_generation=False)  # fmt: skip
    assert not (tmp_path / "out2").exists()  # refused before merging

    from huggingface_hub import HfApi

    info = HfApi().model_info(f"{ORG}/lmolt-slerp")
    card = info.card_data.to_dict()
    assert card["base_model"] == [f"{ORG}/lmolt-sft-caption2smiles", f"{ORG}/lmolt-sft-smiles2caption"]
    assert card["lmolt"]["kind"] == "merge" and card["lmolt"]["name"] == f"{ORG}/lmolt-slerp"
    files = {s.rfilename for s in info.siblings}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "lmolt_merge.json"} <= files

    tree = lineage(f"{ORG}/lmolt-slerp")
    assert (
        tree["kind"] == "merge" and tree["method"] == "slerp" and tree["revision"] == result["hub_revision"]
    )
    by_id = {p["id"]: p for p in tree["parents"]}
    assert by_id[f"{ORG}/lmolt-sft-caption2smiles"]["relation"] == "merge base"
    for p in by_id.values():
        assert p["parents"][0]["id"] == f"{ORG}/tiny-base" and p["parents"][0]["kind"] == "model"
        assert p["datasets"][0]["id"] == f"{ORG}/lmolt-triples"
    text = format_tree(tree)
    assert "t=0.05" in text and text.count(f"{ORG}/tiny-base") == 2

    # (a fresh-process load of a pushed model from the Hub is covered by tests/pipelines/test_chain.py)

    # the CLI prints the same tree, and JSON on request
    cli = [sys.executable, "-m", "lmolt_hub.cli", "lineage", f"{ORG}/lmolt-slerp", "--json"]
    proc = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["parents"][0]["id"] == f"{ORG}/lmolt-sft-caption2smiles"


def test_lineage_of_missing_repo_and_local_leaves(local_hub):
    assert lineage(f"{ORG}/no-such-model")["kind"] == "missing"
    assert lineage("/some/local/dir")["kind"] == "local"
    assert lineage("tiny://llama")["kind"] == "tiny"
    proc = subprocess.run(
        [sys.executable, "-m", "lmolt_hub.cli", "lineage", f"{ORG}/no-such-model"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "not on this Hub" in proc.stderr
