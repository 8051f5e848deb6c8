"""TIES as mergekit runs it (``normalize: true``, the paper rows) vs the exact 19:1 (``normalize: false``),
on real trained weights: the cpu study's two bases (``recipes/cpu-study/base/*.yaml``).

Trains (or, in an existing root, reuses) the study's random init and its two one-direction bases on
ChEBI-20, merges them with ``recipes/cpu-study/merges/ties.yaml`` once per ``normalize`` value (and
with the study's SLERP t = 0.05 for comparison), and prints:

1. per weight, which task vectors survive TIES (trimmed to density 0.5, sign elected from the
   weighted sum): both, only L->M, only M->L, none. Where only one survives, ``normalize: true``
   applies it at full weight and ``false`` at its own (0.95 or 0.05); elsewhere the two are equal.
   The merged files are checked against that formula;
2. each merge's M->L and L->M metrics (and each base's) on the study's held-out set, with the harness.

    python bench/ties_variants.py                       # ~10 min on 2 busy cores (bases: 1 epoch)
    python bench/ties_variants.py --base-epochs 3       # the study's full base budget (~16 min more)
    python bench/ties_variants.py --root <study root>   # reuse a `lmolt-hub study cpu` run's bases
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

M2L = ("bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor")  # lmolt_hub.metrics.METRIC_INFO keys
L2M = ("bleu", "exact_match", "levenshtein", "maccs_fts", "rdk_fts", "morgan_fts", "validity")


def _weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    out: dict[str, Any] = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def _snapshot(repo: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo, revision=revision))


def _trim(delta, density: float):
    """mergekit's magnitude trimming: keep the int(density * n) largest magnitudes of the tensor."""
    import torch

    k = int(density * delta.numel())
    if k <= 0:
        return torch.zeros_like(delta)
    keep = torch.zeros(delta.numel(), dtype=torch.bool)
    keep[delta.abs().flatten().topk(k).indices] = True
    return delta * keep.view_as(delta)


def survival(base: Path, lm: Path, ml: Path, merged: dict[bool, Path], w=(0.95, 0.05), density=0.5):
    """Counts of weights where both / only L->M / only M->L / no task vector survives TIES, and the
    largest deviation of each merged file from TIES's formula for its ``normalize`` value."""
    import torch

    b, a, c = _weights(base), _weights(lm), _weights(ml)
    outs = {norm: _weights(p) for norm, p in merged.items()}
    counts = {"both": 0, "lm_only": 0, "ml_only": 0, "none": 0}
    deviation = dict.fromkeys(merged, 0.0)
    for key in b:
        d_lm, d_ml = _trim(a[key] - b[key], density), _trim(c[key] - b[key], density)
        sign = torch.where(w[0] * d_lm + w[1] * d_ml >= 0, 1.0, -1.0)
        s_lm = (d_lm != 0) & (torch.sign(d_lm) == sign)
        s_ml = (d_ml != 0) & (torch.sign(d_ml) == sign)
        counts["both"] += int((s_lm & s_ml).sum())
        counts["lm_only"] += int((s_lm & ~s_ml).sum())
        counts["ml_only"] += int((s_ml & ~s_lm).sum())
        counts["none"] += int((~s_lm & ~s_ml).sum())
        mixed = w[0] * d_lm * s_lm + w[1] * d_ml * s_ml
        divisor = w[0] * s_lm + w[1] * s_ml
        for norm, out in outs.items():
            want = mixed / torch.where(divisor == 0, 1.0, divisor) if norm else mixed
            deviation[norm] = max(deviation[norm], float((out[key] - b[key] - want).abs().max()))
    total = sum(counts.values())
    return {"weights": total, "counts": counts, "shares": {k: v / total for k, v in counts.items()},
            "max_abs_deviation_from_formula": {str(k).lower(): v for k, v in deviation.items()}}  # fmt: skip


def _merge(study, recipe_name: str, push: str, out: Path, normalize: bool | None = None) -> dict[str, Any]:
    import yaml

    from lmolt_hub.merging import merge_from_config
    from lmolt_hub.pipelines.study.run import recipe

    raw = yaml.safe_load(recipe(f"merges/{recipe_name}").read_text(encoding="utf-8"))
    if normalize is not None:
        raw["parameters"]["normalize"] = normalize
    cfg = out.parent / f"{out.name}.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    info = merge_from_config(cfg, out, push_to=f"{study.org}/{push}", variables={"org": study.org},
                             overwrite=True, check_generation=False)  # fmt: skip
    return {"output_dir": info["output_dir"], "hub_model_id": info["hub_model_id"]}


def _scores(model: str, study, max_new_tokens: int, limit: int | None) -> dict[str, dict[str, float]]:
    from lmolt_hub.evaluation import evaluate_model
    from lmolt_hub.generation.backends import GenerationParams

    doc = evaluate_model(model, eval_dataset=f"{study.org}/lmolt-eval-3k", hallucination=False, limit=limit,
                         output_dir=str(study.root / "results-ties-variants"), bootstrap_resamples=0,
                         metric_options={"fcd": False},  # ChemNet: slow, and not what differs here
                         cache_dir=str(study.root / "work" / "generations"), show_progress=False,
                         batch_size=32, generation=GenerationParams(max_new_tokens=max_new_tokens))  # fmt: skip
    return doc["results"]


