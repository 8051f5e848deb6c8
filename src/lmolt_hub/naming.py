"""The zoo's single naming scheme: ``<org>/lmolt-[<fusion>-]<method>[-<suffix>]``.

Examples: ``org/lmolt-sft``, ``org/lmolt-cpo``, ``org/lmolt-slerp`` (a merge),
``org/lmolt-slerp-cpo`` (CPO on the SLERP merge), ``org/lmolt-sft-caption2smiles``
(a one-direction model). Datasets: ``org/lmolt-triples``, ``org/lmolt-eval-3k``,
``org/lmolt-leaderboard``, ``org/lmolt-results``.
"""

from __future__ import annotations

import os
import re

FUSIONS = ("ties", "slerp")
METHODS = ("sft", "dpo", "cpo", "kto")
PREFIX = "lmolt"
DEFAULT_ORG = "lmolt"  # the namespace of the recipes, the quickstart and the harness defaults
_PART = re.compile(r"^[a-z0-9][a-z0-9.]*$")

TRIPLES_DATASET = f"{PREFIX}-triples"
EVAL_DATASET = f"{PREFIX}-eval-3k"
LEADERBOARD_DATASET = f"{PREFIX}-leaderboard"
RESULTS_DATASET = f"{PREFIX}-results"


def zoo_name(method: str | None = None, fusion: str | None = None, suffix: str | None = None) -> str:
    """Repository name (without namespace) of a zoo model."""
    if fusion is not None and fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
    if method is not None and method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if method is None and fusion is None:
        raise ValueError("a zoo name needs a method, a fusion, or both")
    parts = [PREFIX, *(p for p in (fusion, method) if p)]
    if suffix:
        if not all(_PART.match(s) for s in suffix.split("-")):
            raise ValueError(
                f"invalid name suffix {suffix!r}: use lowercase letters, digits, dots and dashes"
            )
        parts.append(suffix)
    return "-".join(parts)


def repo_id(org: str, name: str) -> str:
    return f"{org}/{name}" if org else name


def default_org() -> str:
    """The namespace used when none is given: ``$LMOLT_ORG``, else ``lmolt``."""
    return os.environ.get("LMOLT_ORG") or DEFAULT_ORG


# The ids of the shared datasets, ``<org>/<name>`` (org: ``default_org()`` when not given).
def triples_dataset(org: str | None = None) -> str:
    return repo_id(org or default_org(), TRIPLES_DATASET)


def eval_dataset(org: str | None = None) -> str:
    return repo_id(org or default_org(), EVAL_DATASET)


def leaderboard_dataset(org: str | None = None) -> str:
    return repo_id(org or default_org(), LEADERBOARD_DATASET)


def results_dataset(org: str | None = None) -> str:
    return repo_id(org or default_org(), RESULTS_DATASET)
