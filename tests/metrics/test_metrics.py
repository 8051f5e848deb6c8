"""Unit tests of lmolt_hub.metrics: definitions on small cases, bad input, io, bootstrap, FCD pieces,
evaluate modules, WordNet set-up."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from lmolt_hub.formats.predictions import PredictionFileError, read_predictions
from lmolt_hub.metrics import METRIC_INFO, METRICS_VERSION, TABLE_METRICS, score, text
from lmolt_hub.metrics import fcd as fcd_mod
from lmolt_hub.metrics.bootstrap import confidence_intervals

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- API contract


def test_metric_info_complete():
    assert METRICS_VERSION
    for direction, names in TABLE_METRICS.items():
        for name in names:
            info = METRIC_INFO[name]
            assert set(info) >= {"label", "direction", "higher_is_better", "table"}
            assert info["direction"] == direction
    assert METRIC_INFO["levenshtein"]["higher_is_better"] is False
    assert METRIC_INFO["fcd"]["higher_is_better"] is False


def test_unknown_direction_and_convention():
    with pytest.raises(ValueError, match="direction"):
        score("text2text", ["a"], ["b"])
    with pytest.raises(ValueError, match="fingerprint convention"):
        score("caption2smiles", ["CCO"], ["CCO"], fcd=False, fingerprint_convention="rdkit")


# ---------------------------------------------------------------- BLEU equals nltk


def test_bleu_from_stats_equals_nltk_corpus_bleu():
    from nltk.translate.bleu_score import corpus_bleu

    rng = random.Random(0)
    vocab = list("abcdefgh")
    for trial in range(30):
        n = rng.randint(1, 12)
        hyps = [[rng.choice(vocab) for _ in range(rng.randint(0, 9))] for _ in range(n)]
        refs = [[rng.choice(vocab) for _ in range(rng.randint(1, 9))] for _ in range(n)]
        summed = text.bleu_stats_matrix(hyps, refs).sum(axis=0)
        for weights in (text.BLEU2, text.BLEU4):
            ours = text.bleu_from_stats(summed, weights)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nltk warns about zero n-gram matches
                official = corpus_bleu([[r] for r in refs], hyps, weights=weights)
            assert ours == pytest.approx(official, abs=1e-12), (trial, weights)


def test_text_tokenisation_drops_special_tokens_and_cls_prefix():
    toks = text.wordpiece_tokens(["The [CLS] acid [SEP] x [PAD]"])[0]
    assert toks == ["the", "acid", "x"]
    assert text.strip_cls("[CLS] The molecule") == "The molecule"
    assert len(text.wordpiece_tokens([" ".join(["acid"] * 600)])[0]) == 512


def test_wordpiece_tokens_equal_transformers_bert_tokenizer_fast():
    """The official scripts tokenise with transformers' BertTokenizerFast; we call tokenizers directly."""
    from transformers import BertTokenizerFast

    from lmolt_hub.resources import SCIBERT_VOCAB, molt5_predictions

    hf = BertTokenizerFast.from_pretrained(str(SCIBERT_VOCAB.parent), do_lower_case=True)
    texts = [
        "The [CLS] acid [SEP] x [PAD] [MASK] [UNK] café Ω 中文 naïve \t tab",
        "",
        "  ",
        "2'-deoxy-α-D-ribose",
    ]
    with open(molt5_predictions("base", "smiles2caption"), encoding="utf-8") as f:
        texts += [line.split("\t")[1] for line in list(f)[1:400]]
    ours = text.wordpiece_tokens(texts, max_length=10_000)
    for t, mine in zip(texts, ours, strict=True):
        official = hf.tokenize(t, truncation=True, max_length=10_000, padding="max_length")
        assert mine == [x for x in official if x not in ("[PAD]", "[CLS]", "[SEP]")], t


def test_rouge_matches_rouge_score_library():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    preds = ["The molecule is a carboxylic acid.", "", "an acid", "Acid acid base the."]
    refs = ["The molecule is an amino acid anion.", "The molecule", "an acid", "the base acid"]
    ours = text.rouge_scores(preds, refs)
    for i, (p, r) in enumerate(zip(preds, refs, strict=True)):
        official = scorer.score(p, r)
        for k in ("rouge1", "rouge2", "rougeL"):
            assert ours[k][i] == pytest.approx(official[k].fmeasure, abs=1e-15)


