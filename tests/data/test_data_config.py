"""Data recipes: strict parsing, overrides, one-line errors, and the shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lmolt_hub.data import DataError, EvalRecipe, TriplesRecipe, load_recipe, parse_recipe, resolve_repo_id
from lmolt_hub.data.config import apply_overrides

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "data"
DEFAULT_TRIPLES = RECIPES / "default" / "triples.yaml"


def _raw(path: Path = DEFAULT_TRIPLES) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    "name", ["triples.yaml", "eval_3k.yaml", "default/triples.yaml", "default/eval.yaml"]
)
def test_shipped_recipes_parse(name: str) -> None:
    recipe = load_recipe(RECIPES / name)
    assert isinstance(recipe, TriplesRecipe if "triples" in name else EvalRecipe)


def test_paper_recipes_use_lpm24_and_paper_settings() -> None:
    triples = load_recipe(RECIPES / "triples.yaml")
    assert isinstance(triples, TriplesRecipe)
    assert {n: (s.source.path, s.source.split, s.fraction) for n, s in triples.splits.items()} == {
        "train": ("language-plus-molecules/LPM-24_train", "split_train", 0.1),
        "validation": ("language-plus-molecules/LPM-24_train", "split_valid", 0.1),
    }
    assert (
        triples.negatives.smiles2caption.model == "language-plus-molecules/molt5-large-smiles2caption-LPM24"
    )
    assert (
        triples.negatives.caption2smiles.model == "language-plus-molecules/molt5-large-caption2smiles-LPM24"
    )
    ev = load_recipe(RECIPES / "eval_3k.yaml")
    assert isinstance(ev, EvalRecipe)
    assert (ev.source.path, ev.source.split, ev.n) == (
        "language-plus-molecules/LPM-24_train-extra",
        "split_valid",
        3000,
    )
    assert [e.recipe for e in ev.exclude] == ["triples.yaml"] and ev.fcd_stats


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.update(sed=1), "unknown key 'recipe.sed'"),
        (lambda r: r["splits"]["train"].update(fracton=0.2), "unknown key 'recipe.splits.train.fracton'"),
        (
            lambda r: r["splits"]["train"]["source"].update(colum="x"),
            "unknown key 'recipe.splits.train.source.colum'",
        ),
        (
            lambda r: (
                r["negatives"]["generation"].update(beams=2)
                if "generation" in r["negatives"]
                else r["negatives"].update(generation={"beams": 2})
            ),
            "unknown key 'recipe.negatives.generation.beams'",
        ),
        (lambda r: r.update(kind="pairs"), "recipe.kind: 'pairs' is not one of"),
        (
            lambda r: r["splits"]["train"].update(fraction="ten"),
            "recipe.splits.train.fraction: expected float",
        ),
        (lambda r: r["splits"]["train"].update(fraction=1.5), "must be in (0, 1]"),
        (lambda r: r["splits"]["train"]["source"].update(split="train"), "splits 'test' and 'validation'"),
        (lambda r: r.pop("negatives"), "missing required key 'negatives'"),
        (
            lambda r: r["negatives"]["smiles2caption"].update(model="x/y"),
            "set exactly one of 'model' or 'predictions'",
        ),
        (lambda r: r.update(directions=["smiles2text"]), "'smiles2text' is not one of"),
        (lambda r: r["splits"].pop("train"), "a 'train' split is required"),
    ],
)
def test_bad_recipes_are_one_line_errors(mutate, message: str) -> None:
    raw = _raw()
    mutate(raw)
    with pytest.raises(DataError) as err:
        parse_recipe(raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_overrides_apply_and_are_checked(tmp_path: Path) -> None:
    recipe = load_recipe(DEFAULT_TRIPLES, ["splits.train.fraction=0.05", "seed=7", "splits.train.limit=10"])
    assert recipe.seed == 7 and recipe.splits["train"].fraction == 0.05 and recipe.splits["train"].limit == 10
    with pytest.raises(DataError, match="unknown key 'recipe.splits.train.sead'"):
        load_recipe(DEFAULT_TRIPLES, ["splits.train.sead=1"])
    with pytest.raises(DataError, match="expected dotted.key=value"):
        apply_overrides({}, ["seed"])
    with pytest.raises(DataError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_push_target() -> None:
    assert resolve_repo_id("org", "lmolt-triples") == "org/lmolt-triples"
    assert resolve_repo_id("org/custom", "lmolt-triples") == "org/custom"
    with pytest.raises(DataError, match="expected ORG or ORG/NAME"):
        resolve_repo_id("a/b/c", "x")


def test_cli_check_reports_bad_key_in_one_line(tmp_path: Path, capsys) -> None:
    from lmolt_hub.cli import main

    raw = _raw()
    raw["splits"]["train"]["fracton"] = 0.1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["data", "check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lmolt-hub data: error:") and "fracton" in err and "\n" not in err
