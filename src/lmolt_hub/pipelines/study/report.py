"""The cpu-study report: Tables 1-2 laid out like the paper's, the bases' learning check, the
hallucination metrics, Figures 1-2 and a verdict on the paper's claims 1-3 computed from the CIs.

A difference counts only when the two 95% bootstrap intervals do not overlap (conservative: it
calls more differences "inside the noise" than a paired test would).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmolt_hub.formats.direction import DIRECTION_NAMES, Direction
from lmolt_hub.metrics import METRIC_INFO
from lmolt_hub.resources import PAPER_TABLES

FIGURES = "cpu-study"  # folder of the figures, next to the report
DIRECTIONS = DIRECTION_NAMES
PAPER_KEYS = {d.value: d.paper_table for d in Direction}
TITLES = {
    "smiles2caption": "Table 1-style: molecule -> caption (M->L)",
    "caption2smiles": "Table 2-style: caption -> molecule (L->M)",
}
# study role -> the paper's row (model, fusion, method)
PAPER_ROWS = {
    "Base": ("Meditron", None, "baseline"),
    "SFT": ("Meditron-7B", None, "SFT"),
    "DPO (sigmoid)": ("Meditron-7B", None, "DPO"),
    "DPO (kto_pair)": ("Meditron-7B", None, "DPO"),
    "CPO": ("Meditron-7B", None, "CPO"),
    "TIES+CPO": ("Meditron-7B", "TIES", "CPO"),
    "SLERP+CPO": ("Meditron-7B", "SLERP", "CPO"),
}
ORDER = list(PAPER_ROWS)


# -- loading --------------------------------------------------------------------------------


def load_rows(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """role -> direction -> {value, ci, hallucination, model}; the two bases form the "Base" row."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for item in summary["results"]:
        doc = json.loads(Path(item["results"]).read_text(encoding="utf-8"))
        info = summary["roles"][item["model"]]
        role = "Base" if info["role"].startswith("Base") else info["role"]
        for d in doc["directions"]:
            if info.get("own", d) != d:  # a base's row is its own direction
                continue
            rows.setdefault(role, {})[d] = {
                "model": item["model"],
                "results": doc["results"][d],
                "ci": (doc.get("confidence_intervals") or {}).get(d, {}),
                "hallucination": (doc.get("hallucination") or {}).get(d, {}),
                "n": doc["n_samples"][d],
            }
    return rows


def paper_columns() -> dict[str, dict[str, str]]:
    """direction -> {paper column: our metric key}."""
    from lmolt_hub.leaderboard.records import paper_metric_key

    tables = json.loads(Path(PAPER_TABLES).read_text(encoding="utf-8"))
    return {
        d: {col: paper_metric_key(d, col) for col in tables[PAPER_KEYS[d]]["metrics"]} for d in DIRECTIONS
    }


def paper_value(role: str, direction: str, column: str) -> float | None:
    tables = json.loads(Path(PAPER_TABLES).read_text(encoding="utf-8"))
    model, fusion, method = PAPER_ROWS[role]
    for row in tables[PAPER_KEYS[direction]]["rows"]:
        if (row["model"], row.get("fusion"), row["method"]) == (model, fusion, method):
            return row.get(column)
    return None


# -- comparisons ----------------------------------------------------------------------------


def compare(a: dict[str, Any] | None, b: dict[str, Any] | None, metric: str) -> str | None:
    """ "better" / "worse" / "noise" for A against B on ``metric`` (non-overlapping 95% CIs), or None."""
    if not a or not b:
        return None
    ca, cb = a["ci"].get(metric), b["ci"].get(metric)
    if not ca or not cb or None in (*ca, *cb):
        return None
    higher = METRIC_INFO[metric]["higher_is_better"]
    if ca[0] > cb[1]:
        return "better" if higher else "worse"
    if ca[1] < cb[0]:
        return "worse" if higher else "better"
    return "noise"


