"""Molecule -> caption metrics, as the official MolT5 / L+M-24 `text_translation_metrics.py`.

Definitions (from the official scripts):
- a leading ``"[CLS] "`` is stripped from each output;
- BLEU-2/4: nltk ``corpus_bleu`` (no smoothing) over SciBERT-uncased WordPiece tokens,
  tokenised without special tokens, truncated to 512 tokens, with ``[PAD]``/``[CLS]``/``[SEP]``
  tokens removed (the scripts filter them after padding);
- METEOR: nltk ``meteor_score([ref_tokens], out_tokens)`` per pair on the same tokens, then the mean;
- ROUGE-1/2/L: ``rouge_score.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(out, gt)`` on the raw
  strings (no stemming), F-measure averaged over pairs.

What makes it fast: the tokenizer runs once over the whole batch in Rust (``tokenizers``, without
importing transformers); BLEU keeps per-pair n-gram
match counts (the corpus score is a function of their sums, which the bootstrap resamples);
METEOR calls nltk's own algorithm with memoised stemmer and WordNet look-ups; ROUGE-L's LCS comes
from rapidfuzz (exact LCS length), the rest of ROUGE from rouge_score itself.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]")
MAX_TOKENS = 512
MAX_ORDER = 4


@lru_cache(maxsize=1)
def scibert_tokenizer():
    """SciBERT uncased WordPiece over the bundled vocab, as the official scripts'
    ``BertTokenizerFast.from_pretrained("allenai/scibert_scivocab_uncased")``.

    Built with the ``tokenizers`` library directly: the same normaliser (BertNormalizer, lowercase,
    accents stripped by lowercasing as BERT does), pre-tokeniser and WordPiece model that
    transformers' BertTokenizerFast wraps (tests check the tokens are identical), without the
    ~1.4 s import of transformers.
    """
    from tokenizers import BertWordPieceTokenizer

    from lmolt_hub.resources import SCIBERT_VOCAB

    return BertWordPieceTokenizer(
        str(SCIBERT_VOCAB), lowercase=True, clean_text=True, handle_chinese_chars=True, strip_accents=None
    )


def strip_cls(text: str) -> str:
    """The official scripts drop a leading "[CLS] " that some models emit."""
    return text[6:] if text.startswith("[CLS] ") else text


def wordpiece_tokens(texts: list[str], max_length: int = MAX_TOKENS) -> list[list[str]]:
    """SciBERT WordPiece tokens of each text, special tokens removed, at most ``max_length``."""
    if not texts:
        return []
    encodings = scibert_tokenizer().encode_batch(list(texts), add_special_tokens=False)
    return [[t for t in enc.tokens[:max_length] if t not in SPECIAL_TOKENS] for enc in encodings]


# ---------------------------------------------------------------- BLEU from sufficient statistics


def ngram_stats(hypothesis: list, reference: list, max_order: int = MAX_ORDER) -> np.ndarray:
    """Per-pair statistics for nltk corpus BLEU with one reference.

    Returns ``[match_1..match_N, total_1..total_N, hyp_len, ref_len]`` where match_n is the clipped
    n-gram match count and total_n = max(1, number of hypothesis n-grams), exactly the numerator and
    denominator of nltk's ``modified_precision``.
    """
    stats = np.zeros(2 * max_order + 2, dtype=np.int64)
    for n in range(1, max_order + 1):
        if len(hypothesis) >= n:
            hyp = Counter(zip(*[hypothesis[i:] for i in range(n)], strict=False))
            total = sum(hyp.values())
            if len(reference) >= n:
                ref = Counter(zip(*[reference[i:] for i in range(n)], strict=False))
                stats[n - 1] = sum(min(c, ref[g]) for g, c in hyp.items() if g in ref)
        else:
            total = 0
        stats[max_order + n - 1] = max(1, total)
    stats[2 * max_order] = len(hypothesis)
    stats[2 * max_order + 1] = len(reference)
    return stats


def bleu_from_stats(summed: np.ndarray, weights: tuple[float, ...], max_order: int = MAX_ORDER) -> float:
    """nltk ``corpus_bleu`` (method0, no smoothing) from summed :func:`ngram_stats`."""
    from nltk.translate.bleu_score import brevity_penalty

    matches = [int(x) for x in summed[:max_order]]
    totals = [int(x) for x in summed[max_order : 2 * max_order]]
    hyp_len, ref_len = int(summed[2 * max_order]), int(summed[2 * max_order + 1])
    if matches[0] == 0:
        return 0.0
    bp = brevity_penalty(ref_len, hyp_len)
    # nltk: a zero-match order contributes log(sys.float_info.min) (its "no smoothing" rule)
    precisions = [m / t if m != 0 else sys.float_info.min for m, t in zip(matches, totals, strict=False)]
    s = (w * math.log(p) for w, p in zip(weights, precisions, strict=False) if p > 0)
    return float(bp * math.exp(math.fsum(s)))


def bleu_stats_matrix(hypotheses: list[list], references: list[list]) -> np.ndarray:
    if not hypotheses:
        return np.zeros((0, 2 * MAX_ORDER + 2), dtype=np.int64)
    return np.stack([ngram_stats(h, r) for h, r in zip(hypotheses, references, strict=True)])


BLEU2 = (0.5, 0.5)
BLEU4 = (0.25, 0.25, 0.25, 0.25)

# ---------------------------------------------------------------- METEOR


class _CachedStemmer:
    """nltk's PorterStemmer with a memo: METEOR stems every token of every pair."""

    def __init__(self) -> None:
        from nltk.stem.porter import PorterStemmer

        self._stem = lru_cache(maxsize=None)(PorterStemmer().stem)

    def stem(self, word: str) -> str:
        return self._stem(word)


