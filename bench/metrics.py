"""Benchmark: lmolt-hub metrics vs a baseline that does what the official scripts do.

Scores both directions of the 3,300-row MolT5-large files with every Table 1/2 metric.

Baseline: one cold Python process per official script family (text metrics; BLEU/exact/Levenshtein/
validity; fingerprints; FCD), each reading its own input with csv.DictReader(QUOTE_NONE) and calling
the same libraries row by row as the scripts do (BertTokenizerFast.tokenize + filters, nltk METEOR
with nltk's WordNet, corpus_bleu, rouge_score per row; RDKit parse + InChI per row; MACCS/RDK/Morgan
per row; FCD: fcd.canonical_smiles, then ChemNet activations at batch 128). The official
environments pin fcd==1.1 (Keras, not installable here); the FCD baseline runs fcd 1.1's encoding
(its per-string ``get_one_hot``, pad 350, batch 128) on the fcd wheel's PyTorch ChemNet. With
``--fcd-convention fcd_1.2`` it calls ``fcd.get_fcd`` of fcd 1.2.2 instead, as the scripts do today.

Ours: one cold process that reads both files and scores both directions at once, as
``lmolt_hub.metrics.score_many`` does (a thread per direction over the shared process pool of
``lmolt_hub.metrics.parallel``: text pairs, molecule descriptions and ChemNet batches in chunks on
every core), first with empty caches (``cold``), then with the per-evaluation-set caches (FCD
reference statistics/activations, reference InChI/fingerprints/canonical SMILES) filled by an earlier
run (``cached refs``), as when many models are scored on the same evaluation set. Then the same,
cold, on one core with the families one after the other (``LMOLT_METRICS_WORKERS=1``): the slowest
family there is the floor of a 2-core run. All use the METEOR synonym table that
``lmolt-hub setup-wordnet`` builds at install time.

Every measurement is a fresh process, run ``--repeat`` times (default 2); the fastest counts, as the
build machines are shared. Prints per-family times, the end-to-end ratio and checks that the values
are identical.
Prints the load average (the build machines are shared).
Usage: python bench/metrics.py [--fcd-convention fcd_1.1|fcd_1.2] [--skip-cached] [--skip-one-core] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SIZE = "large"

# ---------------------------------------------------------------- baseline families (one process each)


def _rows(direction: str):
    import csv

    from lmolt_hub.resources import molt5_predictions

    with open(molt5_predictions(SIZE, direction)) as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def baseline_text() -> dict:
    from nltk.translate.bleu_score import corpus_bleu
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer
    from transformers import BertTokenizerFast

    from lmolt_hub.metrics.wordnet import ensure_wordnet
    from lmolt_hub.resources import SCIBERT_VOCAB

    ensure_wordnet(auto_install=False)  # only puts the installed WordNet on nltk's path
    outputs = []
    for line in _rows("smiles2caption"):
        out = line["output"][6:] if line["output"].startswith("[CLS] ") else line["output"]
        outputs.append((line["SMILES"], line["ground truth"], out))
    tok = BertTokenizerFast.from_pretrained(str(SCIBERT_VOCAB.parent))
    refs, hyps, meteors = [], [], []
    for _, gt, out in outputs:
        toks = []
        for s in (gt, out):
            t = tok.tokenize(s, truncation=True, max_length=512, padding="max_length")
            toks.append([x for x in t if x not in ("[PAD]", "[CLS]", "[SEP]")])
        refs.append([toks[0]])
        hyps.append(toks[1])
        meteors.append(meteor_score([toks[0]], toks[1]))
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    rs = [scorer.score(out, gt) for _, gt, out in outputs]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "bleu2": corpus_bleu(refs, hyps, weights=(0.5, 0.5)),
        "bleu4": corpus_bleu(refs, hyps, weights=(0.25, 0.25, 0.25, 0.25)),
        "rouge1": float(mean([r["rouge1"].fmeasure for r in rs])),
        "rouge2": float(mean([r["rouge2"].fmeasure for r in rs])),
        "rougeL": float(mean([r["rougeL"].fmeasure for r in rs])),
        "meteor": float(mean(meteors)),
    }


def baseline_mol() -> dict:
    import numpy as np
    from Levenshtein import distance as lev
    from nltk.translate.bleu_score import corpus_bleu
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    outputs = [(r["description"], r["ground truth"], r["output"]) for r in _rows("caption2smiles")]
    refs = [[list(gt)] for _, gt, _ in outputs]
    hyps = [list(out) for _, _, out in outputs]
    bleu = corpus_bleu(refs, hyps)
    levs, exact, bad = [], 0, 0
    for _, gt, out in outputs:
        try:
            if Chem.MolToInchi(Chem.MolFromSmiles(out)) == Chem.MolToInchi(Chem.MolFromSmiles(gt)):
                exact += 1
        except Exception:  # noqa: BLE001 - as the official script
            bad += 1
        levs.append(lev(out, gt))
    n = len(outputs)
    return {
        "bleu": bleu,
        "exact_match": exact / n,
        "levenshtein": float(np.mean(levs)),
        "validity": 1 - bad / n,
    }


def baseline_fingerprints() -> dict:
    import numpy as np
    from rdkit import Chem, DataStructs, RDLogger
    from rdkit.Chem import AllChem, MACCSkeys

    RDLogger.DisableLog("rdApp.*")
    outputs, bad, valid_smiles = [], 0, []
    for line in _rows("caption2smiles"):
        gt_m, ot_m = Chem.MolFromSmiles(line["ground truth"]), Chem.MolFromSmiles(line["output"])
        if ot_m is None:
            bad += 1
        else:
            valid_smiles.append(line["output"])
        outputs.append((gt_m, ot_m))
    maccs, rdk, morgan = [], [], []
    tanimoto = DataStructs.TanimotoSimilarity
    for gt_m, ot_m in outputs:
        if ot_m is None:
            maccs.append(0), rdk.append(0), morgan.append(0)
            continue
        maccs.append(tanimoto(MACCSkeys.GenMACCSKeys(gt_m), MACCSkeys.GenMACCSKeys(ot_m)))
        rdk.append(tanimoto(Chem.RDKFingerprint(gt_m), Chem.RDKFingerprint(ot_m)))
        morgan.append(tanimoto(AllChem.GetMorganFingerprint(gt_m, 2), AllChem.GetMorganFingerprint(ot_m, 2)))
    n_valid = len(outputs) - bad
    return {
        "maccs_fts": float(np.mean(maccs)),
        "rdk_fts": float(np.mean(rdk)),
        "morgan_fts": float(np.mean(morgan)),
        "uniqueness": len(set(valid_smiles)) / n_valid,
    }


def _fcd11_one_hot(smiles: str, pad_len: int = 350):
    """fcd 1.1's get_one_hot, as it was written (a Python loop per string)."""
    import numpy as np

    one_hot = ["C", "N", "O", "H", "F", "Cl", "P", "B", "Br", "S", "I", "Si", "#", "(", ")", "+", "-", "1", "2",
               "3", "4", "5", "6", "7", "8", "=", "[", "]", "@", "c", "n", "o", "s", "X", "."]  # fmt: skip
    smiles = smiles + "."
    vec = np.zeros((pad_len, len(one_hot)))
    i = j = 0
    while True:
        if smiles[i + 1] in ["r", "i", "l"]:
            sym, i = smiles[i : i + 2], i + 2
        else:
            sym, i = smiles[i], i + 1
        vec[j, one_hot.index(sym) if sym in one_hot else one_hot.index("X")] = 1
        j += 1
        if smiles[i] == "." or j >= pad_len - 1:
            vec[j, one_hot.index(".")] = 1
            return vec


