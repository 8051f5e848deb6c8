"""The Hub client layer: pinned references, one-commit pushes, typed card metadata.

Stages import this package; it imports no stage (only huggingface_hub, yaml and lmolt_hub.errors).

- ``ref``: :class:`HubRef`, the one ``is_local`` rule, ``pin``/``repo_info`` with the Hub's answers mapped
- ``push``: ``check_target`` (before the work) and ``push_folder`` (one commit)
- ``cards``: ``parse_card`` and the ``lmolt:`` block of each card kind
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
