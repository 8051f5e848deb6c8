"""The translation direction: the one home of its name, columns, metrics and aliases.

A ``Direction`` is a ``str`` (``StrEnum``): it compares equal to, and serialises as, its canonical
name, so results JSON, datasets and recipes keep the plain strings ``smiles2caption`` and
``caption2smiles``. Everything else a stage needs to know about a direction hangs off it:

>>> d = Direction.parse("M->L")
>>> d, d.source_column, d.target_column, d.alias, d.paper_table
(<Direction.SMILES2CAPTION: 'smiles2caption'>, 'molecule', 'caption', 'M->L', 'mol2text')
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class _Spec:
    source_column: str  # column of the molecule-caption pair that is the input
    target_column: str
    tsv_header: tuple[str, str, str]  # the official MolT5 / L+M-24 predictions file
    metrics: tuple[str, ...]  # the paper's table metrics (keys of metrics.METRIC_INFO)
    hallucination_metrics: tuple[str, ...]  # section 3.4
    alias: str  # the paper's name
    paper_table: str  # the key of this direction's tables in resources/data/paper_tables.json
    task_name: str  # the model-index task name on model cards


class Direction(StrEnum):
    SMILES2CAPTION = "smiles2caption"  # molecule -> language (M->L, captioning)
    CAPTION2SMILES = "caption2smiles"  # language -> molecule (L->M, generation)

    @classmethod
    def parse(cls, name: str) -> Direction:
        """A direction from its canonical name or any alias (``M->L``, ``mol2text``); else ValueError."""
        for d in cls:
            if name in (d.value, d.alias, d.paper_table):
                return d
        raise ValueError(f"unknown direction {name!r}; expected one of {', '.join(DIRECTION_NAMES)}")

    @property
    def _spec(self) -> _Spec:
        return _SPECS[self]

    @property
    def source_column(self) -> str:
        return self._spec.source_column

    @property
    def target_column(self) -> str:
        return self._spec.target_column

    @property
    def tsv_header(self) -> tuple[str, str, str]:
        return self._spec.tsv_header

    @property
    def metrics(self) -> tuple[str, ...]:
        return self._spec.metrics

    @property
    def hallucination_metrics(self) -> tuple[str, ...]:
        return self._spec.hallucination_metrics

    @property
    def alias(self) -> str:
        return self._spec.alias

    @property
    def paper_table(self) -> str:
        return self._spec.paper_table

    @property
    def task_name(self) -> str:
        return self._spec.task_name

    @property
    def label(self) -> str:
        """``M->L (smiles2caption)``: how tables and plots name it."""
        return f"{self.alias} ({self.value})"

    @property
    def molecule_out(self) -> bool:
        """Whether the output is a molecule (SMILES)."""
        return self.target_column == "molecule"

    @property
    def other(self) -> Direction:
        return Direction.CAPTION2SMILES if self is Direction.SMILES2CAPTION else Direction.SMILES2CAPTION

    def source_target(self, molecule: str, caption: str) -> tuple[str, str]:
        """(source, target) of a molecule-caption pair."""
        pair = {"molecule": molecule, "caption": caption}
        return pair[self.source_column], pair[self.target_column]


_SPECS: dict[Direction, _Spec] = {
    Direction.SMILES2CAPTION: _Spec(
        source_column="molecule",
        target_column="caption",
        tsv_header=("SMILES", "ground truth", "output"),
        metrics=("bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor"),
        hallucination_metrics=("win_rate", "mean_dlen", "mean_abs_dlen", "mean_entailment"),
        alias="M->L",
        paper_table="mol2text",
        task_name="Molecule captioning (molecule -> language)",
    ),
    Direction.CAPTION2SMILES: _Spec(
        source_column="caption",
        target_column="molecule",
        tsv_header=("description", "ground truth", "output"),
        metrics=(
            "bleu",
            "exact_match",
            "levenshtein",
            "maccs_fts",
            "rdk_fts",
            "morgan_fts",
            "fcd",
            "validity",
            "uniqueness",
        ),
        hallucination_metrics=("win_rate", "mean_dlen", "mean_abs_dlen", "mean_chrf"),
        alias="L->M",
        paper_table="text2mol",
        task_name="Text-based molecule generation (language -> molecule)",
    ),
}

# The canonical names as plain strings, in the order every table and loop uses.
DIRECTION_NAMES: tuple[str, ...] = tuple(d.value for d in Direction)


def is_direction(name: object) -> bool:
    """Whether ``name`` is a canonical direction name (aliases are not: stored data use names)."""
    return isinstance(name, str) and name in DIRECTION_NAMES