# ---------------------------------------------------------------- molecules on small cases


def test_molecule_definitions_small():
    preds = ["OCC", "c1ccccc1", "not a smiles", "", "CC(=O)O"]
    refs = ["CCO", "c1ccccc1C", "CC", "CCN", "CC(=O)O"]
    s = score("caption2smiles", preds, refs, fcd=False)
    rows = s.per_sample
    assert [r["exact_match"] for r in rows] == [True, False, False, False, True]  # InChI, not string
    assert rows[2]["valid"] is False and rows[2]["maccs_fts"] is None
    # an empty output parses to an empty molecule: the official scripts count it valid, similarity 0
    assert rows[3]["valid"] is True and rows[3]["maccs_fts"] == 0.0
    assert s.corpus["validity"] == pytest.approx(4 / 5)
    assert s.corpus["exact_match"] == pytest.approx(2 / 5)
    assert s.corpus["levenshtein"] == pytest.approx(np.mean([r["levenshtein"] for r in rows]))
    assert s.corpus["uniqueness"] == 1.0
    molt5 = score("caption2smiles", preds, refs, fcd=False, fingerprint_convention="molt5").corpus
    assert molt5["maccs_fts"] > s.corpus["maccs_fts"]  # invalid rows dropped instead of scored 0


def test_uniqueness_counts_distinct_valid_strings():
    s = score("caption2smiles", ["CCO", "CCO", "OCC", "xx"], ["CCO"] * 4, fcd=False)
    assert s.corpus["uniqueness"] == pytest.approx(2 / 3)


# ---------------------------------------------------------------- bad input


def test_bad_input_in_score():
    with pytest.raises(ValueError, match="2 predictions but 3 references"):
        score("caption2smiles", ["C", "C"], ["C", "C", "C"], fcd=False)
    with pytest.raises(ValueError, match="reference 1"):
        score("smiles2caption", ["a", "b"], ["a", float("nan")])
    with pytest.raises(TypeError, match="prediction 0"):
        score("smiles2caption", [3], ["a"])
    # NaN / None predictions are empty outputs
    s = score("caption2smiles", [float("nan"), None], ["CCO", "CC"], fcd=False)
    assert s.corpus["exact_match"] == 0.0 and s.corpus["levenshtein"] == pytest.approx(2.5)
    t = score("smiles2caption", [None, "The molecule is an acid."], ["The molecule is an acid.", "An acid."])
    assert t.per_sample[0]["meteor"] == 0.0 and t.per_sample[0]["rougeL"] == 0.0


def test_long_and_invalid_smiles_are_scored_not_crashing():
    long_smiles = "C" * 10_000
    preds = [long_smiles, "C1CC", "[Xx]", "ÄÖ", "CCO"]
    refs = ["CCO"] * 5
    s = score("caption2smiles", preds, refs, fcd=False)
    # over molecules.MAX_SMILES_CHARS (4,096): invalid without calling RDKit, whose SMILES writer
    # segfaults on long chains (19,000 atoms with an 8 MB stack, 5,000 with 2 MB)
    assert [r["valid"] for r in s.per_sample] == [False, False, False, False, True]
    assert s.per_sample[0]["levenshtein"] == 9_998  # 9,997 deletions + 1 substitution
    # FCD: the fcd 1.1 encoding truncates at 349 symbols, so long strings cost no more
    assert len(fcd_mod.encode_fcd11(long_smiles)) == fcd_mod.PAD_LEN
    assert math.isnan(fcd_mod.fcd_score(["xx", "CCO"], ["CCO", "CCC", "CCN"]))  # < 2 valid outputs


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_read_predictions_tsv_and_jsonl(tmp_path):
    tsv = _write(tmp_path, "p.txt", b'SMILES\tground truth\toutput\nCCO\tAn alcohol.\tAn "alcohol\n')
    rows = read_predictions(tsv, "smiles2caption")
    assert rows.predictions == ['An "alcohol'] and rows.sources == ["CCO"] and rows.n_rows == 1
    assert len(rows.sha256) == 64
    jl = tmp_path / "p.jsonl"
    jl.write_text(
        json.dumps({"id": "a", "source": "x", "reference": "CCO", "prediction": "OCC"})
        + "\n"
        + json.dumps({"ground truth": "CC", "output": None})
        + "\n",
        encoding="utf-8",
    )
    rows = read_predictions(jl, "caption2smiles")
    assert rows.predictions == ["OCC", ""] and rows.references == ["CCO", "CC"] and rows.ids[0] == "a"