def _row(name: str, res: dict[str, dict[str, float]]) -> str:
    m2l, l2m = res.get("smiles2caption", {}), res.get("caption2smiles", {})
    cells = [f"{m2l.get(k, float('nan')):.3f}" for k in M2L] + [
        f"{l2m.get(k, float('nan')):.3f}" for k in L2M
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--root", type=Path, default=None, help="study root (default: the lmolt cache's ties-variants)"
    )
    p.add_argument(
        "--base-epochs", type=int, default=1, help="epochs of each base when trained here (the study runs 3)"
    )
    p.add_argument("--eval-n", type=int, default=200, help="held-out pairs scored per direction")
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--limit", type=int, default=None, help="score only the first N of the held-out pairs")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from lmolt_hub.localhub import use_local_hub
    from lmolt_hub.pipelines.study.run import BASES, INIT, STUDY_ORG, Scale, Study
    from lmolt_hub.resources import cache_dir

    root = args.root or cache_dir("ties-variants")
    root.mkdir(parents=True, exist_ok=True)
    scale = Scale(eval_n=args.eval_n, max_new_tokens=args.max_new_tokens, dpo=False, jobs=1,
                  train_args=["--num_train_epochs", str(args.base_epochs)])  # fmt: skip
    t0 = time.perf_counter()
    with use_local_hub(root / "hub"):
        st = Study(root, STUDY_ORG, scale, tiny=False)
        nli = st.stage("hub", st.push_nli)
        init = st.stage("init", st.init_model)
        st.stage("datasets", lambda: st.datasets(nli["repos"][0]["revision"]))
        bases = st.stage("bases", lambda: st.bases(init["repos"][0]["revision"]))
        t_bases = time.perf_counter() - t0
        org = st.org
        merges = {
            "TIES normalize: true (mergekit as-is; paper rows)": _merge(st, "ties.yaml", "lmolt-cpu-ties", root / "merges" / "ties-true", True),
            "TIES normalize: false (exact 19:1 variant)": _merge(st, "ties.yaml", "lmolt-cpu-ties-19to1", root / "merges" / "ties-false", False),
            "SLERP t = 0.05": _merge(st, "slerp.yaml", "lmolt-cpu-slerp", root / "merges" / "slerp"),
        }  # fmt: skip
        keys = list(merges)
        share = survival(
            _snapshot(f"{org}/{INIT}", init["repos"][0]["revision"]),
            _snapshot(f"{org}/{BASES['caption2smiles']}", bases[BASES["caption2smiles"]]["hub_revision"]),
            _snapshot(f"{org}/{BASES['smiles2caption']}", bases[BASES["smiles2caption"]]["hub_revision"]),
            {True: Path(merges[keys[0]]["output_dir"]), False: Path(merges[keys[1]]["output_dir"])},
        )
        models = {"base L->M (caption2smiles)": f"{org}/{BASES['caption2smiles']}",
                  "base M->L (smiles2caption)": f"{org}/{BASES['smiles2caption']}",
                  **{k: v["hub_model_id"] for k, v in merges.items()}}  # fmt: skip
        scores = {name: _scores(repo, st, args.max_new_tokens, args.limit) for name, repo in models.items()}
    sel = {n: bases[n].get("selection") or {} for n in BASES.values()}

    c, s = share["counts"], share["shares"]
    print(f"\nbases: {args.base_epochs} epoch(s) each (trained in this root; {t_bases:.0f} s in this run)")
    for name, kept in sel.items():
        print(
            f"  {name}: kept epoch {kept.get('kept_epoch')}, validation loss {kept.get('kept_value', float('nan')):.3f}"
        )
    print(f"weights merged: {share['weights']:,}")
    for k in ("both", "lm_only", "ml_only", "none"):
        print(f"  {k:<8} {c[k]:>10,}  {s[k]:.1%}")
    lone = s["lm_only"] + s["ml_only"]
    print(
        f"only one delta survives: {lone:.1%} of weights (L->M only {s['lm_only']:.1%}, M->L only {s['ml_only']:.1%})"
    )
    print(f"merged files vs TIES formula, max |diff|: {share['max_abs_deviation_from_formula']}")
    print(
        f"\nheld-out pairs per direction: {args.limit or args.eval_n}; greedy, <= {args.max_new_tokens} new tokens\n"
    )
    print(
        "| model | "
        + " | ".join(f"M->L {k}" for k in M2L)
        + " | "
        + " | ".join(f"L->M {k}" for k in L2M)
        + " |"
    )
    print("|---" * (1 + len(M2L) + len(L2M)) + "|")
    for name, res in scores.items():
        print(_row(name, res))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"base_epochs": args.base_epochs, "selection": sel, "survival": share,
                                         "scores": scores, "eval_n": args.limit or args.eval_n}, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
