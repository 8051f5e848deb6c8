"""The preference-data contract: triple columns, KTO columns, and the one way to unpair triples.

The data stage writes a ``default`` config of triples and a ``kto`` config of unpaired rows; training
reads either (or unpairs triples itself, ``unpair_triples: true``). Both go through :func:`unpair`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TRIPLE_COLUMNS = (
    "id",
    "direction",
    "source",
    "prompt",
    "chosen",
    "rejected",
    "molecule",
    "caption",
    "template_version",
)
KTO_COLUMNS = ("id", "direction", "prompt", "completion", "label")
# Each triple gives two KTO rows, in this order and with these labels and id suffixes.
KTO_KINDS = (("chosen", True), ("rejected", False))


def unpair(batch: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Triples -> KTO rows, column-wise (a ``datasets`` batch or ``{column: values}``).

    Each triple becomes (prompt, chosen, True) then (prompt, rejected, False): interleaved, so any
    prefix of the rows holds both labels. ``id`` (as ``<id>:chosen`` / ``<id>:rejected``) and
    ``direction`` are carried when the triples have them; the columns come in ``KTO_COLUMNS`` order.
    """
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in batch]
    if missing:
        raise ValueError(f"unpairing needs triples with prompt/chosen/rejected columns; missing {missing}")
    n = len(batch["prompt"])
    out: dict[str, list[Any]] = {}
    if "id" in batch:
        out["id"] = [f"{i}:{kind}" for i in batch["id"] for kind, _ in KTO_KINDS]
    for col in ("direction", "prompt"):
        if col in batch:
            out[col] = [v for v in batch[col] for _ in KTO_KINDS]
    out["completion"] = [batch[kind][i] for i in range(n) for kind, _ in KTO_KINDS]
    out["label"] = [label for _ in range(n) for _, label in KTO_KINDS]
    return out


def unpair_rows(triples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`unpair` for a list of triple rows; returns KTO rows."""
    if not triples:
        return []
    cols = unpair({c: [r[c] for r in triples] for c in triples[0]})
    return [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