@pytest.mark.parametrize(
    ("name", "data", "direction", "message"),
    [
        (
            "nonutf8.txt",
            b"SMILES\tground truth\toutput\nCCO\tcaf\xe9\tx\n",
            "smiles2caption",
            "row 2: not valid UTF-8",
        ),
        ("cols.txt", b"SMILES\treference\toutput\nCCO\ta\tb\n", "smiles2caption", "missing column"),
        (
            "dir.txt",
            b"description\tground truth\toutput\na\tCCO\tCCO\n",
            "smiles2caption",
            "wrong --direction",
        ),
        (
            "ragged.txt",
            b"SMILES\tground truth\toutput\nCCO\ta\tb\tc\n",
            "smiles2caption",
            "row 2: 4 tab-separated",
        ),
        ("short.txt", b"SMILES\tground truth\toutput\nCCO\ta\n", "smiles2caption", "row 2: 2 tab-separated"),
        (
            "noref.txt",
            b"SMILES\tground truth\toutput\nCCO\t\tb\n",
            "smiles2caption",
            "row 2: empty 'ground truth'",
        ),
        ("empty.txt", b"", "smiles2caption", "empty"),
        ("header.txt", b"SMILES\tground truth\toutput\n", "smiles2caption", "no data rows"),
        ("bad.jsonl", b'{"reference": "C", "prediction": "C"}\n{oops\n', "caption2smiles", "row 2: not JSON"),
        ("keys.jsonl", b'{"ref": "C", "pred": "C"}\n', "caption2smiles", "row 1: needs keys"),
        (
            "nanref.jsonl",
            b'{"reference": NaN, "prediction": "C"}\n',
            "caption2smiles",
            "row 1: 'reference' is nan",
        ),
    ],
)
def test_read_predictions_errors_name_file_row_problem(tmp_path, name, data, direction, message):
    path = _write(tmp_path, name, data)
    with pytest.raises(PredictionFileError) as err:
        read_predictions(path, direction)
    assert str(path) in str(err.value) and message in str(err.value)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_intervals_contain_value_and_are_reproducible():
    preds = ["The molecule is an acid.", "The molecule is a base.", "A steroid.", "An alcohol."] * 5
    refs = ["The molecule is an amino acid.", "The molecule is a base.", "A sterol.", "An acid."] * 5
    s = score("smiles2caption", preds, refs)
    ci = confidence_intervals("smiles2caption", scores=s, n_resamples=200, seed=1)
    assert ci == confidence_intervals("smiles2caption", preds, refs, n_resamples=200, seed=1)
    for k, (lo, hi) in ci.items():
        assert lo <= s.corpus[k] + 1e-12 and s.corpus[k] <= hi + 1e-12, k
    assert ci != confidence_intervals("smiles2caption", scores=s, n_resamples=200, seed=2)


def test_bootstrap_molecules_excludes_fcd_unless_asked():
    preds, refs = ["CCO", "CCN", "xx", "c1ccccc1", "CC"] * 4, ["CCO", "CCC", "CC", "c1ccccc1", "CC"] * 4
    ci = confidence_intervals("caption2smiles", preds, refs, n_resamples=100)
    assert "fcd" not in ci and set(ci) == set(TABLE_METRICS["caption2smiles"]) - {"fcd"}
    assert ci["uniqueness"][1] <= 1.0