def tally(rows, role_a: str, role_b: str, columns: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Outcome of A vs B on every Table 1/2 metric of both directions."""
    out: dict[str, list[str]] = {"better": [], "worse": [], "noise": []}
    for d in DIRECTIONS:
        for col, key in columns[d].items():
            res = compare(rows.get(role_a, {}).get(d), rows.get(role_b, {}).get(d), key)
            if res:
                out[res].append(f"{Direction(d).alias} {col}")
    n = sum(len(v) for v in out.values())
    return {"a": role_a, "b": role_b, "n": n, **{k: v for k, v in out.items()}, "verdict": verdict(out, n)}


def verdict(out: dict[str, list[str]], n: int) -> str:
    b, w = len(out["better"]), len(out["worse"])
    if n == 0:
        return "not measured"
    if b == 0 and w == 0:
        return "inside the noise"
    if w == 0:
        return "holds" if b >= n / 2 else "holds on some metrics, the rest inside the noise"
    if b == 0:
        return "fails" if w >= n / 2 else "fails on some metrics, the rest inside the noise"
    return "mixed"


def claims(rows, columns) -> list[dict[str, Any]]:
    """Claims 1-3 of the paper, each with its comparisons (computed, never hand-written)."""
    pref = [r for r in ("CPO", "DPO (sigmoid)", "DPO (kto_pair)") if r in rows]
    fused = [r for r in ("SLERP+CPO", "TIES+CPO") if r in rows]
    return [
        {"claim": "1. Preference training (CPO/DPO) on the slice beats SFT on the slice",
         "headline": tally(rows, "CPO", "SFT", columns),
         "comparisons": [tally(rows, r, "SFT", columns) for r in pref]},
        {"claim": "2. CPO beats the base models trained on all the data",
         "headline": tally(rows, "CPO", "Base", columns), "comparisons": []},
        {"claim": "3. SLERP/TIES fusion then CPO helps further over CPO, or at least keeps both directions",
         "headline": _best(rows, fused, columns),
         "comparisons": [tally(rows, r, "CPO", columns) for r in fused]
         + [tally(rows, r, "Base", columns) for r in fused]},
    ]  # fmt: skip


def _best(rows, fused: list[str], columns) -> dict[str, Any]:
    """Claim 3's headline: the better fusion against CPO; "keeps" when nothing is worse."""
    tallies = [tally(rows, r, "CPO", columns) for r in fused]
    if not tallies:
        return {
            "verdict": "not measured",
            "n": 0,
            "better": [],
            "worse": [],
            "noise": [],
            "a": "-",
            "b": "CPO",
        }
    best = max(tallies, key=lambda t: (len(t["better"]) - len(t["worse"]), len(t["better"])))
    if best["verdict"] == "inside the noise":
        best = best | {
            "verdict": "holds in its weak form: keeps both directions (no difference beyond the noise)"
        }
    return best


# -- rendering ------------------------------------------------------------------------------


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    x = float(x)
    return f"{x:.{digits}f}" if abs(x) < 1000 else f"{x:.0f}"


def _cell(entry: dict[str, Any] | None, key: str) -> str:
    if not entry:
        return "—"
    value, ci = entry["results"].get(key), entry["ci"].get(key)
    digits = 1 if key in ("levenshtein", "fcd") else 3
    if ci and None not in ci:
        return f"{_f(value, digits)} [{_f(ci[0], digits)}, {_f(ci[1], digits)}]"
    return _f(value, digits)


def _arrow(ours: float | None, paper: float | None) -> str:
    if ours is None or paper is None:
        return ""
    return "▲" if ours > paper else ("▼" if ours < paper else "=")


def results_table(rows, direction: str, columns: dict[str, str]) -> list[str]:
    head = " | ".join(
        f"{c} ({'↑' if METRIC_INFO[k]['higher_is_better'] else '↓'})" for c, k in columns.items()
    )
    lines = [f"### {TITLES[direction]}", "",
             "Each cell: ours [95% CI] / the paper's value, ▲/▼ = ours above/below the paper's.", "",
             f"| Model | {head} |", "|---|" + "---|" * len(columns)]  # fmt: skip
    for role in ORDER:
        entry = rows.get(role, {}).get(direction)
        if entry is None:
            continue
        cells = []
        for col, key in columns.items():
            paper = paper_value(role, direction, col)
            arrow = _arrow(entry["results"].get(key), paper)
            cells.append(
                f"{_cell(entry, key)} / {_f(paper, 2) if paper is not None else '—'} {arrow}".strip()
            )
        lines.append(f"| {role} | {' | '.join(cells)} |")
    if direction == Direction.CAPTION2SMILES:
        exact = [
            f"{r}: {_cell(rows[r][direction], 'exact_match')}" for r in ORDER if direction in rows.get(r, {})
        ]
        lines += ["", "Exact match (not in the paper's table): " + "; ".join(exact) + "."]
    return lines + [""]


def effects_table(rows, columns) -> list[str]:
    """Each method against SFT: our significant direction beside the paper's direction."""
    lines = ["### Direction of each difference against SFT (ours, from the CIs, beside the paper's)", "",
             "▲ better, ▼ worse (by the metric's own direction), ≈ inside the noise (CIs overlap); "
             "the paper's arrow is its printed value against its SFT row.", ""]  # fmt: skip
    cols = [(d, c, k) for d in DIRECTIONS for c, k in columns[d].items()]
    lines += ["| vs SFT | " + " | ".join(f"{Direction(d).alias} {c}" for d, c, _ in cols)
              + " |", "|---|" + "---|" * len(cols)]  # fmt: skip
    sym = {"better": "▲", "worse": "▼", "noise": "≈", None: "n/a"}
    for role in ORDER:
        if role in ("SFT",) or role not in rows:
            continue
        cells = []
        for d, c, k in cols:
            ours = sym[compare(rows[role].get(d), rows.get("SFT", {}).get(d), k)]
            p, s = paper_value(role, d, c), paper_value("SFT", d, c)
            higher = METRIC_INFO[k]["higher_is_better"]
            paper = (
                "n/a" if p is None or s is None else ("=" if p == s else "▲" if (p > s) == higher else "▼")
            )
            cells.append(f"{ours} / {paper}")
        lines.append(f"| {role} | {' | '.join(cells)} |")
    return lines + [""]


def bases_section(summary, rows) -> list[str]:
    rand = json.loads(Path(summary["random"]["results"]).read_text(encoding="utf-8"))
    lines = ["## Do the bases learn?", "",
             f"The random init (`{summary['org']}/lmolt-cpu-init`, scored on the first {rand['n_samples'].get('caption2smiles')} "
             "held-out pairs) against each base on the whole held-out set:", "",
             "| Model | L->M validity | L->M BLEU | M->L BLEU-2 | M->L ROUGE-L |", "|---|---|---|---|---|"]  # fmt: skip

    def cell(d: str, key: str, entry: dict[str, Any] | None) -> str:
        return _cell(entry, key) if entry else "—"

    r = {
        d: {"results": rand["results"][d], "ci": rand["confidence_intervals"][d]} for d in rand["directions"]
    }
    lines.append(f"| random init | {cell('', 'validity', r.get('caption2smiles'))} | "
                 f"{cell('', 'bleu', r.get('caption2smiles'))} | {cell('', 'bleu2', r.get('smiles2caption'))} | "
                 f"{cell('', 'rougeL', r.get('smiles2caption'))} |")  # fmt: skip
    docs = {
        summary["roles"][item["model"]].get("own"): json.loads(
            Path(item["results"]).read_text(encoding="utf-8")
        )
        for item in summary["results"]
        if summary["roles"][item["model"]].get("own")
    }
    entries: dict[str, dict[str, Any]] = {"random init": r}
    for own, label in (
        ("caption2smiles", "base L->M (caption2smiles)"),
        ("smiles2caption", "base M->L (smiles2caption)"),
    ):
        doc = docs.get(own) or {"results": {}, "confidence_intervals": {}}
        entries[label] = {d: {"results": doc["results"][d], "ci": doc["confidence_intervals"].get(d, {})}
                          for d in doc["results"]}  # fmt: skip
        row = entries[label]
        lines.append(f"| {label} | {cell('', 'validity', row.get('caption2smiles'))} | "
                     f"{cell('', 'bleu', row.get('caption2smiles'))} | {cell('', 'bleu2', row.get('smiles2caption'))} | "
                     f"{cell('', 'rougeL', row.get('smiles2caption'))} |")  # fmt: skip
    l2m, m2l = entries["base L->M (caption2smiles)"], entries["base M->L (smiles2caption)"]
    lines += ["", f"Against the random init (95% CIs): L->M validity of the L->M base is "
              f"{_word(compare(l2m.get('caption2smiles'), r.get('caption2smiles'), 'validity'))}; M->L BLEU-2 of the "
              f"M->L base is {_word(compare(m2l.get('smiles2caption'), r.get('smiles2caption'), 'bleu2'))}. Each base "
              "is scored in both directions (the leaderboard takes complete rows only); its row outside its own "
              "direction is where SFT and CPO start for M->L, since they train the L->M base (as the paper trains "
              "the L->M Meditron)."]  # fmt: skip
    lines += ["", "Best-epoch selection (validation loss per epoch; the kept epoch in bold):", ""]
    for name, info in summary["trained"].items():
        if "base" not in name or not info.get("eval_curve"):
            continue
        kept = (info.get("selection") or {}).get("kept_epoch")
        curve = ", ".join(
            (
                f"**{e['epoch']:g}: {e['eval_loss']:.3f}**"
                if e["epoch"] == kept
                else f"{e['epoch']:g}: {e['eval_loss']:.3f}"
            )
            for e in info["eval_curve"]
        )
        lines.append(f"- `{name}`: {curve} ({info.get('seconds', 0):.0f} s)")
        if info["eval_curve"] and kept == info["eval_curve"][-1]["epoch"]:
            lines[-1] += (
                " — still improving at the last epoch: the budget, not the validation loss, stopped it"
            )
    return lines + [""]


def _word(outcome: str | None) -> str:
    return {"better": "above it", "worse": "below it", "noise": "inside its noise"}.get(
        outcome or "", "not measured"
    )


def hallucination_table(rows) -> list[str]:
    lines = ["## Hallucination (Section 3.4)", "",
             "| Model | L->M win rate | L->M mean chrF | L->M mean dLen (chars) | M->L win rate (NLI) | M->L mean dLen (tokens) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for role in ORDER:
        if role not in rows:
            continue
        l2m, m2l = rows[role].get("caption2smiles"), rows[role].get("smiles2caption")

        def h(entry, key, ci_key=None):
            if not entry:
                return "—"
            value = entry["hallucination"].get(key)
            ci = entry["ci"].get(ci_key) if ci_key else None
            return f"{_f(value)} [{_f(ci[0])}, {_f(ci[1])}]" if ci and None not in ci else _f(value, 2)

        lines.append(f"| {role} | {h(l2m, 'win_rate', 'win_rate')} | {h(l2m, 'mean_chrf')} | {h(l2m, 'mean_dlen')} | "
                     f"{h(m2l, 'win_rate', 'win_rate')} | {h(m2l, 'mean_dlen')} |")  # fmt: skip
    lines += ["", "The M->L win rate needs the NLI cross-encoder `cross-encoder/nli-deberta-v3-base`, which this "
              "offline machine does not have: the study scores it with the untrained NLI stand-in the quickstart "
              "uses, so that column (and Figure 1's NLI panel) says nothing about the models. dLen and the "
              "L->M chrF/win rate are real.", ""]  # fmt: skip
    return lines


def claims_section(found: list[dict[str, Any]]) -> list[str]:
    lines = ["## Claims 1-3 at this scale (computed from the CIs)", ""]
    for c in found:
        h = c["headline"]
        lines.append(f"- **{c['claim']}: {h['verdict']}** ({h['a']} vs {h['b']}: {len(h['better'])} better, "
                     f"{len(h['worse'])} worse, {len(h['noise'])} inside the noise, of {h['n']} metrics).")  # fmt: skip
        for t in c["comparisons"]:
            detail = "; ".join(f"{k}: {', '.join(t[k])}" for k in ("better", "worse") if t[k])
            lines.append(f"  - {t['a']} vs {t['b']}: {t['verdict']}" + (f" ({detail})" if detail else ""))
    return lines + [""]


def figures(summary: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Figures 1-2 of the paper for every evaluated model, drawn by the leaderboard's plot code."""
    from lmolt_hub.leaderboard import plots
    from lmolt_hub.leaderboard.build import load_samples
    from lmolt_hub.leaderboard.records import verified_record

    records, samples = [], {}
    for item in summary["results"]:
        path = Path(item["results"])
        record = verified_record(json.loads(path.read_text(encoding="utf-8")), source=str(path))
        record.model = record.model.split("/")[-1]
        records.append(record)
        samples[record.row_id] = load_samples(record, path)
    out_dir.mkdir(parents=True, exist_ok=True)
    return plots.write_plots(records, samples, out_dir)


def render(summary: dict[str, Any], figure_files: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    rows = load_rows(summary)
    columns = paper_columns()
    found = claims(rows, columns)
    scale, model = summary["scale"], summary["model"]
    n_eval = next(iter(rows.get("SFT", {}).values()), {}).get("n")
    status = "TINY (CI) RUN: numbers say nothing. " if summary.get("tiny") else ""
    lines = [
        "# cpu-study: the method at laptop scale on ChEBI-20", "",
        f"_{status}Generated by `lmolt-hub study cpu` (lmolt_hub.pipelines.study); regenerate, do not edit. "
        f"Track: **{summary['track']}** (its own leaderboard, never mixed with the L+M-24 rows)._", "",
        "## Setting", "",
        f"- Data: ChEBI-20 `test.txt` (all pairs, both directions) trains; rejected outputs are the bundled "
        f"MolT5-large outputs for those inputs. MolT5 itself was trained on ChEBI-20 train, so it saw neither "
        f"test.txt nor validation.txt. Held-out: {n_eval} pairs sampled from `validation.txt` minus every "
        f"molecule (InChIKey) in training.",
        f"- Bases: two {model['num_layers']}-layer, {model['hidden_size']}-wide Llamas ({model['parameters']:,} "
        f"parameters, {model['vocab']}-token BPE trained on test.txt), one per direction, trained from scratch "
        "on every training pair; the epoch with the lowest validation loss is kept.",
        f"- Methods (recipes/cpu-study/): {', '.join(r for r in ORDER[1:] if r in rows)}: LoRA on the "
        f"L->M base, on a {_slice_percent()}% preference slice, both directions at once; SLERP and TIES 19:1 merges of the "
        "two bases, then CPO on the merge (the chain). Same recipes, chain and harness as the Meditron path.",
        f"- Evaluation: the harness, greedy, at most {scale['max_new_tokens']} new tokens, "
        f"{scale['bootstrap_resamples']} bootstrap resamples (95% CIs).",
        f"- Cost: **{summary['wall_s_total'] / 60:.1f} min wall** in all "
        f"({summary.get('cpu_s_total', 0) / 60:.1f} CPU-minutes over all processes), **peak memory {summary['peak_rss_mb'] / 1024:.2f} GB** "
        f"(all processes), {scale['jobs']} worker processes on a 2-core machine shared with other jobs. Stages: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in summary["timings_s"].items()) + ".",
        "",
    ]  # fmt: skip
    lines += claims_section(found)
    lines += bases_section(summary, rows)
    lines += ["## Results (Tables 1-2 layout)", "",
              "The paper's numbers are Meditron-7B on 3k L+M-24 pairs; ours are a sub-million-parameter model "
              "on ChEBI-20. Compare directions of effects (next table), not absolute values.", ""]  # fmt: skip
    for d in DIRECTIONS:
        lines += results_table(rows, d, columns[d])
    lines += effects_table(rows, columns)
    lines += hallucination_table(rows)
    lines += ["## Figures 1-2 (hallucination)", ""]
    lines += [f"![{k}]({FIGURES}/{v})" for k, v in figure_files.items()] + [""]
    lines += ["## Left out", "", "- KTO (the paper reports it collapsed; not in the claims)."]
    if "CPO" in rows and "DPO (sigmoid)" not in rows:
        lines += ["- DPO (both losses): skipped in this run; "
                  "`lmolt-hub study cpu` runs it unless `--no-dpo`."]  # fmt: skip
    lines += [
              "- The real NLI cross-encoder (offline machine): the M->L NLI win rate uses an untrained stand-in.",
              "- QLoRA: LoRA runs on full-precision weights (4-bit saves nothing at this size and is slower on a CPU).",
              "- Significance is by non-overlapping 95% CIs, not a paired test: conservative.", ""]  # fmt: skip
    return "\n".join(lines), found


def _slice_percent() -> str:
    import yaml

    from lmolt_hub.resources import recipe

    raw = yaml.safe_load(recipe("cpu-study/data/slice.yaml").read_text(encoding="utf-8"))
    return f"{100 * raw['splits']['train']['fraction']:g}"


def write_study_report(summary: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write the report and its figures next to it (``<dir>/cpu-study/``); return paths and verdicts."""
    figure_files = figures(summary, path.parent / FIGURES)
    text, found = render(summary, figure_files)
    path.write_text(text, encoding="utf-8")
    return {
        "report": str(path),
        "figures": [str(path.parent / FIGURES / f) for f in figure_files.values()],
        "claims": [{"claim": c["claim"], "verdict": c["headline"]["verdict"]} for c in found],
    }


def publish_docs(root: Path, docs: Path) -> None:
    """Copy the report and its figures into ``docs`` (docs/cpu-study.md, docs/cpu-study/*.png)."""
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "cpu-study.md", docs / "cpu-study.md")
    (docs / FIGURES).mkdir(exist_ok=True)
    for png in sorted((root / FIGURES).glob("*.png")):
        shutil.copyfile(png, docs / FIGURES / png.name)


def paper_claims_summary(found: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {c["claim"]: c["headline"]["verdict"] for c in found}
