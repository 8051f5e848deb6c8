"""The cpu-study report: the structure figure, the ancestor, the bases against a random init, Tables
1-2 laid out like the paper's, the hallucination metrics, Figures 1-2 and a verdict on the paper's
claims 1-3, each decided by a paired bootstrap with a Holm correction over its metrics (``paired``),
beside last round's verdict (bases trained from scratch).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from functools import cache
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
    "TIES (exact 19:1)+CPO": ("Meditron-7B", "TIES", "CPO"),
    "SLERP+CPO": ("Meditron-7B", "SLERP", "CPO"),
    "SLERP+CPO (authors' schedule)": ("Meditron-7B", "SLERP", "CPO"),
}
ORDER = list(PAPER_ROWS)
# Changes to the sizes and budgets after the first code of study 2, each made before any study-2 claim
# was computed (the report lists them so a reader can judge).
DECISIONS = [
    "ancestor steps 1,000 -> 4,000 (4.1M -> 16.4M tokens, same shape): the first run on a free machine "
    "showed 1,000 steps take about 5 of the ancestor command's 60 minutes; the study's own cost is unchanged",
]
FUSED = ["SLERP+CPO (authors' schedule)", "SLERP+CPO", "TIES+CPO", "TIES (exact 19:1)+CPO"]
# Last round's M->L BLEU-2 of the models that start from the L->M base (study 1, from scratch; as
# the issue that asked for the ancestor quotes them): what "inherits no language" looked like.
PREVIOUS_M2L_BLEU2 = {"Base L->M (caption2smiles)": 0.000, "SFT": 0.004, "CPO": 0.000}
# Last round (study 1: both bases trained from scratch, 500 held-out pairs, non-overlapping CIs),
# as docs/cpu-study.md reported it before the ancestor: kept so a reader sees what the ancestor changed.
PREVIOUS_VERDICT = [
    (
        "1. Preference training on the slice beats SFT",
        "fails (CPO vs SFT: 0 better, 6 worse, 6 inside the noise, of 12)",
    ),
    ("2. CPO beats the base models", "fails (CPO vs Base: 0 better, 6 worse, 6 inside the noise, of 12)"),
    (
        "3. Fusion then CPO helps further over CPO",
        "mixed (SLERP+CPO vs CPO: 6 better, 1 worse, 5 inside the noise, of 12)",
    ),
]


# -- loading --------------------------------------------------------------------------------


def load_rows(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """role -> direction -> {results, ci, hallucination, model, path}; the two bases form "Base"."""
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
                "path": item["results"],
                "results": doc["results"][d],
                "ci": (doc.get("confidence_intervals") or {}).get(d, {}),
                "hallucination": (doc.get("hallucination") or {}).get(d, {}),
                "n": doc["n_samples"][d],
            }
    return rows


@cache
def _paper_tables() -> dict[str, Any]:
    return json.loads(Path(PAPER_TABLES).read_text(encoding="utf-8"))


def paper_columns() -> dict[str, dict[str, str]]:
    """direction -> {paper column: our metric key}."""
    from lmolt_hub.leaderboard.records import paper_metric_key

    tables = _paper_tables()
    return {
        d: {col: paper_metric_key(d, col) for col in tables[PAPER_KEYS[d]]["metrics"]} for d in DIRECTIONS
    }


def paper_value(role: str, direction: str, column: str) -> float | None:
    tables = _paper_tables()
    model, fusion, method = PAPER_ROWS[role]
    for row in tables[PAPER_KEYS[direction]]["rows"]:
        if (row["model"], row.get("fusion"), row["method"]) == (model, fusion, method):
            return row.get(column)
    return None


# -- comparisons: paired bootstrap, Holm over a comparison's metrics -----------------------


class Comparer:
    """Paired tests between study rows; each model-direction is scored once and reused."""

    def __init__(self, rows, columns: dict[str, dict[str, str]], resamples: int):
        self.rows, self.columns, self.resamples = rows, columns, resamples
        self._scored: dict[tuple[str, str], Any] = {}
        self._compared: dict[tuple[str, str], dict[str, Any]] = {}  # claims and the effects table share

    def _scores(self, path: str, direction: str):
        from lmolt_hub.pipelines.study.paired import load_outputs, score_outputs

        if (path, direction) not in self._scored:
            self._scored[path, direction] = score_outputs(direction, load_outputs(path, direction))
        return self._scored[path, direction]

    def tests(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """ "<dir> <column>" -> paired result of entries-by-direction ``a`` against ``b``."""
        from lmolt_hub.pipelines.study.paired import paired_bootstrap

        out = {}
        for d in DIRECTIONS:
            if d not in a or d not in b:
                continue
            keys = {k: col for col, k in self.columns[d].items() if k != "fcd"}  # FCD: no per-row statistics
            res = paired_bootstrap(d, self._scores(a[d]["path"], d), self._scores(b[d]["path"], d),
                                   list(keys), self.resamples)  # fmt: skip
            for k, r in res.items():
                out[f"{Direction(d).alias} {keys[k]}"] = r | {"metric": k, "direction": d}
        return out

    def compare(self, role_a: str, role_b: str) -> dict[str, Any]:
        from lmolt_hub.pipelines.study.paired import decide

        if (role_a, role_b) not in self._compared:
            tests = self.tests(self.rows.get(role_a, {}), self.rows.get(role_b, {}))
            self._compared[role_a, role_b] = decide(tests) | {"a": role_a, "b": role_b, "n": len(tests)}
        return self._compared[role_a, role_b]


def claims(cmp: Comparer) -> list[dict[str, Any]]:
    """Claims 1-3 of the paper: a headline comparison (the verdict) and the related comparisons.
    Fixed before any run: claim 3's headline is the paper's own row (SLERP, the authors' schedule)."""
    rows = cmp.rows
    pref = [r for r in ("CPO", "DPO (sigmoid)", "DPO (kto_pair)") if r in rows]
    fused = [r for r in FUSED if r in rows]
    head3 = fused[0] if fused else "SLERP+CPO (authors' schedule)"
    return [
        {"claim": "1. Preference training (CPO/DPO) on the slice beats SFT on the slice",
         "headline": cmp.compare("CPO", "SFT"), "comparisons": [cmp.compare(r, "SFT") for r in pref[1:]]},
        {"claim": "2. CPO beats the base models trained on all the data",
         "headline": cmp.compare("CPO", "Base"), "comparisons": []},
        {"claim": "3. SLERP/TIES fusion then CPO helps further over CPO",
         "headline": cmp.compare(head3, "CPO"),
         "comparisons": [cmp.compare(r, "CPO") for r in fused if r != head3]
         + [cmp.compare(r, "Base") for r in fused]},
    ]  # fmt: skip


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


def effects_table(cmp: Comparer) -> list[str]:
    """Each method against SFT: our paired outcome beside the paper's direction."""
    rows, columns = cmp.rows, cmp.columns
    lines = ["### Direction of each difference against SFT (ours, paired, beside the paper's)", "",
             "▲ better, ▼ worse (by the metric's own direction; paired bootstrap, Holm over the row's "
             "metrics), ≈ no significant difference; the paper's arrow is its printed value against its SFT row.", ""]  # fmt: skip
    cols = [(d, c, k) for d in DIRECTIONS for c, k in columns[d].items() if k != "fcd"]
    lines += ["| vs SFT | " + " | ".join(f"{Direction(d).alias} {c}" for d, c, _ in cols)
              + " |", "|---|" + "---|" * len(cols)]  # fmt: skip
    sym = {"better": "▲", "worse": "▼", "noise": "≈", None: "n/a"}
    for role in ORDER:
        if role in ("SFT",) or role not in rows:
            continue
        tests = cmp.compare(role, "SFT")["tests"]
        cells = []
        for d, c, k in cols:
            ours = sym[tests.get(f"{Direction(d).alias} {c}", {}).get("outcome")]
            p, s = paper_value(role, d, c), paper_value("SFT", d, c)
            higher = METRIC_INFO[k]["higher_is_better"]
            paper = (
                "n/a" if p is None or s is None else ("=" if p == s else "▲" if (p > s) == higher else "▼")
            )
            cells.append(f"{ours} / {paper}")
        lines.append(f"| {role} | {' | '.join(cells)} |")
    return lines + [""]


def _doc(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


BASE_KEYS = [("caption2smiles", "validity", "L->M validity"), ("caption2smiles", "bleu", "L->M BLEU"),
             ("smiles2caption", "bleu2", "M->L BLEU-2"), ("smiles2caption", "rougeL", "M->L ROUGE-L")]  # fmt: skip


def _base_entries(summary) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(random init, own direction -> base) entries by direction, for ``Comparer.tests``."""
    rand_doc = _doc(summary["random"]["results"])
    rand = {d: {"path": summary["random"]["results"], "results": rand_doc["results"][d],
                "ci": rand_doc["confidence_intervals"].get(d, {})} for d in rand_doc["directions"]}  # fmt: skip
    bases = {}
    for item in summary["results"]:
        if own := summary["roles"][item["model"]].get("own"):
            doc = _doc(item["results"])
            bases[own] = {d: {"path": item["results"], "results": doc["results"][d],
                              "ci": doc["confidence_intervals"].get(d, {})} for d in doc["results"]}  # fmt: skip
    return rand, bases


def base_tests(rand, bases, cmp: Comparer) -> dict[str, dict[str, dict[str, Any]]]:
    """own direction -> "L->M BLEU"-style name -> paired test of that base (``_base_entries``) against
    the random init (Holm over the base's ``BASE_KEYS`` metrics of both directions)."""
    from lmolt_hub.pipelines.study.paired import decide

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for own, entry in bases.items():
        tests = decide(cmp.tests(entry, rand))["tests"]
        for _, k, name in BASE_KEYS:
            for t in tests.values():
                if t["metric"] == k and Direction(t["direction"]).alias == name.split()[0]:
                    out.setdefault(own, {})[name] = t
    return out


def bases_section(summary, rand, bases, found: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Each base in both directions against the random init (``base_tests``: paired on the pairs both
    were scored on)."""
    keys = BASE_KEYS
    n_rand = _doc(summary["random"]["results"])["n_samples"].get("caption2smiles")
    lines = ["## Do the bases learn, in both directions?", "",
             f"The random init (`{summary['org']}/lmolt-cpu-init`: the ancestor's architecture, tokenizer and "
             f"seed, untrained; scored on the first {n_rand} held-out pairs) against each base (the whole "
             "held-out set). Each base is scored in both directions; its row outside its own direction is "
             "where SFT and CPO start for M->L, since they train the L->M base (as the paper trains the L->M Meditron).", "",
             "| Model | " + " | ".join(k[2] for k in keys) + " |", "|---|" + "---|" * len(keys)]  # fmt: skip
    for label, entry in [("random init", rand), ("base L->M (caption2smiles)", bases.get("caption2smiles", {})),
                         ("base M->L (smiles2caption)", bases.get("smiles2caption", {}))]:  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(_cell(entry.get(d), k) for d, k, _ in keys) + " |")
    lines += ["", f"Paired difference base − random init on the {n_rand} shared pairs (95% CI; Holm over "
              "each base's metrics of both directions):", "",
              "| Base | metric | difference [95% CI] | p (Holm) | outcome |", "|---|---|---|---|---|"]  # fmt: skip
    for own, label in (("caption2smiles", "L->M base"), ("smiles2caption", "M->L base")):
        for _, _, name in BASE_KEYS:
            if t := found.get(own, {}).get(name):
                lines.append(f"| {label} | {name} | {t['diff']:.4g} [{t['ci'][0]:.4g}, {t['ci'][1]:.4g}] | "
                             f"{_f(t['p_holm'])} | {t['outcome']} |")  # fmt: skip
    lines += ["", "Best-epoch selection (validation loss per epoch; the kept epoch in bold):", ""]
    for name, info in summary["trained"].items():
        if "base" not in name or not info.get("eval_curve"):
            continue
        kept = (info.get("selection") or {}).get("kept_epoch")
        curve = ", ".join(
            f"**{e['epoch']:g}: {e['eval_loss']:.3f}**"
            if e["epoch"] == kept
            else f"{e['epoch']:g}: {e['eval_loss']:.3f}"
            for e in info["eval_curve"]
        )
        lines.append(f"- `{name}`: {curve} ({info.get('seconds', 0):.0f} s)")
        if info["eval_curve"] and kept == info["eval_curve"][-1]["epoch"]:
            lines[-1] += (
                " — still improving at the last epoch: the budget, not the validation loss, stopped it"
            )
        else:
            lines[-1] += " — validation loss stopped improving before the last epoch"
    return lines + [""]


def ancestor_section(summary) -> list[str]:
    info = summary.get("ancestor") or {}
    if "assessment" not in info:
        return []
    a, t, sc = info["assessment"], info["training"], info["scale"]
    lines = ["## The ancestor (the Meditron-7B analog)", "",
             f"`{summary['org']}/lmolt-cpu-ancestor`: {info['shape']['parameters']:,} parameters, pretrained on "
             f"{t['tokens']:,} tokens ({t['epochs']} epochs of the corpus; {sc['steps']} steps of {sc['batch_size']} x "
             f"{sc['block']} tokens, AdamW lr {sc['lr']}, cosine) in {t['seconds']:.0f} s of training "
             f"({info.get('seconds', 0):.0f} s for the whole stage, corpus and pushes included).", "",
             "| corpus (documents) | train | held-out |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {m} | {c['train']:,} | {c['heldout']:,} |" for m, c in info["corpus"].items()]
    lines += ["", f"Every InChIKey of ChEBI-20 validation.txt ({info['excluded_keys']:,} molecules, a superset of "
              f"the evaluation pairs) is excluded from the pretraining SMILES (dropped: {info['dropped']}).", "",
              "| held-out perplexity (per token) | random init | ancestor |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {m} | {info['init_perplexity'].get(m)} | {p} |" for m, p in a["perplexity"].items()]
    v = a["smiles_samples"]
    lines += ["", f"Unconditional SMILES samples (after `<smiles>`, temperature 1): **{v['valid']}/{v['n']} valid "
              f"by RDKit ({v['validity']:.1%})**, {v['unique_valid']} unique valid. Sources and licences:", ""]  # fmt: skip
    from lmolt_hub.pipelines.study.corpus import LICENCES

    lines += [f"- {src}: {lic}" for src, lic in LICENCES.items()]
    return lines + [""]


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


def _test_row(name: str, t: dict[str, Any]) -> str:
    sym = {"better": "▲ better", "worse": "▼ worse", "noise": "≈"}[t["outcome"]]
    return (f"| {name} | {t['diff']:.4g} | [{t['ci'][0]:.4g}, {t['ci'][1]:.4g}] | {_f(t['p'])} | "
            f"{_f(t['p_holm'])} | {sym} |")  # fmt: skip


def _which(names: list[str]) -> str:
    """ "all 6 M->L metrics and L->M BLEU, Validity" from test names like "M->L BLEU-2"."""
    groups: dict[str, list[str]] = {}
    for n in names:
        alias, metric = n.split(" ", 1)
        groups.setdefault(alias, []).append(metric)
    total = {"M->L": 6, "L->M": 6}  # metrics per direction in the paired tests (FCD left out)
    parts = [f"all {len(ms)} {a} metrics" if len(ms) == total.get(a) else f"{a} {', '.join(ms)}"
             for a, ms in groups.items()]  # fmt: skip
    return " and ".join(parts) if parts else "nothing"


def _says(t: dict[str, Any]) -> str:
    return (f"{t['a']} vs {t['b']}: **{t['verdict']}**, better on {_which(t['better'])}, "
            f"worse on {_which(t['worse'])}")  # fmt: skip


def plain_verdict(found: list[dict[str, Any]], rows, bases: dict[str, dict[str, dict[str, Any]]],
                  l2m_base_m2l: float | None = None) -> list[str]:  # fmt: skip
    """The verdict in words, generated from the same tests as the tables (nothing typed by hand)."""
    lines = ["## Verdict in plain words", "",
             "Generated from the paired tests below; \"undecided\" is the pre-declared rule's word for "
             "\"significantly better on some metrics and worse on others\" as well as for \"no significant "
             "difference\", so each line says which.", ""]  # fmt: skip
    for c in found:
        lines.append(f"- **{c['claim']}**: {_says(c['headline'])}.")
        lines += [f"  - {_says(t)}." for t in c["comparisons"]]
    m2l = bases.get("caption2smiles", {})
    if (b2 := m2l.get("M->L BLEU-2")) and (rl := m2l.get("M->L ROUGE-L")):
        above = "better" in (b2["outcome"], rl["outcome"])
        lines.append(f"- **Does the L->M base inherit the ancestor's language?** "
                     f"{'Yes' if above else 'No'}: against the random init, its M->L BLEU-2 is {b2['outcome']} "
                     f"(difference {b2['diff']:.3g}) and its M->L ROUGE-L {rl['outcome']} (difference {rl['diff']:.3g}). "
                     + ("" if above else "It does not caption: the ancestor saw no pairs, and four epochs on L->M "
                        "alone did not teach M->L. That is a finding, not a failure of the run; what it inherits "
                        "shows instead in how far SFT on the slice gets in M->L (next line)."))  # fmt: skip
    then = ", ".join(f"{k} {v:.3f}" for k, v in PREVIOUS_M2L_BLEU2.items())
    now = ", ".join(f"{k} {rows[k]['smiles2caption']['results']['bleu2']:.3f}" for k in ("SFT", "CPO")
                    if "smiles2caption" in rows.get(k, {}))  # fmt: skip
    if now and l2m_base_m2l is not None:
        now = f"Base L->M (caption2smiles) {l2m_base_m2l:.3f}, {now}"
    if now:
        lines.append(f"- **What the ancestor changed** (M->L BLEU-2 of models trained from the L->M base on the "
                     f"slice): last round, from scratch: {then}; this round: {now}.")  # fmt: skip
    return lines + [""]


def claims_section(found: list[dict[str, Any]]) -> list[str]:
    lines = ["## Claims 1-3 at this scale (paired bootstrap, Holm)", "",
             "A comparison's metrics are one family (Holm, alpha 0.05). A claim **holds** when at least one "
             "metric is significantly better and none worse, **fails** when at least one is worse and none "
             "better, and is **undecided** otherwise. FCD is not in the tests (no per-pair statistics). "
             "p = 0.000: no resample crossed 0 (p < 1/resamples).", "",
             "| Claim | this round (ancestor) | last round (from scratch, overlapping CIs) |", "|---|---|---|"]  # fmt: skip
    for c, (_, before) in zip(found, PREVIOUS_VERDICT, strict=False):
        h = c["headline"]
        lines.append(f"| {c['claim']} | **{h['verdict']}** ({h['a']} vs {h['b']}: {len(h['better'])} better, "
                     f"{len(h['worse'])} worse, of {h['n']} metrics) | {before} |")  # fmt: skip
    lines += [""]
    for c in found:
        for t in [c["headline"], *c["comparisons"]]:
            lines += [f"### {t['a']} − {t['b']} ({c['claim'].split('.')[0]}; {t['verdict']})", "",
                      "| metric | difference | 95% CI | p | p (Holm) | outcome |", "|---|---|---|---|---|---|"]  # fmt: skip
            lines += [_test_row(k, r) for k, r in t["tests"].items()] + [""]
    return lines


def structure_figure(out: Path) -> str:
    """The study's structure (ancestor -> bases -> method) as a small PNG; returns its file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    boxes = {
        "ancestor": (0.5, 0.88, "ancestor\n(WordNet + ZINC + ChEBI-20, unpaired)"),
        "l2m": (0.25, 0.6, "base L->M\n(full fine-tune, all pairs)"),
        "m2l": (0.75, 0.6, "base M->L\n(full fine-tune, all pairs)"),
        "single": (0.2, 0.25, "SFT / DPO x2 / CPO\n(LoRA on the L->M base, 10% slice)"),
        "merge": (0.72, 0.3, "SLERP / TIES 19:1\n(task vectors from the ancestor)"),
        "chain": (0.72, 0.07, "CPO on each merge\n(ours; authors' schedule)"),
    }
    edges = [("ancestor", "l2m"), ("ancestor", "m2l"), ("l2m", "single"), ("l2m", "merge"), ("m2l", "merge"),
             ("merge", "chain")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.set_axis_off()
    drawn = {k: ax.text(x, y, text, ha="center", va="center", fontsize=8.5,
                        bbox={"boxstyle": "round", "fc": "#eef3fb", "ec": "#4a6fa5"})
             for k, (x, y, text) in boxes.items()}  # fmt: skip
    for a, b in edges:  # from the bottom of box a to the top of box b, so every arrowhead shows
        ax.annotate("", xy=(0.5, 1.0), xycoords=drawn[b], xytext=(0.5, 0.0), textcoords=drawn[a],
                    arrowprops={"arrowstyle": "->", "color": "0.4", "shrinkA": 6, "shrinkB": 6})  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "structure.png", dpi=110)
    plt.close(fig)
    return "structure.png"


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


def _cost(summary: dict[str, Any]) -> list[str]:
    scale, anc = summary["scale"], summary.get("ancestor_run")
    lines = [f"- Cost of `lmolt-hub study cpu`: **{summary['wall_s_total'] / 60:.1f} min wall** "
             f"({summary.get('cpu_s_total', 0) / 60:.1f} CPU-minutes over all processes), **peak memory "
             f"{summary['peak_rss_mb'] / 1024:.2f} GiB** (all processes), {scale['jobs']} worker processes. Stages: "
             + ", ".join(f"{k} {v:.0f} s" for k, v in summary["timings_s"].items()) + "."]  # fmt: skip
    if anc:
        lines.append(f"- Cost of `lmolt-hub study cpu --ancestor` (a separate command, run first): "
                     f"**{anc['wall_s'] / 60:.1f} min wall** ({anc['cpu_s'] / 60:.1f} CPU-minutes), peak memory "
                     f"{anc['peak_rss_mb'] / 1024:.2f} GiB.")  # fmt: skip
    lines.append(f"- Cache state of the timed run: {summary.get('cache_state') or 'not recorded'}.")
    return lines


def render(summary: dict[str, Any], figure_files: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    rows = load_rows(summary)
    columns = paper_columns()
    scale, model = summary["scale"], summary["model"]
    cmp = Comparer(rows, columns, scale["bootstrap_resamples"])
    found = claims(cmp)
    n_eval = next(iter(rows.get("SFT", {}).values()), {}).get("n")
    status = "TINY (CI) RUN: numbers say nothing. " if summary.get("tiny") else ""
    lines = [
        "# cpu-study: the method at laptop scale on ChEBI-20, from a generalist ancestor", "",
        f"_{status}Generated by `lmolt-hub study cpu` (lmolt_hub.pipelines.study); regenerate, do not edit. "
        f"Track: **{summary['track']}** (its own leaderboard, never mixed with the L+M-24 rows)._", "",
        "![structure](" + FIGURES + "/structure.png)", "",
        "## Setting (sizes and budgets fixed before any run)", "",
        f"- Ancestor: one {model['num_layers']}-layer, {model['hidden_size']}-wide Llama ({model['parameters']:,} "
        f"parameters, {model['vocab']}-token BPE trained on its pretraining text), pretrained with a causal LM "
        "objective on unpaired English and unpaired SMILES (below): the analog of Meditron-7B.",
        f"- Data: ChEBI-20 `test.txt` (all pairs, both directions) trains; rejected outputs are the bundled "
        f"MolT5-large outputs for those inputs. Held-out: {n_eval} pairs sampled from `validation.txt` minus every "
        f"molecule (InChIKey) in training.",
        "- Bases: one full fine-tune of the ancestor per direction on every training pair (the LPM24 analogs); "
        "the epoch with the lowest validation loss is kept.",
        f"- Methods (recipes/cpu-study/): {', '.join(r for r in ORDER[1:] if r in rows)}: LoRA on the "
        f"L->M base, on a {_slice_percent()}% preference slice, both directions at once; SLERP and TIES 19:1 merges of the "
        "two bases (TIES task vectors from the ancestor; normalize true = the paper's row, false = exact 19:1), "
        "then CPO on the merge (ours, and for SLERP also the authors' 1-epoch schedule: linear, warmup 0.1, "
        "max_grad_norm 1.0, lr 5e-5). Same recipes, chain and harness as the Meditron path.",
        f"- Evaluation: the harness, greedy, at most {summary.get('max_new_tokens', scale['max_new_tokens'])} new "
        f"tokens (1.1 x the 99th percentile of the references' lengths, ceiling {scale['max_new_tokens']}), "
        f"{scale['bootstrap_resamples']} bootstrap resamples.",
        *_cost(summary),
        *(f"- Changed before any claim was computed: {d}." for d in DECISIONS), "",
    ]  # fmt: skip
    rand, bases = _base_entries(summary)
    vs_random = base_tests(rand, bases, cmp)
    l2m_base = bases.get("caption2smiles", {}).get("smiles2caption")
    lines += plain_verdict(found, rows, vs_random, l2m_base and l2m_base["results"].get("bleu2"))
    lines += claims_section(found)
    lines += ancestor_section(summary)
    lines += bases_section(summary, rand, bases, vs_random)
    lines += ["## Results (Tables 1-2 layout)", "",
              "The paper's numbers are Meditron-7B on 3k L+M-24 pairs; ours are a few-million-parameter model "
              "on ChEBI-20. Compare directions of effects (next table), not absolute values.", ""]  # fmt: skip
    for d in DIRECTIONS:
        lines += results_table(rows, d, columns[d])
    lines += effects_table(cmp)
    lines += hallucination_table(rows)
    lines += ["## Figures 1-2 (hallucination)", ""]
    lines += [f"![{k}]({FIGURES}/{v})" for k, v in figure_files.items() if k != "structure"] + [""]
    lines += ["## Left out", "", "- KTO (the paper reports it collapsed; not in the claims)."]
    if "CPO" in rows and "DPO (sigmoid)" not in rows:
        lines += ["- DPO (both losses): skipped in this run; "
                  "`lmolt-hub study cpu` runs it unless `--no-dpo`."]  # fmt: skip
    lines += [
              "- The real NLI cross-encoder (offline machine): the M->L NLI win rate uses an untrained stand-in.",
              "- QLoRA: LoRA runs on full-precision weights (4-bit saves nothing at this size and is slower on a CPU).",
              "- FCD in the paired tests (no per-pair statistics); it is in the results tables.", ""]  # fmt: skip
    return "\n".join(lines), found


def _slice_percent() -> str:
    import yaml

    from lmolt_hub.resources import recipe

    raw = yaml.safe_load(recipe("cpu-study/data/slice.yaml").read_text(encoding="utf-8"))
    return f"{100 * raw['splits']['train']['fraction']:g}"


def write_study_report(summary: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write the report and its figures next to it (``<dir>/cpu-study/``); return paths and verdicts."""
    figure_files = figures(summary, path.parent / FIGURES)
    figure_files["structure"] = structure_figure(path.parent / FIGURES)
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
