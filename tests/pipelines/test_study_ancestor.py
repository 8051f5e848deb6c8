"""The cpu-study's ancestor (corpus, resumable pretraining) and its paired statistics, on real data:
WordNet from the system package, ChEBI-20 from the bundled files, RDKit InChIKeys, real metrics."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path

import pytest

from lmolt_hub.pipelines.study import ancestor, corpus, paired
from lmolt_hub.resources import cache_dir, chebi20_split

needs_wordnet = pytest.mark.skipif(
    not (corpus.WORDNET_DIR / "data.noun").is_file(), reason="WordNet (Debian wordnet-base) not installed"
)


@needs_wordnet
def test_wordnet_documents_are_lemmas_and_glosses():
    docs = corpus.wordnet_documents()
    assert len(docs) > 100_000  # every synset of WordNet 3.0
    escape = next(d for d in docs if d.startswith("escape, flight: the act of escaping physically"))
    assert '"he made his escape from the mental hospital"' in escape
    assert not any(
        "Princeton" in d and "copyright" in d.lower() for d in docs[:50]
    )  # the licence header is not text


def _fake_molsets(path: Path, smiles: list[str]) -> Path:
    """A wheel-shaped zip with MOSES's train.csv.gz, as the molsets wheel ships it."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["SMILES", "SPLIT"])
    w.writerows([s, "train"] for s in smiles)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(corpus.ZINC_MEMBER, gzip.compress(buf.getvalue().encode()))
    return path


def test_zinc_sample_never_holds_an_excluded_molecule(monkeypatch):
    from lmolt_hub.data.chem import inchikey

    held = ["CCO", "OCC", "c1ccccc1"]  # "OCC" is ethanol written otherwise: same InChIKey
    other = ["CC(=O)O", "CCN", "CCCl", "C1CCCCC1", "CC=O", "not-a-smiles", "CCOC", "CCCC", "CCBr", "CN"]
    _fake_molsets(cache_dir("study", "wheels") / "molsets-0.0-py3-none-any.whl", held + other)
    exclude = {inchikey("CCO"), inchikey("c1ccccc1")}
    train, heldout, dropped = corpus.zinc_documents(5, 2, exclude, seed=1)
    kept = train + heldout
    assert len(train) == 5 and len(heldout) == 2
    assert not {inchikey(s) for s in kept} & exclude
    assert "not-a-smiles" not in kept and dropped >= 0
    assert corpus.zinc_documents(5, 2, exclude, seed=1) == (train, heldout, dropped)  # cached, same
    monkeypatch.setattr(corpus, "read_zinc", lambda wheel: pytest.fail("the cached extract was not reused"))
    assert corpus.zinc_documents(5, 2, exclude, seed=1)[0] == train


def test_missing_molsets_wheel_is_one_clear_error(monkeypatch, tmp_path):
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no index"))
    with pytest.raises(SystemExit, match="could not download the molsets"):
        corpus.molsets_wheel(tmp_path / "empty")


@needs_wordnet
def test_corpus_excludes_every_evaluation_molecule_and_keeps_chebi_unpaired():
    c = corpus.build_corpus(zinc_n=0, heldout_n=20, english_limit=500)
    val = {r["SMILES"] for r in csv.DictReader(open(chebi20_split("validation")), delimiter="\t",
                                               quoting=csv.QUOTE_NONE)}  # fmt: skip
    assert not val & set(c.train["chebi_smiles"])
    assert c.excluded_keys > 3000 and set(c.train) == {"english", "chebi_caption", "chebi_smiles"}
    # unpaired: the i-th caption is not the i-th SMILES's caption
    rows = {r["SMILES"]: r["description"] for r in csv.DictReader(open(chebi20_split("test")), delimiter="\t",
                                                                  quoting=csv.QUOTE_NONE)}  # fmt: skip
    same = sum(
        rows.get(s) == d for s, d in zip(c.train["chebi_smiles"], c.train["chebi_caption"], strict=True)
    )
    assert same < 10


