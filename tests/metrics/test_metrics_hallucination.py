"""Hallucination measures (paper section 3.4) with the tiny NLI cross-encoder built from config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmolt_hub.metrics import score
from lmolt_hub.metrics.hallucination import cross_win_rate, load_nli, nli_entailment, smiles_hallucination


@pytest.fixture(scope="module")
def tiny_nli_dir(tmp_path_factory):
    from lmolt_hub.tiny import save_tiny_nli

    return str(save_tiny_nli(tmp_path_factory.mktemp("tiny_nli")))


def test_smiles_hallucination_definition():
    preds = ["CCO", "CCCCCCCCCC", "C1CC", "c1ccccc1O", ""]
    refs = ["CCO", "CC", "C1CCC1", "c1ccccc1", "CCO"]
    h = smiles_hallucination(preds, refs)
    assert h["dlen"].tolist() == [0, 8, -2, 1, -3]
    assert h["chrf"][0] == pytest.approx(1.0) and 0 <= h["chrf"].min()
    # win = chrF > 0.3 and |dLen| < 5 and valid: long output, invalid ring, empty output all lose
    assert h["win"].tolist() == [True, False, False, True, False]


def test_score_with_hallucination_caption2smiles():
    s = score("caption2smiles", ["CCO", "CCCCCCCCCC"], ["OCC", "CC"], fcd=False, hallucination=True)
    assert set(s.hallucination) == {"win_rate", "mean_dlen", "mean_abs_dlen", "mean_chrf"}
    assert s.hallucination["mean_dlen"] == pytest.approx(4.0)
    assert [set(r) >= {"dlen", "chrf", "win"} for r in s.per_sample] == [True, True]


def test_nli_tiny_model_batched_and_labels(tiny_nli_dir):
    model, _, entail, id2label = load_nli(tiny_nli_dir)
    assert id2label == {0: "contradiction", 1: "entailment", 2: "neutral"} and entail == 1
    preds = ["The molecule is an acid.", "x", "The molecule is a long steroid with many rings and groups."]
    refs = ["The molecule is an acid.", "The molecule is a base.", "A sterol."]
    one = nli_entailment(preds, refs, tiny_nli_dir, batch_size=1)
    many = nli_entailment(preds, refs, tiny_nli_dir, batch_size=8)
    np.testing.assert_allclose(one["entailment"], many["entailment"], atol=1e-5)
    assert all(0.0 < p < 1.0 for p in many["entailment"])
    assert many["win"].tolist() == [lab == "entailment" for lab in many["label"]]


def test_nli_win_follows_entailment_label(tiny_nli_dir):
    model, *_ = load_nli(tiny_nli_dir)
    with torch.no_grad():  # push the classifier towards "entailment" to exercise the win path
        old = model.classifier.bias.clone()
        model.classifier.bias.copy_(torch.tensor([0.0, 50.0, 0.0]))
    try:
        s = score("smiles2caption", ["An acid.", "[CLS] A base."], ["An acid.", "A base here."], hallucination=True,
                  nli_model=tiny_nli_dir)  # fmt: skip
    finally:
        with torch.no_grad():
            model.classifier.bias.copy_(old)
    assert s.hallucination["win_rate"] == 1.0 and s.hallucination["mean_entailment"] > 0.99
    assert [r["dlen"] for r in s.per_sample] == [0, -1]  # WordPiece tokens; "[CLS] " stripped
    assert s.options["nli_model"] == tiny_nli_dir


def test_nli_model_without_entailment_label_is_rejected(tmp_path):
    from transformers import AutoConfig

    from lmolt_hub.tiny import save_tiny_nli

    path = save_tiny_nli(tmp_path / "m")
    cfg = AutoConfig.from_pretrained(path)
    cfg.id2label, cfg.label2id = {0: "a", 1: "b", 2: "c"}, {"a": 0, "b": 1, "c": 2}
    cfg.save_pretrained(path)
    with pytest.raises(ValueError, match="entailment"):
        load_nli(str(path))


def test_cross_win_rate():
    a = [{"win": w} for w in [True, True, False, False]]
    b = [{"win": w} for w in [True, False, True, False]]
    r = cross_win_rate(a, b)
    assert r == {"a_wins": 0.25, "b_wins": 0.25, "ties": 0.5, "a_win_rate": 0.5}
    assert cross_win_rate(a, [{"win": False}] * 4)["a_win_rate"] == 0.75
    with pytest.raises(ValueError, match="same rows"):
        cross_win_rate(a, b[:2])
