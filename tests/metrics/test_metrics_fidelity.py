"""Fidelity: our metrics equal what the official MolT5 / L+M-24 scripts compute on real MolT5 outputs.

OFFICIAL_SCORES.json (bundled beside the prediction files) holds the official scripts' values; every
value must match to 1e-6, FCD (fcd 1.1 convention) to 1%.
"""

from __future__ import annotations

import json

import pytest

from lmolt_hub.formats.predictions import read_predictions
from lmolt_hub.metrics import TABLE_METRICS, score
from lmolt_hub.metrics.molecules import corpus_from_stats
from lmolt_hub.resources import MOLT5_PREDICTIONS_DIR, molt5_predictions

OFFICIAL = json.loads((MOLT5_PREDICTIONS_DIR / "OFFICIAL_SCORES.json").read_text())["files"]
SIZES = ["base", "large"]


@pytest.fixture(scope="module")
def molecule_scores():
    out = {}
    for size in SIZES:
        rows = read_predictions(molt5_predictions(size, "caption2smiles"), "caption2smiles")
        out[size] = score("caption2smiles", rows.predictions, rows.references, fcd=False)
    return out


@pytest.mark.parametrize("size", SIZES)
def test_caption_metrics_equal_official(size):
    path = molt5_predictions(size, "smiles2caption")
    rows = read_predictions(path, "smiles2caption")
    assert rows.n_rows == 3300
    s = score("smiles2caption", rows.predictions, rows.references)
    official = OFFICIAL[path.name]
    assert set(s.corpus) == set(TABLE_METRICS["smiles2caption"])
    for metric, value in s.corpus.items():
        assert value == pytest.approx(official[metric], abs=1e-6), metric
    assert len(s.per_sample) == 3300
    # corpus means are the means of the per-row values kept for plots
    assert sum(r["meteor"] for r in s.per_sample) / 3300 == pytest.approx(s.corpus["meteor"], abs=1e-12)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("convention", ["lpm24", "molt5"])
def test_molecule_metrics_equal_official(molecule_scores, size, convention):
    name = molt5_predictions(size, "caption2smiles").name
    official = OFFICIAL[name]
    corpus = corpus_from_stats(molecule_scores[size].stats, convention)
    shared = ["bleu", "exact_match", "levenshtein", "validity"]
    for metric in shared:
        assert corpus[metric] == pytest.approx(official[metric], abs=1e-6), metric
    for metric in ["maccs_fts", "rdk_fts", "morgan_fts"]:
        assert corpus[metric] == pytest.approx(official[f"{metric}.{convention}"], abs=1e-6), metric
    if convention == "lpm24":
        assert corpus["uniqueness"] == pytest.approx(official["uniqueness.lpm24"], abs=1e-6)
        # the default convention is what score() reports
        assert molecule_scores[size].corpus == corpus


def test_molt5_convention_through_score():
    rows = read_predictions(molt5_predictions("base", "caption2smiles"), "caption2smiles")
    s = score(
        "caption2smiles",
        rows.predictions[:400],
        rows.references[:400],
        fcd=False,
        fingerprint_convention="molt5",
    )
    lpm = corpus_from_stats(s.stats, "lpm24")
    valid = sum(r["maccs_fts"] is not None for r in s.per_sample)
    assert valid < 400  # the base model has invalid outputs in these rows
    # molt5 averages over valid outputs, lpm24 over all rows with invalid = 0
    assert s.corpus["maccs_fts"] == pytest.approx(lpm["maccs_fts"] * 400 / valid, rel=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_fcd_fcd11_convention_within_one_percent(size):
    """ChemNet from the fcd wheel, fcd 1.1 encoding: within 1% of the official fcd==1.1 value.

    The two files share their references, so reference statistics are computed once (memory cache).
    """
    path = molt5_predictions(size, "caption2smiles")
    rows = read_predictions(path, "caption2smiles")
    from lmolt_hub.metrics.fcd import fcd_score

    value = fcd_score(rows.predictions, rows.references, convention="fcd_1.1")
    assert value == pytest.approx(OFFICIAL[path.name]["fcd_1.1"], rel=0.01)


@pytest.mark.slow
def test_fcd_fcd12_convention_equals_official_fcd122():
    """fcd_1.2 pads to the longest SMILES (~1,100 characters here), so it is slow: run with -m slow."""
    path = molt5_predictions("large", "caption2smiles")
    rows = read_predictions(path, "caption2smiles")
    from lmolt_hub.metrics.fcd import fcd_score

    value = fcd_score(rows.predictions, rows.references, convention="fcd_1.2", cache_dir=False)
    assert value == pytest.approx(OFFICIAL[path.name]["fcd_1.2.2"], rel=1e-6)
