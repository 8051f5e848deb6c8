"""formats.triples: the one unpairing, used by the data stage, training and the test data."""

from __future__ import annotations

import pytest

from lmolt_hub.formats.triples import KTO_COLUMNS, TRIPLE_COLUMNS, unpair, unpair_rows

TRIPLES = [
    {"id": "a", "direction": "smiles2caption", "prompt": "p1", "chosen": "good1", "rejected": "bad1"},
    {"id": "b", "direction": "caption2smiles", "prompt": "p2", "chosen": "good2", "rejected": "bad2"},
]


def test_unpair_interleaves_chosen_true_then_rejected_false():
    rows = unpair_rows(TRIPLES)
    assert [tuple(r) for r in rows] == [KTO_COLUMNS] * 4  # contract columns, contract order
    assert [(r["id"], r["prompt"], r["completion"], r["label"]) for r in rows] == [
        ("a:chosen", "p1", "good1", True),
        ("a:rejected", "p1", "bad1", False),
        ("b:chosen", "p2", "good2", True),
        ("b:rejected", "p2", "bad2", False),
    ]
    assert [r["direction"] for r in rows] == ["smiles2caption"] * 2 + ["caption2smiles"] * 2
    assert unpair_rows([]) == []


def test_unpair_carries_only_what_the_triples_have_and_refuses_non_triples():
    cols = unpair({"prompt": ["p"], "chosen": ["c"], "rejected": ["r"]})
    assert cols == {"prompt": ["p", "p"], "completion": ["c", "r"], "label": [True, False]}
    with pytest.raises(ValueError, match=r"missing \['rejected'\]"):
        unpair({"prompt": ["p"], "chosen": ["c"]})
    assert set(KTO_COLUMNS) - set(TRIPLE_COLUMNS) == {"completion", "label"}


def test_every_stage_unpairs_the_same_way():
    import datasets

    from lmolt_hub.data import triples as data_triples
    from lmolt_hub.training import datasets as tdata

    from helpers.demo_triples import to_kto

    ds = datasets.Dataset.from_list(TRIPLES)
    by_training = tdata.unpair_triples(ds)
    by_helpers = to_kto({"train": ds})["train"]
    expect = unpair_rows(TRIPLES)
    assert by_helpers.to_list() == expect
    assert by_training.select_columns(["prompt", "completion", "label"]).to_list() == [
        {k: r[k] for k in ("prompt", "completion", "label")} for r in expect
    ]
    assert data_triples.KTO_COLUMNS is KTO_COLUMNS and tdata.KTO_COLUMNS is KTO_COLUMNS
    assert tdata.TRIPLE_COLUMNS is TRIPLE_COLUMNS is data_triples.TRIPLE_COLUMNS
