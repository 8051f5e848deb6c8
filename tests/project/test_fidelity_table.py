"""docs/fidelity.md says what the code does: its key values are read back from the recipes and code.

Every backticked ``key: value`` in a row's "lmolt-hub default" (and, where listed, "variants") cell
is parsed as YAML and must equal that key in one of the row's sources (recipes, code defaults);
each source's required keys must appear with the source's value. So changing a recipe (say
``normalize: true``, another dataset revision, another loss) fails here until the table follows.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "fidelity.md"
MEDITRON = ROOT / "recipes" / "meditron-7b"
DATA = ROOT / "recipes" / "data"
ROWS = (
    "Prompt",
    "Token boundary",
    "DPO loss",
    "CPO schedule",
    "SFT",
    "KTO format",
    "Checkpoint selection",
    "Negatives",
    "Kept rows",
    "TIES/SLERP ratio",
    "Max new tokens",
    "Post-processing",
    "Eval set construction",
    "FCD convention",
    "Dataset revisions",
)
COLUMNS = ("Decision", "Paper's text", "Authors' code", "lmolt-hub default", "lmolt-hub variants")
SNIPPET = re.compile(r"`([A-Za-z_][\w.+\-]*): ([^`]+)`")


def _yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _table(first: str = "| Decision |", columns: tuple[str, ...] = COLUMNS) -> dict[str, dict[str, str]]:
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    assert tuple(header) == columns
    rows: dict[str, dict[str, str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == len(columns), f"a cell holds ' | ' or a column is missing: {line[:80]}"
        rows[cells[0]] = dict(zip(columns, cells, strict=True))
    return rows


def _claims(cell: str) -> list[tuple[str, Any]]:
    return [(k, yaml.safe_load(v)) for k, v in SNIPPET.findall(cell)]


def _check(cell: str, sources: list[dict[str, Any]], required: list[str], row: str) -> None:
    """Each claim matches a source; each source's required keys are claimed with its value."""
    claims = _claims(cell)
    for key, value in claims:
        known = [s[key] for s in sources if key in s]
        assert known, f"{row}: `{key}` is not a key of this row's recipes/code"
        assert value in known, f"{row}: the table says `{key}: {value!r}`, the code has {known!r}"
    for source in sources:
        for key in required:
            if key in source:
                assert (key, source[key]) in claims, f"{row}: missing `{key}: {source[key]!r}`"


@pytest.fixture(scope="module")
def table() -> dict[str, dict[str, str]]:
    return _table()


def test_table_has_one_row_per_decision_and_readme_links_it(table) -> None:
    assert tuple(table) == ROWS
    assert all(c and c != "-" for r in table.values() for k, c in r.items() if k != "lmolt-hub variants")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    contents = readme.split("## Contents", 1)[1].split("\n## ", 1)[0]
    assert "(docs/fidelity.md)" in contents
    gpu = readme.split("## The paper on real GPUs", 1)[1].split("```", 1)[0]
    assert "docs/fidelity.md" in gpu
    text = TABLE.read_text(encoding="utf-8")
    unmatched = text.split("## What no one can match", 1)[1]
    assert "`#`" in unmatched and "unseen" in unmatched and "LPM24" in unmatched


