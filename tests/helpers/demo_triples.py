"""Demo triples: a small real triple dataset for the training tests and benchmarks (test data).

Built from the package's bundled ChEBI-20 test split and MolT5-large outputs (chosen = the gold
reference, rejected = MolT5's output: the paper's recipe at toy size), in the triple contract's
columns. The quickstart does not use it: it builds its datasets with ``lmolt-hub data build``
from ``recipes/data/default/``. ``bench/train.py`` and ``bench/gpu_check.py`` import it with
``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import csv


def build_demo_triples(n_per_direction: int = 16, offset: int = 0):
    """A small real triple dataset (contract columns) from the bundled ChEBI-20 test split.

    chosen = the gold reference, rejected = MolT5-large's output: the paper's
    recipe at toy size. Returns a DatasetDict with ``default``-shaped train and
    validation splits; ``to_kto`` gives the ``kto`` config.
    """
    import datasets

    from lmolt_hub.prompts import TEMPLATE_VERSION, build_prompt
    from lmolt_hub.resources import molt5_predictions

    rows: list[dict] = []

    def read(direction: str) -> list[dict]:
        with open(molt5_predictions("large", direction), encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))

    m2l, l2m = read("smiles2caption"), read("caption2smiles")
    for i in range(offset, offset + n_per_direction):
        molecule, caption = m2l[i]["SMILES"], m2l[i]["ground truth"]
        for direction, source, chosen, rejected in (
            ("smiles2caption", molecule, caption, m2l[i]["output"]),
            ("caption2smiles", l2m[i]["description"], l2m[i]["ground truth"], l2m[i]["output"]),
        ):
            rows.append({
                "id": f"chebi20-test-{i}-{direction}", "direction": direction, "source": source,
                "prompt": build_prompt(direction, source), "chosen": chosen, "rejected": rejected,
                "molecule": molecule, "caption": caption, "template_version": TEMPLATE_VERSION,
            })  # fmt: skip
    ds = datasets.Dataset.from_list(rows)
    n_train = len(rows) - 2 * max(1, n_per_direction // 8)  # both directions of the last molecules
    return datasets.DatasetDict({"train": ds.select(range(n_train)),
                                 "validation": ds.select(range(n_train, len(ds)))})  # fmt: skip


def to_kto(dsd):
    """The ``kto`` config of a triple DatasetDict (contract columns)."""
    import datasets

    from lmolt_hub.formats.triples import unpair

    return datasets.DatasetDict(
        {k: v.map(unpair, batched=True, remove_columns=v.column_names) for k, v in dsd.items()}
    )


def save_demo_triples(out_dir, n_per_direction: int = 16) -> tuple[str, str]:
    """Save the demo triples (``default``) and their ``kto`` config under ``out_dir``; return both paths."""
    from pathlib import Path

    out = Path(out_dir)
    default, kto = out / "default", out / "kto"
    if not (default / "dataset_dict.json").exists():
        dsd = build_demo_triples(n_per_direction)
        dsd.save_to_disk(str(default))
        to_kto(dsd).save_to_disk(str(kto))
    return str(default), str(kto)
