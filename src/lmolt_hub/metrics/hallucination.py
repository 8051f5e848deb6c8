"""Hallucination measures of the paper's section 3.4, per pair and as win rates.

caption -> molecule (SMILES):
  dLen = len(prediction) - len(reference) in characters; chrF over character 1-, 2- and 3-grams
  (sacrebleu chrF, char_order=3, no word n-grams, beta=2, scaled to 0..1); valid = RDKit parses the
  output into a non-empty molecule; win = chrF > 0.3 and |dLen| < 5 and valid.
molecule -> caption (text):
  dLen = prediction tokens - reference tokens (the SciBERT WordPiece tokens the text metrics use);
  NLI: a cross-encoder reads (premise = reference, hypothesis = prediction); the entailment
  probability is kept, and win = the predicted label is entailment. The model is configurable
  (default ``cross-encoder/nli-deberta-v3-base``; any sequence classifier whose ``id2label`` names an
  entailment class works) and runs in batches.
Win rate = share of wins. ``cross_win_rate`` compares two models row by row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from lmolt_hub.formats.direction import Direction

DEFAULT_NLI_MODEL = "cross-encoder/nli-deberta-v3-base"
CHRF_THRESHOLD = 0.3
DLEN_THRESHOLD = 5


# ---------------------------------------------------------------- caption -> molecule


def chrf_scores(predictions: list[str], references: list[str]) -> np.ndarray:
    from sacrebleu.metrics import CHRF

    chrf = CHRF(char_order=3, word_order=0, beta=2)
    return np.asarray(
        [chrf.sentence_score(p, [r]).score / 100.0 for p, r in zip(predictions, references, strict=True)]
    )


def smiles_hallucination(predictions: list[str], references: list[str]) -> dict[str, np.ndarray]:
    from lmolt_hub.metrics.molecules import CACHE, _quiet_rdkit

    _quiet_rdkit()
    dlen = np.asarray([len(p) - len(r) for p, r in zip(predictions, references, strict=True)], dtype=np.int64)
    chrf = chrf_scores(predictions, references)
    valid = np.asarray(
        [(m := CACHE.mol(p)) is not None and m.GetNumAtoms() > 0 for p in predictions], dtype=bool
    )
    win = (chrf > CHRF_THRESHOLD) & (np.abs(dlen) < DLEN_THRESHOLD) & valid
    return {"dlen": dlen, "chrf": chrf, "valid": valid, "win": win}


# ---------------------------------------------------------------- molecule -> caption


def load_nli(model_name: str = DEFAULT_NLI_MODEL, device: str | None = None, revision: str | None = None):
    """(model, tokenizer, entailment index, id2label) of an NLI sequence classifier (cached)."""
    return _load_nli(model_name, device, revision)


@lru_cache(maxsize=2)
def _load_nli(model_name: str, device: str | None, revision: str | None = None):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_name, revision=revision)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name, revision=revision, trust_remote_code=False
    )
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    id2label = {int(k): str(v).lower() for k, v in model.config.id2label.items()}
    entail = [i for i, lab in id2label.items() if lab.startswith("entail")]
    if len(entail) != 1:
        raise ValueError(
            f"NLI model {model_name!r} has labels {id2label}: expected exactly one 'entailment' label"
        )
    return model, tokenizer, entail[0], id2label


def nli_entailment(
    predictions: list[str],
    references: list[str],
    model_name: str | None = None,
    batch_size: int = 32,
    device: str | None = None,
    max_length: int = 512,
    revision: str | None = None,
) -> dict[str, Any]:
    """Entailment probability and predicted label of each (reference => prediction) pair."""
    import torch

    model, tokenizer, entail, id2label = load_nli(model_name or DEFAULT_NLI_MODEL, device, revision)
    probs, labels = [], []
    # longest first keeps padding (and memory) low within each batch; results go back in row order
    order = sorted(range(len(predictions)), key=lambda i: -(len(predictions[i]) + len(references[i])))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            enc = tokenizer(
                [references[i] for i in rows],
                [predictions[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(model.device)
            p = torch.softmax(model(**enc).logits.float(), dim=-1).cpu().numpy()
            probs.append(p)
            labels.append(p.argmax(axis=-1))
    if not order:
        return {"entailment": np.zeros(0), "label": [], "win": np.zeros(0, dtype=bool)}
    p_all, l_all = np.empty(len(order)), np.empty(len(order), dtype=np.int64)
    p_all[order] = np.concatenate(probs)[:, entail]
    l_all[order] = np.concatenate(labels)
    return {"entailment": p_all, "label": [id2label[int(i)] for i in l_all], "win": l_all == entail}


# ---------------------------------------------------------------- wiring into score()


def add_hallucination(
    scores, predictions, references, nli_model=None, batch_size=32, device=None, nli_revision=None
) -> None:
    """Fill ``scores.hallucination`` and the per-row hallucination values in ``scores.per_sample``."""
    if scores.direction == Direction.CAPTION2SMILES:
        h = smiles_hallucination(predictions, references)
        rows = zip(h["dlen"], h["chrf"], h["win"], strict=True)
        for row, (d, c, w) in zip(scores.per_sample, rows, strict=True):
            row.update({"dlen": int(d), "chrf": float(c), "win": bool(w)})
        summary = {"mean_chrf": _mean(h["chrf"])}
    else:
        from lmolt_hub.metrics.text import strip_cls

        stats = scores.stats
        h = nli_entailment(
            [strip_cls(p) for p in predictions],
            references,
            nli_model,
            batch_size,
            device,
            revision=nli_revision,
        )
        h["dlen"] = stats.n_tokens_pred - stats.n_tokens_ref
        rows = zip(h["dlen"], h["entailment"], h["label"], h["win"], strict=True)
        for row, (d, e, lab, w) in zip(scores.per_sample, rows, strict=True):
            row.update({"dlen": int(d), "entailment": float(e), "nli_label": lab, "win": bool(w)})
        summary = {"mean_entailment": _mean(h["entailment"])}
        scores.options["nli_model"] = nli_model or DEFAULT_NLI_MODEL
        if nli_revision:
            scores.options["nli_revision"] = nli_revision
    summary.update(
        win_rate=_mean(h["win"]), mean_dlen=_mean(h["dlen"]), mean_abs_dlen=_mean(np.abs(h["dlen"]))
    )
    scores.hallucination = summary


def _mean(x) -> float:
    x = np.asarray(x, dtype=float)
    return float(x.mean()) if len(x) else float("nan")


def win_rate(per_sample: list[dict]) -> float:
    return _mean([bool(r["win"]) for r in per_sample])


def cross_win_rate(a_per_sample: list[dict], b_per_sample: list[dict]) -> dict[str, float]:
    """Row-by-row comparison of two models' hallucination wins on the same evaluation rows.

    A row goes to A when only A's output is a win, to B when only B's is, else it is a tie.
    ``a_win_rate`` = (A rows + half the ties) / rows: 0.5 means no difference.
    """
    if len(a_per_sample) != len(b_per_sample):
        raise ValueError(f"cross win rate needs the same rows: {len(a_per_sample)} vs {len(b_per_sample)}")
    if not a_per_sample:
        raise ValueError("cross win rate of zero rows")
    a = np.asarray([bool(r["win"]) for r in a_per_sample])
    b = np.asarray([bool(r["win"]) for r in b_per_sample])
    n = len(a)
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    ties = n - a_only - b_only
    return {
        "a_wins": a_only / n,
        "b_wins": b_only / n,
        "ties": ties / n,
        "a_win_rate": (a_only + 0.5 * ties) / n,
    }