def test_prompt_and_token_boundary(table) -> None:
    from lmolt_hub.prompts import (
        DIRECTIONS,
        PROMPT_FORMATS,
        TEMPLATE_VERSION,
        build_prompt,
        join_completion,
        resolve_prompt_format,
    )

    marker = "### Response:"
    prompts = [build_prompt(d, "CCO") for d in DIRECTIONS]
    ends = {marker if p.endswith(marker) else p[-len(marker) - 1 :] for p in prompts}
    code = {
        "template_version": TEMPLATE_VERSION,
        "prompt_format": resolve_prompt_format("auto", seq2seq=False),
        "prompt_end": ends.pop() if len(ends) == 1 else None,
    }
    _check(table["Prompt"]["lmolt-hub default"], [code], list(code), "Prompt")
    for fmt in set(PROMPT_FORMATS) - {"auto", "paper", code["prompt_format"]}:
        assert f"`{fmt}`" in table["Prompt"]["lmolt-hub variants"], fmt
    assert "come up **with**" in table["Prompt"]["Paper's text"]  # Appendix C's wording, not the cards'
    boundary = {"completion_prefix": join_completion("CCO")[: -len("CCO")]}
    _check(table["Token boundary"]["lmolt-hub default"], [boundary], list(boundary), "Token boundary")
    assert "tests/test_prompt_boundary.py" in table["Token boundary"]["lmolt-hub default"]
    assert (ROOT / "tests/test_prompt_boundary.py").is_file()


def _chain_config(fusion_method: str) -> Path:
    chain = MEDITRON / fusion_method / "chain.yaml"
    return (chain.parent / _yaml(chain)["train"]["config"]).resolve()


def test_training_rows_match_the_meditron_recipes(table) -> None:
    from lmolt_hub.training.config import ScriptArguments

    defaults = {f.name: f.default for f in dataclasses.fields(ScriptArguments) if not callable(f.default)}
    dpo = _yaml(MEDITRON / "dpo/qlora.yaml")
    chains = {_chain_config(c) for c in ("ties-dpo", "slerp-dpo")}
    assert len(chains) == 1, "the two DPO chains train with different recipes"
    chain_dpo = _chain_config("ties-dpo")
    cell = table["DPO loss"]["lmolt-hub default"]
    assert f"`{chain_dpo.relative_to(ROOT)}`" in cell and "`recipes/meditron-7b/dpo/qlora.yaml`" in cell
    _check(cell, [dpo, _yaml(chain_dpo)], ["loss_type", "beta"], "DPO loss")

    sft, sft_authors = _yaml(MEDITRON / "sft/qlora.yaml"), _yaml(MEDITRON / "sft/authors.yaml")
    keys = ["learning_rate", "lr_scheduler_type", "optim", "completion_only_loss", "append_eos", "use_dora"]
    _check(table["SFT"]["lmolt-hub default"], [{"use_dora": False, **defaults, **sft}], keys, "SFT")
    keys += ["weight_decay", "warmup_steps", "fp16"]
    _check(table["SFT"]["lmolt-hub variants"], [{**defaults, **sft_authors}], keys, "SFT variants")

    authors_cpo, fig5 = _yaml(MEDITRON / "cpo/authors.yaml"), _yaml(MEDITRON / "cpo/qlora.yaml")
    assert {_chain_config(c) for c in ("ties-cpo", "slerp-cpo")} == {MEDITRON / "cpo/authors.yaml"}
    keys = ["num_train_epochs", "lr_scheduler_type", "warmup_steps", "max_grad_norm", "weight_decay",
            "learning_rate", "beta"]  # fmt: skip
    _check(table["CPO schedule"]["lmolt-hub default"], [authors_cpo], keys, "CPO schedule")
    _check(table["CPO schedule"]["lmolt-hub variants"], [fig5], keys[:2] + ["max_grad_norm"], "CPO variants")
    assert "`recipes/meditron-7b/cpo/authors-reverse.yaml`" in table["CPO schedule"]["lmolt-hub variants"]

    kto = {**defaults, **_yaml(MEDITRON / "kto/qlora.yaml")}
    keys = ["dataset_config", "per_device_train_batch_size", "gradient_accumulation_steps"]
    _check(table["KTO format"]["lmolt-hub default"], [kto], keys, "KTO format")

    recipes = [
        p for method in ("sft", "dpo", "cpo", "kto") for p in sorted((MEDITRON / method).glob("*.yaml"))
    ]
    # a recipe named in the variants cell is checked there (the reverse CPO keeps its last epoch)
    variants = [
        p
        for p in recipes
        if f"`{p.relative_to(ROOT)}`" in table["Checkpoint selection"]["lmolt-hub variants"]
    ]
    keys = ["eval_strategy", "save_strategy", "load_best_model_at_end", "metric_for_best_model"]
    keys.append("greater_is_better")
    _check(
        table["Checkpoint selection"]["lmolt-hub default"],
        [_yaml(p) for p in recipes if p not in variants],
        keys,
        "Checkpoints",
    )
    assert [p.name for p in variants] == ["authors-reverse.yaml"]
    _check(table["Checkpoint selection"]["lmolt-hub variants"], [_yaml(p) for p in variants],
           ["load_best_model_at_end"], "Checkpoint variants")  # fmt: skip