# ---------------------------------------------------------------- FCD pieces


def test_fcd11_encoding_rules():
    idx = fcd_mod.encode_fcd11
    c2i = fcd_mod.C2I
    assert idx("CCl") == [c2i["C"], c2i["Cl"], c2i["."]]
    assert idx("[Li+]") == [c2i["["], c2i["X"], c2i["+"], c2i["]"], c2i["."]]  # "Li" is one unknown symbol
    assert idx("CC.O") == [c2i["C"], c2i["C"], c2i["."]]  # stops at the first fragment separator
    assert len(idx("C" * 400)) == 350 and idx("C" * 400)[-1] == c2i["."]
    assert fcd_mod.encode_fcd12("CC.O") == [c2i[c] for c in "CC.O."]


def test_fcd12_convention_equals_fcd_library():
    import fcd

    refs = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCCCC", "C1CCCCC1", "OCC(O)CO", "CC(C)C"]
    preds = ["CCC", "c1ccccc1O", "CC(=O)N", "CCO", "CCCC", "C1CCCC1", "OCCO", "CC(C)O"]
    ours = fcd_mod.fcd_score(preds, refs, convention="fcd_1.2", cache_dir=False)
    official = fcd.get_fcd(
        [w for w in fcd.canonical_smiles(refs, njobs=1) if w],
        [w for w in fcd.canonical_smiles(preds, njobs=1) if w],
    )
    assert ours == pytest.approx(official, rel=1e-4)


def test_fcd_stats_roundtrip_and_key(tmp_path):
    refs = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCCCC"]
    name = fcd_mod.stats_filename(refs, "fcd_1.1")
    assert name == fcd_mod.stats_filename(list(reversed(refs)), "fcd_1.1")
    assert name != fcd_mod.stats_filename(refs, "fcd_1.2") != fcd_mod.stats_filename(refs[:-1], "fcd_1.1")
    stats = fcd_mod.reference_stats(refs, cache_dir=tmp_path)
    assert (tmp_path / name).is_file()
    loaded = fcd_mod.load_stats(tmp_path / name)
    np.testing.assert_array_equal(loaded.mu, stats.mu)
    np.testing.assert_array_equal(loaded.sigma, stats.sigma)
    preds = ["CCC", "c1ccccc1O", "CCN"]
    direct = fcd_mod.fcd_score(preds, refs, cache_dir=False)
    assert fcd_mod.fcd_score(preds, reference_stats_=tmp_path / name) == pytest.approx(direct, rel=1e-9)
    with pytest.raises(ValueError, match="other references"):
        fcd_mod.fcd_score(preds, refs[:-1], reference_stats_=loaded)
    with pytest.raises(ValueError, match="fcd_1.1, asked for fcd_1.2"):
        fcd_mod.fcd_score(preds, reference_stats_=loaded, convention="fcd_1.2")
    bad = _write(tmp_path, "bad.npz", b"not numpy")
    with pytest.raises(ValueError, match="not an FCD statistics file"):
        fcd_mod.load_stats(bad)


# ---------------------------------------------------------------- evaluate modules


def test_evaluate_modules_load_from_local_path():
    import evaluate

    mol = evaluate.load(str(REPO / "eval_harness/metrics/lmolt_molecule"))
    assert mol.higher_is_better["levenshtein"] is False
    out = mol.compute(predictions=["OCC", "xx"], references=["CCO", "CC"], fcd=False)
    assert out["exact_match"] == 0.5 and out["validity"] == 0.5
    cap = evaluate.load(str(REPO / "eval_harness/metrics/lmolt_caption"))
    out = cap.compute(predictions=["The molecule is an acid."], references=["The molecule is an acid."])
    assert out["bleu4"] == pytest.approx(1.0) and out["meteor"] > 0.9
    hal = evaluate.load(str(REPO / "eval_harness/metrics/lmolt_hallucination"))
    out = hal.compute(predictions=["CCO", "CCCCCCCCCC"], references=["CCO", "CC"], direction="caption2smiles")
    assert out["win_rate"] == 0.5


# ---------------------------------------------------------------- WordNet set-up


