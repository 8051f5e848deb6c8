"""The paper's hallucination figures, redrawn from accepted samples (matplotlib, Agg, PNG).

* Figure 1 (``figure1_distributions.png``): per model, the distributions of
  dLen and chrF for L->M (caption2smiles) and of dLen and NLI entailment for
  M->L (smiles2caption).
* Figure 2 (``figure2_win_rates.png``): each model's win rate per direction,
  and the cross win-rate matrix between models per direction (row model against
  column model on the same pairs: wins where only it wins, plus half the ties;
  0.5 = no difference), computed with ``lmolt_hub.metrics.hallucination.cross_win_rate``.

Only ``verified`` rows have samples, so only they appear in the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmolt_hub.formats.direction import Direction
from lmolt_hub.leaderboard.records import Record

FIGURE1 = "figure1_distributions.png"
FIGURE2 = "figure2_win_rates.png"
DIRECTION_LABELS = {d.value: d.label for d in Direction}  # "L->M (caption2smiles)"
_PLOT_ORDER = (Direction.CAPTION2SMILES.value, Direction.SMILES2CAPTION.value)  # L->M first, as the paper
# Per-sample metric names written by the harness (first one present wins).
SERIES_KEYS: dict[str, tuple[str, ...]] = {
    "dlen": ("dlen", "d_len", "dLen", "delta_len"),
    "chrf": ("chrf", "chrF", "chrf_123"),
    "nli": ("entailment", "nli_entailment", "nli_entail", "nli_entailment_prob"),
    "win": ("win", "hallucination_win", "is_win"),
}
FIGURE1_PANELS = (
    ("caption2smiles", "dlen", "dLen (characters)"),
    ("caption2smiles", "chrf", "chrF"),
    ("smiles2caption", "dlen", "dLen (tokens)"),
    ("smiles2caption", "nli", "NLI entailment probability"),
)
# PNG text chunks hold the matplotlib version by default; drop it so bytes depend on data only.
_PNG_METADATA = {"Software": None}


def sample_value(row: dict[str, Any], series: str) -> Any:
    metrics = row.get("metrics") or {}
    for key in SERIES_KEYS[series]:
        if key in metrics:
            return metrics[key]
        if key in row:
            return row[key]
    return None


def series(rows: Sequence[dict[str, Any]], name: str) -> list[float]:
    values = [sample_value(r, name) for r in rows]
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_label(text: str, width: int = 32) -> str:
    """A label matplotlib draws literally: shortened, and with ``$`` escaped (it would start mathtext)."""
    if len(text) > width:
        text = text[: width - 1] + "\u2026"
    return text.replace("$", r"\$")


def model_labels(records: Sequence[Record]) -> dict[str, str]:
    """row_id -> a short label; the revision is added where one model appears more than once."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.model] = counts.get(r.model, 0) + 1
    return {
        r.row_id: plot_label(r.model if counts[r.model] == 1 else f"{r.model}@{(r.revision or '?')[:7]}")
        for r in records
    }


def figure1(models: list[tuple[str, dict[str, list[dict]]]], path: Path) -> None:
    plt = _pyplot()
    import numpy as np

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (direction, name, xlabel) in zip(axes.flat, FIGURE1_PANELS, strict=True):
        values = [series(samples.get(direction, []), name) for _, samples in models]
        pooled = [v for vs in values for v in vs]
        if pooled:
            bins = np.histogram_bin_edges(pooled, bins=30)  # shared bins keep the models comparable
            for i, vs in enumerate(values):
                if vs:
                    ax.hist(
                        vs,
                        bins=bins,
                        histtype="step",
                        density=True,
                        linewidth=1.5,
                        color=colors[i % len(colors)],
                    )
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(DIRECTION_LABELS[direction])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
    if models:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=colors[i % len(colors)], lw=2) for i in range(len(models))]
        fig.legend(handles, [label for label, _ in models], loc="lower center", ncol=min(4, len(models)))
    fig.suptitle("Figure 1: length difference, chrF and NLI entailment per model")
    fig.tight_layout(rect=(0, 0.03 + 0.03 * ((len(models) + 3) // 4), 1, 1))
    fig.savefig(path, format="png", dpi=90, metadata=_PNG_METADATA)
    plt.close(fig)


def _win_flags(rows: Sequence[dict[str, Any]]) -> dict[str, bool]:
    return {str(r["id"]): bool(sample_value(r, "win")) for r in rows if sample_value(r, "win") is not None}


def cross_matrix(flags: list[dict[str, bool]]) -> list[list[float | None]]:
    """Matrix[i][j] = cross win rate of model i against model j on the pairs both were scored on.

    ``lmolt_hub.metrics.hallucination.cross_win_rate``'s ``a_win_rate``: 0.5 means no difference.
    """
    from lmolt_hub.metrics.hallucination import cross_win_rate

    matrix: list[list[float | None]] = []
    for a in flags:
        row: list[float | None] = []
        for b in flags:
            common = sorted(set(a) & set(b))
            if not common:
                row.append(None)
                continue
            rate = cross_win_rate([{"win": a[k]} for k in common], [{"win": b[k]} for k in common])
            row.append(rate["a_win_rate"])
        matrix.append(row)
    return matrix


def figure2(
    labels: list[str], win_rates: list[dict[str, float | None]], flags: dict[str, list[dict]], path: Path
):
    plt = _pyplot()
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    x = np.arange(len(labels))
    for offset, direction in zip((-0.2, 0.2), _PLOT_ORDER, strict=True):
        heights = [w.get(direction) if w.get(direction) is not None else 0.0 for w in win_rates]
        axes[0].bar(x + offset, heights, width=0.4, label=DIRECTION_LABELS[direction])
    axes[0].set_xticks(x, labels, rotation=30, ha="right", fontsize="small")
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("win rate")
    axes[0].set_title("Win rate per model")
    axes[0].legend(fontsize="small")
    for ax, direction in zip(axes[1:], _PLOT_ORDER, strict=True):
        matrix = cross_matrix(flags[direction]) if labels else []
        data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
        if data.size:
            ax.imshow(data, vmin=0, vmax=1, cmap="coolwarm")
            for i in range(len(labels)):
                for j in range(len(labels)):
                    if not np.isnan(data[i, j]):
                        ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", color="k", fontsize=8)
            ax.set_xticks(x, labels, rotation=30, ha="right", fontsize="small")
            ax.set_yticks(x, labels, fontsize="small")
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(
            f"Cross win rate, {DIRECTION_LABELS[direction]}\n(row vs column; 0.5 = even)", fontsize="medium"
        )
    fig.suptitle("Figure 2: win rates and cross win rates")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, format="png", dpi=90, metadata=_PNG_METADATA)
    plt.close(fig)


def write_plots(
    records: Sequence[Record], samples: dict[str, dict[str, list[dict]]], output_dir: Path
) -> dict[str, str]:
    """Draw both figures for the verified ``records`` (``samples``: row_id -> direction -> rows)."""
    verified = sorted((r for r in records if r.kind == "verified"), key=lambda r: (r.model, r.revision or ""))
    labels = model_labels(verified)
    models = [(labels[r.row_id], samples.get(r.row_id, {})) for r in verified]
    figure1(models, output_dir / FIGURE1)
    win_rates = [{d: h.get("win_rate") for d, h in r.hallucination.items()} for r in verified]
    flags = {d: [_win_flags(s.get(d, [])) for _, s in models] for d in DIRECTION_LABELS}
    figure2([labels[r.row_id] for r in verified], win_rates, flags, output_dir / FIGURE2)
    return {"figure1": FIGURE1, "figure2": FIGURE2}