def test_data_rows_match_the_data_recipes_and_defaults(table) -> None:
    from lmolt_hub.data.config import EvalRecipe, GenerationConfig, NegativesConfig

    triples, ev = _yaml(DATA / "triples.yaml"), _yaml(DATA / "eval_3k.yaml")
    gen_keys = ["max_new_tokens", "num_beams", "dtype", "input", "max_input_length", "device"]
    sources = [triples["negatives"]["generation"], dataclasses.asdict(GenerationConfig())]
    _check(table["Negatives"]["lmolt-hub default"], sources, gen_keys, "Negatives")

    neg_default = dataclasses.asdict(NegativesConfig())
    sources = [{k: triples["negatives"][k] for k in ("drop_identical", "drop_empty")}, neg_default]
    _check(table["Kept rows"]["lmolt-hub default"], sources, ["drop_identical", "drop_empty"], "Kept rows")
    flipped = {"drop_identical": not neg_default["drop_identical"]}
    _check(table["Kept rows"]["lmolt-hub variants"], [flipped], ["drop_identical"], "Kept rows variants")

    eval_default = {f.name: f.default for f in dataclasses.fields(EvalRecipe)}
    keys = ["n", "seed", "caption_choice", "exclude"]
    source = {"source.split": ev["source"]["split"], **ev}
    _check(table["Eval set construction"]["lmolt-hub default"], [source], keys + ["source.split"], "Eval set")
    other = {"first": "seeded", "seeded": "first"}[ev["caption_choice"]]
    _check(table["Eval set construction"]["lmolt-hub variants"], [{"caption_choice": other}], [], "Eval set")
    assert f"`caption_choice: {other}`" in table["Eval set construction"]["lmolt-hub variants"]

    from lmolt_hub.metrics.metric_config import MetricConfig

    fcd = [{"fcd_convention": ev["fcd_convention"]}, {"fcd_convention": eval_default["fcd_convention"]}]
    fcd.append({"fcd_convention": MetricConfig().fcd_convention})
    _check(table["FCD convention"]["lmolt-hub default"], fcd, ["fcd_convention"], "FCD convention")

    revisions = [
        {"LPM-24_train": triples["splits"][s]["source"]["revision"]} for s in ("train", "validation")
    ] + [{"LPM-24_train-extra": ev["source"]["revision"]}]
    _check(
        table["Dataset revisions"]["lmolt-hub default"],
        revisions,
        ["LPM-24_train", "LPM-24_train-extra"],
        "Revisions",
    )


def _merge_facts(ties: dict[str, Any], slerp: dict[str, Any]) -> dict[str, Any]:
    return {
        "ties.weights": [m["parameters"]["weight"] for m in ties["models"]],
        "ties.density": sorted({m["parameters"]["density"] for m in ties["models"]}),
        "ties.normalize": ties["parameters"]["normalize"],
        "slerp.t": slerp["parameters"]["t"],
    }