def test_setup_wordnet_copies_debian_files(tmp_path):
    from lmolt_hub.metrics import wordnet

    src = tmp_path / "debian"
    src.mkdir()
    for name in wordnet.REQUIRED + ["index.sense"]:
        (src / name).write_text(f"{name}\n")
    dest = wordnet.install_from_debian(tmp_path / "nltk_data", src)
    assert dest == tmp_path / "nltk_data" / "corpora" / "wordnet"
    assert sorted(p.name for p in dest.iterdir()) == sorted(wordnet.REQUIRED + ["index.sense", "lexnames"])
    assert not any(p.is_symlink() for p in dest.iterdir())
    lex = (dest / "lexnames").read_text().splitlines()
    assert len(lex) == 45 and lex[0] == "00\tadj.all\t3" and lex[44] == "44\tadj.ppl\t3"


def test_setup_wordnet_without_sources_names_the_fix(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lmolt_hub.cli", "setup-wordnet", "--target", str(tmp_path / "t"),
         "--source", str(tmp_path / "none"), "--no-download"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "wordnet-base" in proc.stderr and "lmolt-hub setup-wordnet" in proc.stderr


# ---------------------------------------------------------------- speed: pool, caches, concurrency


def _molt5_rows(direction: str, n: int):
    from lmolt_hub.resources import molt5_predictions

    rows = read_predictions(molt5_predictions("large", direction), direction)
    return rows.predictions[:n], rows.references[:n]


def test_reference_cache_is_filled_by_a_cold_run_and_holds_canonical_smiles(tmp_path):
    from lmolt_hub.metrics import molecules

    preds, refs = ["OCC", "c1ccccc1", "xx", ""], ["CCO", "C1=CC=CC=C1", "CC", "N#N"]
    path = molecules.references_cache_path(refs, tmp_path)
    cold = score("caption2smiles", preds, refs, fcd=False, reference_cache_dir=tmp_path)
    assert path.is_file()  # the cold run wrote it
    fresh = molecules.MoleculeCache()
    assert fresh.load_references(path)
    assert (
        fresh._canon["C1=CC=CC=C1"] == "c1ccccc1"
        and fresh._inchi["CCO"] == "InChI=1S/C2H6O/c1-2-3/h3H,2H2,1H3"
    )
    # a second run seeded from the file scores the same
    again = molecules.molecule_stats(preds, refs, cache=fresh, cache_dir=tmp_path)
    assert molecules.corpus_from_stats(again) == cold.corpus


def test_score_many_equals_score_one_by_one():
    from lmolt_hub.metrics import score_many

    s2c, c2s = _molt5_rows("smiles2caption", 40), _molt5_rows("caption2smiles", 40)
    requests = [
        {"direction": "smiles2caption", "predictions": s2c[0], "references": s2c[1]},
        {
            "direction": "caption2smiles",
            "predictions": c2s[0],
            "references": c2s[1],
            "reference_cache_dir": False,
        },
    ]
    together = score_many(requests)
    alone = [score(**r) for r in requests]
    assert [s.corpus for s in together] == [s.corpus for s in alone]
    assert [s.per_sample for s in together] == [s.per_sample for s in alone]


@pytest.mark.slow
def test_the_pool_gives_the_values_of_one_process(monkeypatch):
    """600 rows: text pairs, molecule descriptions, character BLEU and ChemNet batches go to the pool
    (over every threshold); one process (LMOLT_METRICS_WORKERS=1) must give identical values."""
    from lmolt_hub.metrics import fcd, molecules, parallel

    def run(workers: str) -> list[dict]:
        monkeypatch.setenv(parallel.ENV_WORKERS, workers)
        molecules.CACHE.__init__()  # no memo carried from the other run
        fcd._ACTS.clear()
        fcd._MEMORY.clear()
        return [
            score(d, *_molt5_rows(d, 600), reference_cache_dir=False).corpus
            for d in ("smiles2caption", "caption2smiles")
        ]

    pooled = run("2")
    assert parallel._POOL is not None  # the work did go through the pool
    assert run("1") == pooled
