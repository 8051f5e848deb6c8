"""Datasets pushed to the local Hub load back exactly, in a fresh process; nothing half-built is pushed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from lmolt_hub.data import DataError, build_from_config
from lmolt_hub.data.publish import push_dir

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "data"
ORG = "data-tests"

# In a fresh process (empty HF cache, another hash seed): load both datasets from the Hub, fetch the
# FCD statistics, and rebuild the default triples, to compare bytes with this process's build.
FRESH = r"""
import json, sys
from datasets import load_dataset
from huggingface_hub import hf_hub_download
from lmolt_hub.data import build_from_config
spec = json.loads(sys.argv[1])
out = {"triples": {s: d.to_list() for s, d in load_dataset(spec["triples"]).items()},
       "kto": {s: d.to_list() for s, d in load_dataset(spec["triples"], "kto").items()},
       "eval": load_dataset(spec["eval"], split="test").to_list()}
out["fcd"] = open(hf_hub_download(spec["eval"], spec["fcd_file"], repo_type="dataset"), "rb").read().hex()
build_from_config(spec["recipe"], output_dir=spec["rebuild_dir"], quiet=True)
print("RESULT" + json.dumps(out))
"""


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.fixture(scope="module")
def pushed(local_hub, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("data_hub")
    triples = build_from_config(
        RECIPES / "default" / "triples.yaml", output_dir=tmp / "triples", push_to=ORG, quiet=True
    )
    eval_recipe = tmp / "eval.yaml"
    raw = yaml.safe_load((RECIPES / "default" / "eval.yaml").read_text())
    raw.update(n=30, exclude=[{"recipe": str(RECIPES / "default" / "triples.yaml")}])
    eval_recipe.write_text(yaml.safe_dump(raw))
    ev = build_from_config(
        eval_recipe, output_dir=tmp / "eval", push_to=f"{ORG}/lmolt-eval-small", quiet=True
    )
    fcd_file = next(f for f in ev["files"] if f.startswith("fcd_stats/"))
    spec = {
        "triples": triples["repo_id"],
        "eval": ev["repo_id"],
        "fcd_file": fcd_file,
        "recipe": str(RECIPES / "default" / "triples.yaml"),
        "rebuild_dir": str(tmp / "rebuilt"),
    }
    env = dict(os.environ, HF_HOME=str(tmp / "fresh_hf_home"), PYTHONHASHSEED="12345")
    proc = subprocess.run(
        [sys.executable, "-c", FRESH, json.dumps(spec)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    loaded = json.loads(proc.stdout.split("RESULT", 1)[1])
    return {"triples": triples, "eval": ev, "loaded": loaded, "fcd_file": fcd_file, "tmp": tmp}


def test_triples_load_back_exactly_in_a_fresh_process(pushed) -> None:
    out = Path(pushed["triples"]["output_dir"])
    assert pushed["triples"]["repo_id"] == f"{ORG}/lmolt-triples" and pushed["triples"]["revision"]
    for split in ("train", "validation"):
        assert pushed["loaded"]["triples"][split] == _rows(out / f"data/{split}-00000-of-00001.parquet")
        assert pushed["loaded"]["kto"][split] == _rows(out / f"kto/{split}-00000-of-00001.parquet")


def test_eval_set_and_fcd_stats_load_back(pushed) -> None:
    out = Path(pushed["eval"]["output_dir"])
    assert pushed["loaded"]["eval"] == _rows(out / "data/test-00000-of-00001.parquet")
    assert len(pushed["loaded"]["eval"]) == 30
    assert bytes.fromhex(pushed["loaded"]["fcd"]) == (out / pushed["fcd_file"]).read_bytes()


def test_fresh_process_rebuild_is_byte_identical(pushed) -> None:
    first, again = Path(pushed["triples"]["output_dir"]), pushed["tmp"] / "rebuilt"
    shards = sorted(p.relative_to(first) for p in first.rglob("*.parquet"))
    assert shards and all((first / p).read_bytes() == (again / p).read_bytes() for p in shards)


def test_hub_card_holds_the_recipe_and_check_passes(pushed, capsys) -> None:
    from huggingface_hub import HfApi, hf_hub_download

    from lmolt_hub.cli import main
    from lmolt_hub.hub.cards import parse_card

    repo = pushed["triples"]["repo_id"]
    card, _ = parse_card(Path(hf_hub_download(repo, "README.md", repo_type="dataset")).read_text())
    assert card["lmolt"]["recipe"]["splits"]["train"]["fraction"] == 0.1
    assert [c["config_name"] for c in card["configs"]] == ["default", "kto"]
    files = set(HfApi().list_repo_files(repo, repo_type="dataset"))
    assert set(pushed["triples"]["files"]) <= files
    capsys.readouterr()
    assert main(["data", "check", "--dataset", repo]) == 0
    report = json.loads(capsys.readouterr().out.rsplit("ok", 1)[0])
    out = Path(pushed["triples"]["output_dir"])
    assert report["rows"] == {
        s: pq.read_metadata(out / f"data/{s}-00000-of-00001.parquet").num_rows
        for s in ("train", "validation")
    }


def test_nothing_half_built_is_pushed(local_hub, tmp_path: Path) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    api = HfApi()
    # a build that fails (unreachable negatives model) never creates the repo
    with pytest.raises(DataError, match="not reachable"):
        build_from_config(
            RECIPES / "default" / "triples.yaml",
            ["negatives.caption2smiles={model: nobody/no-model}"],
            output_dir=tmp_path / "failed",
            push_to=f"{ORG}/never-built",
            quiet=True,
        )
    # a built folder that breaks the contract is refused before any upload
    built = build_from_config(
        RECIPES / "default" / "triples.yaml", ["splits.train.limit=5"], output_dir=tmp_path / "ok", quiet=True
    )
    shard = Path(built["output_dir"]) / "data/train-00000-of-00001.parquet"
    table = pq.read_table(shard)
    table = table.set_column(table.column_names.index("rejected"), "rejected", table.column("chosen"))
    pq.write_table(table, shard)
    with pytest.raises(DataError, match="rows with rejected == chosen, the card counts"):
        push_dir(Path(built["output_dir"]), f"{ORG}/tampered")
    for name in ("never-built", "tampered"):
        with pytest.raises(RepositoryNotFoundError):
            api.dataset_info(f"{ORG}/{name}")


def test_republish_replaces_the_dataset_in_one_commit(local_hub, tmp_path: Path) -> None:
    from huggingface_hub import HfApi

    repo = f"{ORG}/republished"
    recipe = RECIPES / "default" / "triples.yaml"
    build_from_config(recipe, ["splits.train.limit=8"], output_dir=tmp_path / "a", push_to=repo, quiet=True)
    raw = yaml.safe_load(recipe.read_text())
    del raw["splits"]["validation"]
    (tmp_path / "train_only.yaml").write_text(yaml.safe_dump(raw))
    api = HfApi()
    before = len(api.list_repo_commits(repo, repo_type="dataset"))
    second = build_from_config(
        tmp_path / "train_only.yaml",
        ["splits.train.limit=8"],
        output_dir=tmp_path / "b",
        push_to=repo,
        quiet=True,
    )
    assert len(api.list_repo_commits(repo, repo_type="dataset")) == before + 1
    files = set(api.list_repo_files(repo, repo_type="dataset"))
    assert not any("validation" in f for f in files)  # stale shards removed in that same commit
    assert files - {".gitattributes"} == set(second["files"])  # exactly what was built