def test_merge_ratio_row_matches_both_merge_recipe_sets(table) -> None:
    sources = []
    for family in ("meditron-7b", "tiny"):
        ties = _yaml(ROOT / "recipes" / family / "merges/ties.yaml")
        slerp = _yaml(ROOT / "recipes" / family / "merges/slerp.yaml")
        assert "caption2smiles" in ties["models"][0]["model"]  # weights are listed L->M first
        assert "caption2smiles" in slerp["base_model"]  # t moves away from the L->M model
        sources.append(_merge_facts(ties, slerp))
    row = table["TIES/SLERP ratio"]
    _check(row["lmolt-hub default"], sources, list(sources[0]), "TIES/SLERP ratio")
    exact = _merge_facts(_yaml(MEDITRON / "merges/ties-19to1.yaml"), _yaml(MEDITRON / "merges/slerp.yaml"))
    _check(row["lmolt-hub variants"], [exact], ["ties.normalize"], "TIES/SLERP variants")
    assert "§4.3" in row["Paper's text"] and "§3.3" in row["Paper's text"]


PAPER_COLUMNS = ("Paper row", "lmolt-hub model", "recipe", "lmolt-hub prompt format", "authors' training layout",
                 "authors' scoring layout (the published numbers)")  # fmt: skip


def _backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_paper_rows_name_their_recipe_and_prompt_formats() -> None:
    """The paper-rows table: each row's model and recipe are the README zoo's, the recipe is the one the
    zoo name is trained with, and every prompt format it names is one the harness offers."""
    from lmolt_hub.prompts import PROMPT_FORMATS

    rows = _table("| Paper row |", PAPER_COLUMNS)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    zoo = {}
    for line in readme.split("| name | recipe |", 1)[1].split("\n\n", 1)[0].splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[-1].split(" (")[0] != "–":
            zoo[cells[-1].split(" (")[0]] = (cells[0].strip("`"), cells[1].strip("`"))
    assert set(rows) == set(zoo) and len(rows) == 8
    for name, row in rows.items():
        model, recipe = _backticked(row["lmolt-hub model"])[0], _backticked(row["recipe"])[0]
        assert (model, recipe) == zoo[name], name
        path = ROOT / recipe
        data = _yaml(path)
        trained = data["train"] if path.name == "chain.yaml" else {"name": data["hub_name"]}
        assert trained["name"] == model, (name, trained["name"])
        for col in (
            "lmolt-hub prompt format",
            "authors' training layout",
            "authors' scoring layout (the published numbers)",
        ):
            fmts = [f for f in _backticked(row[col]) if not f.endswith(".py") and "/" not in f]
            assert all(f in PROMPT_FORMATS for f in fmts), (name, col, fmts)
        assert _backticked(row["lmolt-hub prompt format"]) == ["card"]
        if "CPO" in name:  # the CPO paper rows train with the authors' CPO (1 epoch, linear, clip 1.0)
            cpo = (path.parent / data["train"]["config"]).resolve() if path.name == "chain.yaml" else path
            assert cpo == MEDITRON / "cpo/authors.yaml", name
        if name != "Meditron-7B KTO":  # the authors' KTO scoring is not published
            assert "authors-inference" in _backticked(
                row["authors' scoring layout (the published numbers)"]
            ), name


def test_harness_rows_match_the_evaluation_code(table) -> None:
    import argparse

    from lmolt_hub.evaluation.cli import add_arguments
    from lmolt_hub.generation import GenerationParams, postprocess

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cli = {"max_new_tokens": parser.get_default("max_new_tokens")}
    params = dataclasses.asdict(GenerationParams())
    sources = [cli, params]
    _check(
        table["Max new tokens"]["lmolt-hub default"],
        sources,
        ["max_new_tokens", "do_sample"],
        "Max new tokens",
    )
    kept = postprocess("CC#N</s>", eos_tokens=("</s>",))
    cell = table["Post-processing"]["lmolt-hub default"]
    assert f'`postprocess("CC#N</s>")` returns `"{kept}"`' in cell
    assert ("keeps every `#`" in cell) == ("#" in kept)