def baseline_fcd(convention: str) -> dict:
    import fcd
    import numpy as np
    import torch
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    gt, ot = [], []
    for line in _rows("caption2smiles"):
        gt.append(line["ground truth"])
        ot.append(line["output"] or "[]")
    model = fcd.load_ref_model()
    canon_gt = [w for w in fcd.canonical_smiles(gt) if w is not None]
    canon_ot = [w for w in fcd.canonical_smiles(ot) if w is not None]
    if convention == "fcd_1.2":
        return {"fcd": float(fcd.get_fcd(canon_gt, canon_ot, model))}

    def acts(smiles):  # fcd 1.1's get_predictions: generator of batches of 128, pad 350
        out = []
        with torch.no_grad():
            for k in range(0, len(smiles), 128):
                x = np.asarray([_fcd11_one_hot(s) for s in smiles[k : k + 128]]) / 35
                out.append(model(torch.from_numpy(x).float().transpose(1, 2)).numpy())
        return np.vstack(out)

    a1, a2 = acts(canon_gt), acts(canon_ot)
    return {
        "fcd": float(
            fcd.utils.calculate_frechet_distance(
                mu1=a1.mean(0), sigma1=np.cov(a1.T), mu2=a2.mean(0), sigma2=np.cov(a2.T)
            )
        )
    }


