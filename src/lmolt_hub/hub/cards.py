"""Typed card metadata: the ``lmolt:`` block of every card lmolt-hub writes, read and written here.

One dataclass per card kind, each with ``to_front_matter()`` (the ``{"lmolt": {...}}`` part of a
card's YAML) and ``from_card()`` (from a card's front matter, as parsed by :func:`parse_card` or
returned by the Hub as ``card_data``). Readers are lenient: a card on the Hub is anyone's text, so
unknown keys are ignored and a missing block gives ``None`` rather than an error.

- :class:`AdapterMeta`: a trained adapter (or full model) with its pinned parent and dataset.
- :class:`MergeMeta`: a merge with its pinned parents, parameters and recipe digest.
- :class:`DatasetMeta`: a built dataset (triples, KTO) with its recipe, sources and row counts.
- :class:`EvalSetMeta`: an evaluation set: a dataset whose recipe also says how to score.
- :class:`LeaderboardMeta`: a leaderboard dataset's reviewers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import yaml

BLOCK = "lmolt"
T = TypeVar("T", bound="CardMeta")


def parse_card(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a card; empty front matter when there is none."""
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        if len(parts) == 2:
            data = yaml.safe_load(parts[0][3:]) or {}
            return (data if isinstance(data, dict) else {}), parts[1].lstrip("-\n")
    return {}, text


def card_dict(card: Any) -> dict[str, Any]:
    """Front matter as a dict: a parsed dict, huggingface_hub's ``CardData``, or None."""
    if card is None:
        return {}
    if hasattr(card, "to_dict"):
        card = card.to_dict()
    return dict(card) if isinstance(card, Mapping) else {}


def lmolt_block(card: Any) -> dict[str, Any]:
    """The raw ``lmolt:`` block of a card's front matter ({} when absent or not a mapping)."""
    block = card_dict(card).get(BLOCK)
    return dict(block) if isinstance(block, Mapping) else {}


@dataclass
class CardMeta:
    """Common to every kind: what the block says it is, and the code that wrote it."""

    KIND: ClassVar[str | None] = None

    def to_block(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND} if self.KIND else {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = value
        return out

    def to_front_matter(self) -> dict[str, Any]:
        return {BLOCK: self.to_block()}

    @classmethod
    def from_block(cls: type[T], block: Mapping[str, Any]) -> T:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in block.items() if k in known})

    @classmethod
    def from_card(cls: type[T], card: Any) -> T | None:
        """This kind's metadata from a card; None when the card has no ``lmolt:`` block."""
        block = lmolt_block(card)
        return cls.from_block(block) if block else None


def _optional() -> Any:
    return field(default=None, metadata={"omit_none": True})


@dataclass
class AdapterMeta(CardMeta):
    """A model trained by lmolt-hub (``lmolt-hub train``): parent and dataset pinned to commits.

    Training cards carry no ``kind`` key (they predate it); any block that is not a merge or a
    dataset reads as one.
    """

    method: str | None = None
    parent: str | None = None
    parent_revision: str | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    dataset_revision: str | None = None
    directions: list[str] = field(default_factory=list)
    template_version: str | None = None
    git_sha: str | None = None
    objective: str | None = None
    checkpoint_rule: str | None = None
    kept_epoch: Any = None
    kept_eval_loss: Any = None
    fusion: str | None = _optional()  # the merge a chain trained on (older cards)
    datasets: Any = _optional()  # more pinned datasets, [{id, revision}] (hand-written cards)


@dataclass
class MergeMeta(CardMeta):
    KIND: ClassVar[str] = "merge"

    name: str | None = None
    method: str | None = None
    parents: list[dict[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    dtype: str | None = None
    recipe_digest: str | None = None
    git_sha: str | None = None


@dataclass
class DatasetMeta(CardMeta):
    """A dataset built by ``lmolt-hub data build``; ``kind`` is the recipe kind (triples, eval, ...)."""

    kind: str | None = None
    repo_id: str | None = None
    template_version: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    git_sha: str | None = None

    def to_block(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class EvalSetMeta(DatasetMeta):
    """An evaluation set: its recipe's ``metrics`` and FCD statistics say how it is scored."""

    def metric_options(self) -> dict[str, Any]:
        """Scoring options the card states: the recipe's ``metrics``, its FCD convention and stats file."""
        recipe = self.recipe if isinstance(self.recipe, dict) else {}
        metrics = recipe.get("metrics")
        out = dict(metrics) if isinstance(metrics, dict) else {}
        if "fcd_convention" in recipe:
            out.setdefault("fcd_convention", recipe["fcd_convention"])
        stats = self.sources.get("fcd_stats") if isinstance(self.sources, dict) else None
        if isinstance(stats, dict) and stats.get("file"):
            out.setdefault("fcd_stats_file", stats["file"])
        return out


@dataclass
class LeaderboardMeta(CardMeta):
    """A leaderboard dataset's card: accounts (besides the namespace) whose reviews count."""

    KIND: ClassVar[str] = "leaderboard"

    reviewers: list[str] = field(default_factory=list)

    def to_block(self) -> dict[str, Any]:
        return {"reviewers": list(self.reviewers)}

    def reviewer_names(self) -> set[str]:
        listed = self.reviewers if isinstance(self.reviewers, list) else []
        return {str(n) for n in listed if isinstance(n, str)}


def read_meta(card: Any) -> CardMeta | None:
    """The typed metadata of any lmolt card (None without an ``lmolt:`` block)."""
    block = lmolt_block(card)
    if not block:
        return None
    kind = block.get("kind")
    if kind == MergeMeta.KIND:
        return MergeMeta.from_block(block)
    if kind == "eval":
        return EvalSetMeta.from_block(block)
    if isinstance(kind, str) and "recipe" in block:
        return DatasetMeta.from_block(block)
    if "reviewers" in block and "method" not in block:
        return LeaderboardMeta.from_block(block)
    return AdapterMeta.from_block(block)
