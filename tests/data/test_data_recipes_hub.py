"""The paper's recipes (recipes/data/triples.yaml, eval_3k.yaml) run unchanged against the local Hub.

Small stand-ins take the real repository names: L+M-24 splits (real ChEBI-20 pairs, with the
real split names and columns) and tiny seq2seq models in place of the MolT5-large LPM-24 ones.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lmolt_hub.data import build_from_config, load_recipe
from lmolt_hub.data.chem import inchikey
from lmolt_hub.data.sources import read_table
from lmolt_hub.resources import chebi20_split

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "data"
LPM = "language-plus-molecules"


def _push_tiny_t5(repo_id: str, tmp: Path) -> str:
    from huggingface_hub import HfApi

    from lmolt_hub.tiny import save_tiny_t5

    path = save_tiny_t5(tmp / repo_id.replace("/", "--"))
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, folder_path=str(path)).oid


@pytest.fixture(scope="module")
def stand_ins(local_hub, tmp_path_factory):
    from datasets import Dataset, DatasetDict

    tmp = tmp_path_factory.mktemp("lpm")
    rows = [{"molecule": r["SMILES"].replace("\\\\", "\\"), "caption": r["description"]}
            for r in read_table(chebi20_split("validation"))[:400]]  # fmt: skip
    train, valid, extra = rows[:200], rows[200:300], rows[300:400]
    # extra: 60 unseen molecules, each with a second caption, plus every train/valid molecule
    extra = (
        extra[:60]
        + [{**r, "caption": r["caption"] + " (another caption)"} for r in extra[:60]]
        + train
        + valid
    )
    as_ds = lambda rs: Dataset.from_dict({k: [r[k] for r in rs] for k in ("molecule", "caption")})  # noqa: E731
    DatasetDict({"split_train": as_ds(train), "split_valid": as_ds(valid)}).push_to_hub(f"{LPM}/LPM-24_train")
    # The recipe pins LPM-24_train to the short sha of its 2024 commit; the stand-in carries it as a tag.
    from huggingface_hub import HfApi

    pinned = load_recipe(RECIPES / "triples.yaml").splits["train"].source.revision
    HfApi().create_tag(f"{LPM}/LPM-24_train", tag=pinned, repo_type="dataset")
    DatasetDict({"split_valid": as_ds(extra)}).push_to_hub(f"{LPM}/LPM-24_train-extra")
    shas = {
        d: _push_tiny_t5(f"{LPM}/molt5-large-{d}-LPM24", tmp) for d in ("smiles2caption", "caption2smiles")
    }
    return {"tmp": tmp, "model_shas": shas, "train": train, "valid": valid}


def test_paper_recipes_build_from_the_hub(stand_ins) -> None:
    tmp = stand_ins["tmp"]
    gen = ["negatives.generation.max_new_tokens=4", f"negatives.generation.cache_dir={tmp / 'cache'}"]
    triples = build_from_config(RECIPES / "triples.yaml", gen, output_dir=tmp / "triples", quiet=True)
    s = triples["summary"]["splits"]
    assert (s["train"]["selected"], s["validation"]["selected"]) == (20, 10)  # seeded 10% of each split
    from huggingface_hub import HfApi

    card = (Path(triples["output_dir"]) / "README.md").read_text()
    for sha in stand_ins["model_shas"].values():
        assert sha in card  # the negative generator's resolved revision is recorded
    dataset_sha = HfApi().dataset_info(f"{LPM}/LPM-24_train").sha
    assert dataset_sha in card and "| `cda59f4` |" in card  # the pin asked for and the commit it resolved to
    for d in ("smiles2caption", "caption2smiles"):  # every rule's kept/dropped rows are counted
        rules = s["train"]["directions"][d]["rules"]
        assert sum(c["kept"] + c["dropped"] for c in rules.values()) <= 20
        assert all(c["dropped"] == 0 for r, c in rules.items() if r.startswith("rejected_"))

    # LPM-24_train-extra is pinned to a full 40-hex sha, which a local stand-in cannot have: use main.
    ev = build_from_config(
        RECIPES / "eval_3k.yaml", ["n=25", "source.revision=main"], output_dir=tmp / "eval", quiet=True
    )
    c = ev["summary"]["contamination"]
    assert (
        c["molecules_excluded"] == 30
        and c["candidates_removed_as_seen"] == 30
        and c["overlap_after_exclusion"] == 0
    )
    test = pq.read_table(Path(ev["output_dir"]) / "data/test-00000-of-00001.parquet").to_pylist()
    assert len(test) == 25 and len({r["inchikey"] for r in test}) == 25
    sampled = {inchikey(r["molecule"]) for split in ("train", "validation")
               for r in pq.read_table(Path(triples["output_dir"]) / f"data/{split}-00000-of-00001.parquet").to_pylist()}  # fmt: skip
    assert not sampled & {r["inchikey"] for r in test}
    assert any(f.startswith("fcd_stats/") for f in ev["files"])