# ---------------------------------------------------------------- ours (one process)


def ours(convention: str) -> dict:
    """Both directions at once, as ``lmolt_hub.metrics.score_many`` runs them (one thread per
    direction over the shared process pool), each direction timed. Per-reference-set caches live in
    $LMOLT_CACHE, which the driver points at an empty folder (cold) or at one filled by an earlier
    run (cached)."""
    from concurrent.futures import ThreadPoolExecutor

    from lmolt_hub.formats.predictions import read_predictions
    from lmolt_hub.metrics import parallel, score
    from lmolt_hub.resources import molt5_predictions

    rows = {d: read_predictions(molt5_predictions(SIZE, d), d) for d in ("smiles2caption", "caption2smiles")}
    started = time.perf_counter()

    def run(direction: str) -> tuple[dict, float]:
        s = score(
            direction, rows[direction].predictions, rows[direction].references, fcd_convention=convention
        )
        return s.corpus, time.perf_counter() - started

    parallel.pool()
    with ThreadPoolExecutor(2) as threads:
        text, mols = threads.map(run, ("smiles2caption", "caption2smiles"))
    times = {"text (M->L)": text[1], "molecules + fcd (L->M)": mols[1]}
    return {"values": {**text[0], **mols[0]}, "times": times, "workers": parallel.cores()}


