"""formats.direction: one Direction value, from which every other direction table derives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lmolt_hub.formats.direction import DIRECTION_NAMES, Direction, is_direction

SRC = Path(__file__).resolve().parents[2] / "src" / "lmolt_hub"


def test_names_aliases_and_columns():
    assert DIRECTION_NAMES == ("smiles2caption", "caption2smiles")
    m2l, l2m = Direction.SMILES2CAPTION, Direction.CAPTION2SMILES
    for alias in ("smiles2caption", "M->L", "mol2text"):
        assert Direction.parse(alias) is m2l
    for alias in ("caption2smiles", "L->M", "text2mol"):
        assert Direction.parse(alias) is l2m
    with pytest.raises(ValueError, match="unknown direction 'text2smiles'; expected one of smiles2caption"):
        Direction.parse("text2smiles")
    assert (m2l.source_column, m2l.target_column, l2m.source_column) == ("molecule", "caption", "caption")
    assert m2l.source_target("CCO", "ethanol") == ("CCO", "ethanol")
    assert l2m.source_target("CCO", "ethanol") == ("ethanol", "CCO")
    assert l2m.molecule_out and not m2l.molecule_out and m2l.other is l2m and l2m.other is m2l
    assert m2l.tsv_header[0] == "SMILES" and l2m.tsv_header == ("description", "ground truth", "output")
    assert "fcd" in l2m.metrics and "meteor" in m2l.metrics and not set(l2m.metrics) & set(m2l.metrics)
    assert m2l.label == "M->L (smiles2caption)"


def test_a_direction_is_stored_as_its_plain_name():
    d = Direction.CAPTION2SMILES
    assert d == "caption2smiles" and f"{d}" == "caption2smiles" and {"caption2smiles": 1}[d] == 1
    assert json.dumps({d: [d]}) == '{"caption2smiles": ["caption2smiles"]}'
    assert is_direction("caption2smiles") and not is_direction("L->M") and not is_direction(None)


def test_every_old_table_derives_from_direction():
    from lmolt_hub import metrics, prompts
    from lmolt_hub.formats import results
    from lmolt_hub.formats.predictions import SOURCE_COLUMN
    from lmolt_hub.leaderboard.records import PAPER_DIRECTIONS

    assert prompts.DIRECTIONS is DIRECTION_NAMES and metrics.DIRECTIONS is DIRECTION_NAMES
    assert results.DIRECTION_NAMES is DIRECTION_NAMES
    assert prompts.check_direction("smiles2caption") is Direction.SMILES2CAPTION
    with pytest.raises(ValueError, match="unknown direction 'M->L'"):
        prompts.check_direction("M->L")  # stored data use canonical names only
    assert {d: tuple(m) for d, m in metrics.TABLE_METRICS.items()} == {d.value: d.metrics for d in Direction}
    assert {d: h[0] for d, h in results.TSV_HEADERS.items()} == SOURCE_COLUMN
    assert PAPER_DIRECTIONS == {"mol2text": "smiles2caption", "text2mol": "caption2smiles"}
    assert {metrics.METRIC_INFO[k]["table"] for k in Direction.CAPTION2SMILES.metrics} == {"L->M"}


def test_no_other_definition_of_the_direction_tuple_in_src():
    """The tuple and the paper's table keys are spelled out only in formats/direction.py."""
    tuple_def = re.compile(
        r"""[([]\s*["'](smiles2caption|caption2smiles)["']\s*,\s*["'](caption2smiles|smiles2caption)"""
    )
    paper = re.compile(r"""["'](mol2text|text2mol)["']""")
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if p.name != "direction.py" and (tuple_def.search(p.read_text()) or paper.search(p.read_text()))
    ]
    assert offenders == []
