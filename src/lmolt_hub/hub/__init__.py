"""The Hub client layer: pinned references, one-commit pushes, typed card metadata, the Hub's errors.

Stages import this package; it imports no stage (only huggingface_hub, yaml and its own modules).

- ``ref``: :class:`HubRef`, the one ``is_local`` rule, ``pin``/``repo_info`` with the Hub's answers mapped
- ``push``: ``check_target`` (before the work) and ``push_folder`` (one commit)
- ``cards``: ``parse_card`` and the ``lmolt:`` block of each card kind
- ``render``: ``render_card`` (the Jinja templates in ``hub_cards/``; imports jinja2, so not re-exported)
- ``errors``: the endpoint in use and one-line messages for Hub connection/token failures
- ``links``: discussion links that work on the Hub in use
- ``lineage``: ``lmolt-hub lineage``, the tree of parents of a Hub model read from cards
"""

from lmolt_hub.hub.cards import (
    AdapterMeta,
    DatasetMeta,
    EvalSetMeta,
    LeaderboardMeta,
    MergeMeta,
    parse_card,
    read_meta,
)
from lmolt_hub.hub.push import PushError, check_target, push_folder
from lmolt_hub.hub.ref import HubRef, RefError, is_local, is_tiny, pin, pinned_revision, repo_info

__all__ = [
    "AdapterMeta", "DatasetMeta", "EvalSetMeta", "HubRef", "LeaderboardMeta", "MergeMeta", "PushError",
    "RefError", "check_target", "is_local", "is_tiny", "parse_card", "pin", "pinned_revision", "push_folder",
    "read_meta", "repo_info",
]  # fmt: skip
