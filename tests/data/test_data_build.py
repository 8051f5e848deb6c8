"""Building the triple and eval datasets offline: contract, drops, determinism, bad input, negatives."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from lmolt_hub.data import DataError, build_from_config
from lmolt_hub.data.check import check_dir
from lmolt_hub.data.chem import inchikey
from lmolt_hub.data.config import GenerationConfig, RejectedConfig
from lmolt_hub.data.negatives import ModelRejecter
from lmolt_hub.prompts import DIRECTIONS, TEMPLATE_VERSION, build_prompt

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "data"


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def default_triples(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("triples") / "lmolt-triples"
    return build_from_config(RECIPES / "default" / "triples.yaml", output_dir=out, quiet=True)


def test_default_triples_follow_the_contract(default_triples: dict) -> None:
    out = Path(default_triples["output_dir"])
    summary = default_triples["summary"]
    assert check_dir(out)["rows"] == {
        s: len(_rows(out / f"data/{s}-00000-of-00001.parquet")) for s in ("train", "validation")
    }
    train = _rows(out / "data/train-00000-of-00001.parquet")
    assert {r["direction"] for r in train} == set(DIRECTIONS)
    for r in train:
        assert (
            r["prompt"] == build_prompt(r["direction"], r["source"])
            and r["template_version"] == TEMPLATE_VERSION
        )
        assert r["rejected"]
        assert (r["source"], r["chosen"]) == (
            (r["molecule"], r["caption"])
            if r["direction"] == "smiles2caption"
            else (r["caption"], r["molecule"])
        )
    # ~10% of ChEBI-20 test per direction, every drop counted: selected == kept + dropped
    s = summary["splits"]["train"]
    assert 320 <= s["selected"] <= 340
    for split in summary["splits"].values():  # every source row is kept or counted as a drop
        assert split["source_rows"] == split["valid_rows"] + sum(split["drops"].values())
    for direction, d in s["directions"].items():
        assert d["rows"] + sum(d["drops"].values()) == s["selected"]
        assert d["rows"] == sum(r["direction"] == direction for r in train)
    # rejected == chosen rows are kept by default, as the authors did, and counted
    c2s = s["directions"]["caption2smiles"]
    equal_rule = c2s["rules"]["rejected_equals_chosen"]
    assert equal_rule["kept"] > 0 and equal_rule["dropped"] == 0
    n_equal = sum(r["rejected"] == r["chosen"] for r in train if r["direction"] == "caption2smiles")
    assert n_equal == c2s["rules"]["rejected_equals_chosen"]["kept"]
    # validation molecules never appear in train
    val = _rows(out / "data/validation-00000-of-00001.parquet")
    assert not {inchikey(r["molecule"]) for r in val} & {inchikey(r["molecule"]) for r in train}
    kto = _rows(out / "kto/train-00000-of-00001.parquet")
    assert len(kto) == 2 * len(train) and [r["label"] for r in kto[:2]] == [True, False]
    assert kto[0]["completion"] == train[0]["chosen"] and kto[1]["completion"] == train[0]["rejected"]
    card = (out / "README.md").read_text()
    assert "rejected_equals_chosen" in card and "fraction: 0.1" in card and TEMPLATE_VERSION in card
    n_kept = c2s["rules"]["rejected_equals_chosen"]["kept"]
    assert f"| train | caption2smiles | `rejected_equals_chosen` | {n_kept} | 0 |" in card


def test_same_recipe_gives_byte_identical_parquet(default_triples: dict, tmp_path: Path) -> None:
    again = build_from_config(RECIPES / "default" / "triples.yaml", output_dir=tmp_path / "again", quiet=True)
    first, second = Path(default_triples["output_dir"]), Path(again["output_dir"])
    shards = sorted(p.relative_to(first) for p in first.rglob("*.parquet"))
    assert len(shards) == 4
    for rel in shards:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    # a different seed selects different pairs
    other = build_from_config(
        RECIPES / "default" / "triples.yaml", ["seed=1"], output_dir=tmp_path / "seed1", quiet=True
    )
    assert (Path(other["output_dir"]) / shards[0]).read_bytes() != (first / shards[0]).read_bytes()


def test_rebuild_from_card_gives_the_same_bytes(default_triples: dict, tmp_path: Path) -> None:
    out = Path(default_triples["output_dir"])
    rebuilt = build_from_config(out / "README.md", output_dir=tmp_path / "rebuilt", quiet=True)
    for rel in ("data/train-00000-of-00001.parquet", "kto/validation-00000-of-00001.parquet"):
        assert (out / rel).read_bytes() == (Path(rebuilt["output_dir"]) / rel).read_bytes()


def _file_recipe(tmp_path: Path, pairs: list[dict], preds: dict[str, list[dict]], **extra) -> Path:
    src = _write(tmp_path / "pairs.jsonl", pairs)
    recipe = {
        "kind": "triples",
        "splits": {
            "train": {
                "source": {
                    "type": "file",
                    "path": src.name,
                    "molecule_column": "smiles",
                    "caption_column": "text",
                    "id_column": "cid",
                }
            }
        },
        "negatives": {
            d: {
                "predictions": _write(tmp_path / f"{d}.jsonl", rows).name,
                "source_column": "src",
                "output_column": "out",
            }
            for d, rows in preds.items()
        },
        **extra,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _messy_recipe(tmp_path: Path) -> Path:
    pairs = [
        {"cid": "1", "smiles": "CCO", "text": "ethanol"},
        {"cid": "2", "smiles": "OCC", "text": "ethanol again"},  # same molecule by InChIKey
        {"cid": "3", "smiles": "C1CC", "text": "broken ring"},  # invalid SMILES
        {"cid": "4", "smiles": "", "text": "no molecule"},
        {"cid": "5", "smiles": "CC(=O)O", "text": " "},
        {"cid": "6", "smiles": "c1ccccc1", "text": "benzene"},
        {"cid": "7", "smiles": "CCN", "text": "ethylamine"},
    ]
    preds = {
        "smiles2caption": [
            {"src": "C(O)C", "out": "methanol"},
            {"src": "c1ccccc1", "out": "benzene"},
            {"src": "CCN", "out": "an amine"},
        ],
        "caption2smiles": [
            {"src": "ethanol", "out": "CO"},
            {"src": "benzene", "out": "C1=CC=CC=C1"},
            {"src": "ethylamine", "out": ""},
        ],
    }
    return _file_recipe(tmp_path, pairs, preds)


def test_invalid_empty_duplicate_and_equal_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    result = build_from_config(
        _messy_recipe(tmp_path), ["negatives.drop_identical=true"], output_dir=tmp_path / "out", quiet=True
    )
    s = result["summary"]["splits"]["train"]
    assert s["drops"] == {
        "duplicate_inchikey": 1,
        "empty_caption": 1,
        "empty_molecule": 1,
        "invalid_smiles": 1,
    }
    assert s["selected"] == 3
    # predictions are matched by source: SMILES by InChIKey ("C(O)C" is CCO), captions by text
    assert s["directions"]["smiles2caption"] == {
        **s["directions"]["smiles2caption"],
        "rows": 2,
        "drops": {"rejected_equals_chosen": 1},
    }
    assert s["directions"]["caption2smiles"]["drops"] == {"empty_rejected": 1, "rejected_same_molecule": 1}
    rows = _rows(Path(result["output_dir"]) / "data/train-00000-of-00001.parquet")
    assert [(r["id"], r["rejected"]) for r in rows] == [
        ("1:smiles2caption", "methanol"),
        ("7:smiles2caption", "an amine"),
        ("1:caption2smiles", "CO"),
    ]


def test_identical_rows_are_kept_by_default_and_counted_per_rule(tmp_path: Path) -> None:
    result = build_from_config(_messy_recipe(tmp_path), output_dir=tmp_path / "out", quiet=True)
    d = result["summary"]["splits"]["train"]["directions"]
    zero = {"kept": 0, "dropped": 0}
    assert d["smiles2caption"]["rules"] == {
        "no_rejected_output": zero,
        "empty_rejected": zero,
        "rejected_equals_chosen": {"kept": 1, "dropped": 0},
        "rejected_same_molecule": zero,
    }
    assert d["caption2smiles"]["rules"] == {
        "no_rejected_output": zero,
        "empty_rejected": {"kept": 0, "dropped": 1},
        "rejected_equals_chosen": zero,
        "rejected_same_molecule": {"kept": 1, "dropped": 0},
    }
    rows = _rows(Path(result["output_dir"]) / "data/train-00000-of-00001.parquet")
    assert [(r["id"], r["rejected"]) for r in rows] == [
        ("1:smiles2caption", "methanol"),
        ("6:smiles2caption", "benzene"),
        ("7:smiles2caption", "an amine"),
        ("1:caption2smiles", "CO"),
        ("6:caption2smiles", "C1=CC=CC=C1"),
    ]
    card = (Path(result["output_dir"]) / "README.md").read_text()
    assert "| train | caption2smiles | `rejected_same_molecule` | 1 | 0 |" in card
    assert "| train | caption2smiles | `empty_rejected` | 0 | 1 |" in card
    assert "**kept**, as the authors kept every row" in card


def test_bad_sources_fail_in_one_line_before_anything_is_written(tmp_path: Path) -> None:
    pairs = [{"cid": "1", "smiles": "CCO", "text": "ethanol"}]
    preds = {d: [{"src": "x", "out": "y"}] for d in DIRECTIONS}
    recipe = _file_recipe(tmp_path, pairs, preds)
    out = tmp_path / "never"
    cases = [
        (["splits.train.source.molecule_column=molecule"], "no column 'molecule' (molecule_column)"),
        (["negatives.caption2smiles.output_column=output"], "no column 'output'"),
        (["splits.train.source.path=missing.jsonl"], "source file not found"),
        (["splits.train.source={type: hub, path: nobody/nothing-here, split: train}"], "not reachable"),
        (["splits.train.source={type: hub, path: " + str(RECIPES) + ", split: nope}"], "split 'nope'"),
        (["negatives.smiles2caption={model: nobody/no-model}"], "not reachable"),
    ]
    for overrides, message in cases:
        with pytest.raises(DataError) as err:
            build_from_config(recipe, overrides, output_dir=out, quiet=True)
        assert message in str(err.value) and "\n" not in str(err.value), (overrides, str(err.value))
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_eval_set_excludes_training_molecules_and_stores_fcd_stats(tmp_path: Path) -> None:
    from lmolt_hub.metrics.fcd import load_stats, stats_filename

    recipe = tmp_path / "eval.yaml"
    raw = yaml.safe_load((RECIPES / "default" / "eval.yaml").read_text())
    # draw from the split the default triples come from, so the exclusion has work to do
    raw.update(
        source={"type": "chebi20", "split": "test"},
        n=40,
        exclude=[{"recipe": str(RECIPES / "default" / "triples.yaml")}],
    )
    recipe.write_text(yaml.safe_dump(raw))
    result = build_from_config(recipe, output_dir=tmp_path / "eval", quiet=True)
    out = Path(result["output_dir"])
    c = result["summary"]["contamination"]
    assert (
        c["molecules_excluded"] == 360
        and c["candidates_removed_as_seen"] == 360
        and c["overlap_after_exclusion"] == 0
    )
    rows = _rows(out / "data/test-00000-of-00001.parquet")
    assert len(rows) == 40 and len({r["inchikey"] for r in rows}) == 40
    triples = build_from_config(RECIPES / "default" / "triples.yaml", output_dir=tmp_path / "t", quiet=True)
    seen = {
        inchikey(r["molecule"])
        for s in ("train", "validation")
        for r in _rows(Path(triples["output_dir"]) / f"data/{s}-00000-of-00001.parquet")
    }
    assert not seen & {r["inchikey"] for r in rows}
    stats = load_stats(out / "fcd_stats" / stats_filename([r["molecule"] for r in rows], "fcd_1.1"))
    assert stats.n == 40
    assert "candidates_removed_as_seen | 360" in (out / "README.md").read_text()
    with pytest.raises(DataError, match="allow_fewer"):
        build_from_config(recipe, ["n=5000", "fcd_stats=false"], output_dir=tmp_path / "no", quiet=True)


def test_eval_set_keeps_one_seeded_caption_per_molecule(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "extra.jsonl",
        [{"molecule": "CCO", "caption": f"ethanol caption {i}"} for i in range(6)]
        + [
            {"molecule": "c1ccccc1", "caption": "benzene"},
            {"molecule": "C1=CC=CC=C1", "caption": "benzene, Kekulé"},
        ],
    )
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {"kind": "eval", "source": {"type": "file", "path": str(src)}, "n": None, "fcd_stats": False}
        )
    )
    picked = set()
    for seed in range(4):
        result = build_from_config(recipe, [f"seed={seed}"], output_dir=tmp_path / f"s{seed}", quiet=True)
        rows = _rows(Path(result["output_dir"]) / "data/test-00000-of-00001.parquet")
        assert len(rows) == 2 and result["summary"]["splits"]["test"]["drops"] == {"duplicate_inchikey": 6}
        picked.add(next(r["caption"] for r in rows if r["molecule"] == "CCO"))
    assert len(picked) > 1  # the seed, not the file order, picks the caption
    # caption_choice: first keeps the first caption in file order, as the authors did, for any seed
    for seed in range(3):
        over = [f"seed={seed}", "caption_choice=first"]
        result = build_from_config(recipe, over, output_dir=tmp_path / f"f{seed}", quiet=True)
        rows = _rows(Path(result["output_dir"]) / "data/test-00000-of-00001.parquet")
        assert {r["caption"] for r in rows} == {"ethanol caption 0", "benzene"}
    assert "one caption per molecule (first)" in (Path(result["output_dir"]) / "README.md").read_text()


def _tiny_t5(path: Path) -> Path:
    from lmolt_hub.tiny import save_tiny_t5

    return save_tiny_t5(path)


def test_model_negatives_resume_after_a_crash_without_regenerating(
    tiny_llama_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from lmolt_hub.generation import HFBackend

    gen = GenerationConfig(batch_size=2, max_new_tokens=3, cache_dir=str(tmp_path / "cache"))
    sources = ["CCO", "c1ccccc1", "CCN", "CC(=O)O", "CCCC", "O=C=O"]

    def make(cache: Path) -> ModelRejecter:
        settings = GenerationConfig(**{**gen.__dict__, "cache_dir": str(cache)})
        return ModelRejecter("smiles2caption", RejectedConfig(model=str(tiny_llama_dir)), settings, tmp_path)

    fresh = make(tmp_path / "fresh")
    reference = fresh.outputs(sources)
    assert fresh.info["architecture"] == "causal"

    crashing = make(tmp_path / "cache")
    real, calls = HFBackend._generate_batch, []  # one padded batch of the generation engine

    def crash_on_second(backend, texts, *args, **kwargs):
        calls.append(texts)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real(backend, texts, *args, **kwargs)

    monkeypatch.setattr(HFBackend, "_generate_batch", crash_on_second)
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.outputs(sources)
    resumed = make(tmp_path / "cache")
    calls2: list[list[str]] = []
    monkeypatch.setattr(
        HFBackend,
        "_generate_batch",
        lambda backend, texts, *a, **k: calls2.append(texts) or real(backend, texts, *a, **k),
    )
    assert resumed.outputs(sources) == reference
    assert len(calls2) == 2 and calls[0] not in calls2  # 3 batches: 1 cached, 2 generated
    assert resumed.stats == {"generated_batches": 2, "cached_batches": 1}
    assert all(
        text.startswith("Below is an instruction") for batch in calls2 for text in batch
    )  # causal: prompts


def test_seq2seq_negatives_read_the_raw_source(tmp_path: Path, monkeypatch) -> None:
    from lmolt_hub.generation import HFBackend

    model = _tiny_t5(tmp_path / "t5")
    rej = ModelRejecter(
        "caption2smiles",
        RejectedConfig(model=str(model)),
        GenerationConfig(batch_size=4, max_new_tokens=4, cache_dir=str(tmp_path / "c")),
        tmp_path,
    )
    seen = []
    real = HFBackend._generate_batch  # one padded batch of the generation engine
    monkeypatch.setattr(
        HFBackend,
        "_generate_batch",
        lambda backend, texts, *a, **k: seen.extend(texts) or real(backend, texts, *a, **k),
    )
    outputs = rej.outputs(["The molecule is ethanol.", "The molecule is benzene."])
    assert rej.info["architecture"] == "seq2seq" and rej.info["input"] == "source"
    assert sorted(seen) == ["The molecule is benzene.", "The molecule is ethanol."]
    assert len(outputs) == 2 and all(isinstance(o, str) for o in outputs)


def test_exclusion_by_a_built_dataset_matches_exclusion_by_recipe(
    default_triples: dict, tmp_path: Path
) -> None:
    recipe = tmp_path / "eval.yaml"
    recipe.write_text(yaml.safe_dump({
        "kind": "eval", "source": {"type": "chebi20", "split": "test"}, "n": 10, "fcd_stats": False,
        "exclude": [{"dataset": default_triples["output_dir"]}],
    }))  # fmt: skip
    c = build_from_config(recipe, output_dir=tmp_path / "ev", quiet=True)["summary"]["contamination"]
    # the built triples hold fewer molecules than were sampled (some rows lost both directions' triples)
    assert 0 < c["candidates_removed_as_seen"] == c["molecules_excluded"] <= 360


def test_output_folder_that_is_not_a_build_is_never_replaced(tmp_path: Path) -> None:
    precious = tmp_path / "mine"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not an earlier lmolt build"):
        build_from_config(RECIPES / "default" / "triples.yaml", output_dir=precious, quiet=True)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    pairs = [
        {"cid": "1", "smiles": "CCO", "text": "ethanol"},
        {"cid": "1", "smiles": "CCN", "text": "ethylamine"},
    ]
    recipe = _file_recipe(tmp_path, pairs, {d: [{"src": "x", "out": "y"}] for d in DIRECTIONS})
    with pytest.raises(DataError, match="duplicate values"):
        build_from_config(recipe, output_dir=tmp_path / "out", quiet=True)


def test_one_direction_needs_one_generator(tmp_path: Path) -> None:
    raw = yaml.safe_load((RECIPES / "default" / "triples.yaml").read_text())
    raw.update(
        directions=["caption2smiles"], negatives={"caption2smiles": {"predictions": "bundled:molt5-base"}}
    )
    raw["splits"]["train"]["limit"] = 20
    recipe = tmp_path / "c2s.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    out = Path(build_from_config(recipe, output_dir=tmp_path / "out", quiet=True)["output_dir"])
    rows = _rows(out / "data/train-00000-of-00001.parquet")
    assert rows and {r["direction"] for r in rows} == {"caption2smiles"}
    assert "molt5-base-caption2smiles" in (out / "README.md").read_text()


def test_cli_check_config_validates_sources_without_building(tmp_path: Path, capsys) -> None:
    from lmolt_hub.cli import main

    assert main(["data", "check", "--config", str(RECIPES / "default" / "eval.yaml")]) == 0
    report = json.loads(capsys.readouterr().out.rsplit("ok", 1)[0])
    assert report["source"]["rows"] == 3301 and report["exclude"][0]["molecules"] == 360