@needs_wordnet
def test_pretraining_resumes_exactly_after_an_interruption(tmp_path):
    import torch

    scale = ancestor.TINY_ANCESTOR
    c = corpus.build_corpus(zinc_n=0, heldout_n=8, english_limit=300)
    tok = ancestor.corpus_tokenizer(c, scale.vocab_size)
    docs = [d for ds in ancestor.encode(tok, c).values() for d in ds]

    def fresh():
        return ancestor.build_model(tok, scale.hidden_size, scale.num_layers, scale.seed)

    straight = fresh()
    ancestor.pretrain(straight, docs, scale, tmp_path / "a", log=lambda m: None)

    class Stop(Exception):
        pass

    def stop_at_5(msg: str) -> None:
        if f"step 5/{scale.steps}" in msg:
            raise Stop

    with pytest.raises(Stop):
        ancestor.pretrain(fresh(), docs, scale, tmp_path / "b", log=stop_at_5)
    resumed = fresh()
    out = ancestor.pretrain(resumed, docs, scale, tmp_path / "b", log=lambda m: None)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    assert out["curve"][-1]["step"] == scale.steps
    # and it learnt: held-out perplexity below the random init's on every modality
    held = ancestor.encode(tok, c, "heldout")
    for m, d in held.items():
        assert ancestor.perplexity(resumed, d) < ancestor.perplexity(fresh(), d), m


def test_smiles_validity_counts_rdkit_parses():
    v = ancestor.smiles_validity(["CCO", "c1ccccc1", "C1CC", "", "CCO"])
    assert v == {"n": 5, "valid": 3, "validity": 0.6, "unique_valid": 2}


def _caption_outputs(n: int, good: bool) -> dict[str, tuple[str, str]]:
    rows = list(csv.DictReader(open(chebi20_split("validation")), delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    return {
        r["CID"]: (r["description"] if good else "The molecule is a thing.", r["description"]) for r in rows
    }


def test_paired_bootstrap_sees_a_real_difference_and_none_between_equals():
    d = "smiles2caption"
    good, bad = (
        paired.score_outputs(d, _caption_outputs(30, True)),
        paired.score_outputs(d, _caption_outputs(30, False)),
    )
    res = paired.paired_bootstrap(d, good, bad, ["bleu2", "rougeL"], n_resamples=200)
    for m in ("bleu2", "rougeL"):
        assert res[m]["diff"] > 0.3 and res[m]["ci"][0] > 0 and res[m]["p"] < 0.01 and res[m]["n"] == 30
    same = paired.paired_bootstrap(d, good, good, ["bleu2"], n_resamples=50)
    assert same["bleu2"]["diff"] == 0 and same["bleu2"]["ci"] == [0, 0] and same["bleu2"]["p"] == 1
    # pairs are matched by id: a model scored on a subset is compared on that subset only
    sub = paired.score_outputs(d, dict(list(_caption_outputs(30, False).items())[:10]))
    assert paired.paired_bootstrap(d, good, sub, ["bleu2"], n_resamples=20)["bleu2"]["n"] == 10


def test_floating_point_dust_is_no_difference():
    """Found in the first full run of study 2: two models that both score BLEU-2 "0" (NLTK's
    exp(log(tiny)) ~ 1e-160 when no bigram matches) differed "significantly" by 1e-155."""
    d, refs = "smiles2caption", _caption_outputs(30, True)
    a = paired.score_outputs(d, {k: ("The xyz", r) for k, (_, r) in refs.items()})
    b = paired.score_outputs(d, {k: ("molecule qqq is", r) for k, (_, r) in refs.items()})
    res = paired.paired_bootstrap(d, a, b, ["bleu2", "rouge1"], n_resamples=50)
    assert res["bleu2"]["diff"] == 0 and res["bleu2"]["ci"] == [0, 0] and res["bleu2"]["p"] == 1
    assert res["rouge1"]["diff"] != 0  # a real (unigram) difference is still one


def test_holm_and_the_claim_decision():
    adj = paired.holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adj["a"] == (0.03, True) and adj["c"][0] == pytest.approx(0.06) and not adj["c"][1]
    assert adj["b"][0] == pytest.approx(0.06)  # monotone: never below the previous step
    t = lambda diff, p, metric="bleu2": {"diff": diff, "p": p, "metric": metric, "ci": [0, 0]}  # noqa: E731
    assert paired.decide({"x": t(0.1, 0.001), "y": t(0.0, 0.9)})["verdict"] == "holds"
    assert paired.decide({"x": t(-0.1, 0.001)})["verdict"] == "fails"
    assert paired.decide({"x": t(2.0, 0.001, "levenshtein")})["verdict"] == "fails"  # lower is better
    assert paired.decide({"x": t(0.1, 0.001), "y": t(-0.1, 0.001)})["verdict"] == "undecided"
    assert paired.decide({"x": t(0.1, 0.2)})["verdict"] == "undecided"
    assert paired.decide({})["verdict"] == "not measured"