class _Lemma:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def name(self) -> str:
        return self._name


class _Synset:
    __slots__ = ("_lemmas",)

    def __init__(self, lemmas: tuple[_Lemma, ...]) -> None:
        self._lemmas = lemmas

    def lemmas(self) -> tuple[_Lemma, ...]:
        return self._lemmas


class _CachedWordNet:
    """The only WordNet call METEOR makes is ``synsets(word)`` then ``lemma.name()``: memoise it."""

    def __init__(self, wordnet) -> None:
        self._wn = wordnet
        self._cache: dict[str, tuple[_Synset, ...]] = {}

    def synsets(self, word: str) -> tuple[_Synset, ...]:
        hit = self._cache.get(word)
        if hit is None:
            hit = tuple(
                _Synset(tuple(_Lemma(lem.name()) for lem in s.lemmas())) for s in self._wn.synsets(word)
            )
            self._cache[word] = hit
        return hit


class _LazyWordNet:
    """nltk's WordNet reader, loaded (~3 s) only when a word misses the synonym table."""

    def __init__(self) -> None:
        self._wn = None

    def synsets(self, word: str):
        if self._wn is None:
            from lmolt_hub.metrics.wordnet import ensure_wordnet

            self._wn = ensure_wordnet()
        return self._wn.synsets(word)


@lru_cache(maxsize=1)
def _meteor_helpers():
    from lmolt_hub.metrics.wordnet import load_synonym_table

    wn = _CachedWordNet(_LazyWordNet())
    # METEOR only looks up WordPiece tokens of the SciBERT vocab: a table of their WordNet synsets'
    # lemma names (built once per WordNet install) spares loading WordNet in every process.
    for word, synsets in load_synonym_table().items():
        wn._cache[word] = tuple(_Synset(tuple(_Lemma(n) for n in names)) for names in synsets)
    return _CachedStemmer(), wn


def meteor_scores(hypotheses: list[list[str]], references: list[list[str]]) -> list[float]:
    from nltk.translate.meteor_score import meteor_score

    stemmer, wn = _meteor_helpers()
    return [
        float(meteor_score([r], h, stemmer=stemmer, wordnet=wn))
        for h, r in zip(hypotheses, references, strict=True)
    ]


# ---------------------------------------------------------------- ROUGE


@lru_cache(maxsize=1)
def _rouge_tokenizer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1"])._tokenizer


def _fmeasure(precision: float, recall: float) -> float:
    from rouge_score.scoring import fmeasure

    return fmeasure(precision, recall)