def ours_one_core(convention: str) -> dict:
    """The families one after the other on one core (LMOLT_METRICS_WORKERS=1 set by the driver):
    the slowest of them is the floor of a 2-core run."""
    from lmolt_hub.formats.predictions import read_predictions
    from lmolt_hub.metrics import score
    from lmolt_hub.metrics.fcd import fcd_score
    from lmolt_hub.resources import molt5_predictions

    times, values = {}, {}
    t = time.perf_counter()
    rows = read_predictions(molt5_predictions(SIZE, "smiles2caption"), "smiles2caption")
    values.update(score("smiles2caption", rows.predictions, rows.references).corpus)
    times["text"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = read_predictions(molt5_predictions(SIZE, "caption2smiles"), "caption2smiles")
    values.update(score("caption2smiles", rows.predictions, rows.references, fcd=False).corpus)
    times["molecules"] = time.perf_counter() - t
    t = time.perf_counter()
    values["fcd"] = fcd_score(rows.predictions, rows.references, convention=convention)
    times["fcd"] = time.perf_counter() - t
    return {"values": values, "times": times, "workers": 1}


# ---------------------------------------------------------------- driver


REPEAT = 2


def _run(
    args: list[str], cache: str | None = None, repeat: int | None = None, env: dict | None = None
) -> tuple[float, dict]:
    """Wall time of a fresh process (the fastest of ``repeat`` runs: the build machines are shared,
    so the minimum is the least disturbed) and what it printed. ``cache=None``: a new empty
    $LMOLT_CACHE for every run."""
    best, out = float("inf"), {}
    for _ in range(repeat or REPEAT):
        with tempfile.TemporaryDirectory() as fresh:
            env = {**os.environ, **(env or {}), "LMOLT_CACHE": cache or fresh}
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"{args} failed:\n{proc.stderr[-3000:]}")
        if wall < best:
            best, out = wall, json.loads(proc.stdout.strip().splitlines()[-1])
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fcd-convention", default="fcd_1.1", choices=["fcd_1.1", "fcd_1.2"])
    parser.add_argument("--skip-cached", action="store_true", help="skip the run with cached reference stats")
    parser.add_argument("--skip-one-core", action="store_true", help="skip the one-core run (the floor)")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="runs per measurement; the fastest counts")
    parser.add_argument("--_family", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._family:
        fam = args._family
        if fam == "ours":
            out = ours(args.fcd_convention)
        elif fam == "ours1":
            out = ours_one_core(args.fcd_convention)
        elif fam == "fcd":
            out = baseline_fcd(args.fcd_convention)
        else:
            out = {"text": baseline_text, "mol": baseline_mol, "fingerprints": baseline_fingerprints}[fam]()
        print(json.dumps(out))
        return 0

    conv = ["--fcd-convention", args.fcd_convention]
    print(f"MolT5-{SIZE} files, 3,300 rows per direction; FCD convention {args.fcd_convention}")
    print(f"{os.cpu_count()} cores; load average {_load()} at the start (the machine may be shared)")
    rep = args.repeat
    base_times, base_values = {}, {}
    for fam in ("text", "mol", "fingerprints", "fcd"):
        wall, vals = _run(["--_family", fam, *conv], repeat=rep)
        base_times[fam], base_values = wall, {**base_values, **vals}
        print(f"  baseline {fam:<13s} {wall:7.1f} s (process, cold)")
    base_total = sum(base_times.values())

    def show(label: str, wall: float, res: dict) -> None:
        print(
            f"  {label:<22s} {wall:7.1f} s  " + ", ".join(f"{k} {v:.1f} s" for k, v in res["times"].items())
        )

    wall, res = _run(["--_family", "ours", *conv], repeat=rep)  # cold: empty reference caches
    show(f"ours, {res['workers']} workers", wall, res)
    rows = [("cold, no caches", wall)]
    if not args.skip_cached:
        with tempfile.TemporaryDirectory() as cache:
            _run(["--_family", "ours", *conv], cache, repeat=1)  # fills the per-eval-set caches (not timed)
            wall_c, res_c = _run(["--_family", "ours", *conv], cache, repeat=rep)
        show("ours, cached refs", wall_c, res_c)
        rows.append(("cold process, reference statistics/fingerprints cached per eval set", wall_c))
        assert res_c["values"] == res["values"], "cached run changed a value"
    if not args.skip_one_core:
        wall_1, res_1 = _run(["--_family", "ours1", *conv], repeat=rep, env={"LMOLT_METRICS_WORKERS": "1"})
        show("ours, one core", wall_1, res_1)
        slowest = max(res_1["times"], key=res_1["times"].get)
        print(
            f"    floor of a 2-core run: the slowest family on one core, {slowest} {res_1['times'][slowest]:.1f} s"
        )
        assert res_1["values"] == res["values"], "one core and the pool differ"

    ok = True
    for k, v in base_values.items():
        mine = res["values"][k]
        tol = 1e-4 * abs(v) if k == "fcd" else 1e-9  # ChemNet batches differ: float32 rounding only
        same = abs(mine - v) <= tol
        ok &= same
        print(f"    {k:<12s} baseline {v:.10f}  ours {mine:.10f}  {'identical' if same else 'DIFFERENT'}")
    print(f"baseline total {base_total:.1f} s")
    for label, wall in rows:
        print(f"ratio ({label}): {base_total / wall:.2f}x  ({base_total:.1f} s / {wall:.1f} s)")
    print(f"load average {_load()} at the end")
    return 0 if ok else 1


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