def _rouge_n(target: list[str], prediction: list[str], n: int) -> float:
    from rouge_score.rouge_scorer import _create_ngrams, _score_ngrams

    return _score_ngrams(_create_ngrams(target, n), _create_ngrams(prediction, n)).fmeasure


def _rouge_l(target: list[str], prediction: list[str]) -> float:
    # rouge_score._score_lcs with the LCS length from rapidfuzz (C++; the same exact LCS)
    from rapidfuzz.distance import LCSseq

    if not target or not prediction:
        return 0.0
    lcs = LCSseq.similarity(target, prediction)
    return _fmeasure(lcs / len(prediction), lcs / len(target))


def rouge_scores(predictions: list[str], references: list[str]) -> dict[str, list[float]]:
    """Per-pair ROUGE F1. The official scripts call ``scorer.score(out, gt)``: target=output."""
    tok = _rouge_tokenizer()
    cache: dict[str, list[str]] = {}

    def toks(s: str) -> list[str]:
        t = cache.get(s)
        if t is None:
            t = cache[s] = tok.tokenize(s)
        return t

    r1, r2, rl = [], [], []
    for out, gt in zip(predictions, references, strict=True):
        target, prediction = toks(out), toks(gt)
        r1.append(_rouge_n(target, prediction, 1))
        r2.append(_rouge_n(target, prediction, 2))
        rl.append(_rouge_l(target, prediction))
    return {"rouge1": r1, "rouge2": r2, "rougeL": rl}


# ---------------------------------------------------------------- all together


@dataclass
class TextStats:
    """Per-pair values from which every corpus text metric (and its bootstrap) is computed."""

    bleu: np.ndarray  # (n, 2*MAX_ORDER+2) sufficient statistics
    meteor: np.ndarray
    rouge1: np.ndarray
    rouge2: np.ndarray
    rougeL: np.ndarray
    n_tokens_pred: np.ndarray
    n_tokens_ref: np.ndarray


def text_stats(predictions: list[str], references: list[str]) -> TextStats:
    """Per-pair statistics; large inputs are scored in chunks on every core (``metrics.parallel``)
    and merged in order (every value is a function of its own pair)."""
    from lmolt_hub.metrics import parallel

    pairs = list(zip(predictions, references, strict=True))
    parts = parallel.gather(parallel.submit_chunks(_text_stats_chunk, pairs))
    if not parts:
        return _text_stats([], [])
    return TextStats(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(TextStats)))


def _text_stats_chunk(pairs: list[tuple[str, str]]) -> TextStats:
    return _text_stats([p for p, _ in pairs], [r for _, r in pairs])


def _text_stats(predictions: list[str], references: list[str]) -> TextStats:
    predictions = [strip_cls(p) for p in predictions]
    hyp = wordpiece_tokens(predictions)
    ref = wordpiece_tokens(references)
    rouge = rouge_scores(predictions, references)
    return TextStats(
        bleu=bleu_stats_matrix(hyp, ref),
        meteor=np.asarray(meteor_scores(hyp, ref), dtype=float),
        rouge1=np.asarray(rouge["rouge1"], dtype=float),
        rouge2=np.asarray(rouge["rouge2"], dtype=float),
        rougeL=np.asarray(rouge["rougeL"], dtype=float),
        n_tokens_pred=np.asarray([len(h) for h in hyp], dtype=np.int64),
        n_tokens_ref=np.asarray([len(r) for r in ref], dtype=np.int64),
    )


def corpus_from_stats(stats: TextStats, idx: np.ndarray | None = None) -> dict[str, float]:
    """Corpus values of the text metrics, optionally over the rows ``idx`` (bootstrap)."""
    sel = slice(None) if idx is None else idx
    summed = stats.bleu[sel].sum(axis=0)
    return {
        "bleu2": bleu_from_stats(summed, BLEU2),
        "bleu4": bleu_from_stats(summed, BLEU4),
        "rouge1": float(np.mean(stats.rouge1[sel])),
        "rouge2": float(np.mean(stats.rouge2[sel])),
        "rougeL": float(np.mean(stats.rougeL[sel])),
        "meteor": float(np.mean(stats.meteor[sel])),
    }
