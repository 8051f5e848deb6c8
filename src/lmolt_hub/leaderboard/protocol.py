"""The review protocol on a PR's discussion: the reviewer's comment format and who may write it.

Accepted PRs are merged, rejected ones closed, and both get a comment that starts with
:data:`REVIEW_MARK` and states the reason; ``status`` reads those back, from the reviewers'
comments only (the repo's namespace and the card's ``lmolt.reviewers``), so a comment that
imitates a review carries no status.
"""

from __future__ import annotations

from typing import Any

from lmolt_hub.hub.cards import LeaderboardMeta

REVIEW_MARK = "**lmolt-hub review:"
STATES = ("pending", "running", "verified", "rejected")


def review_comment(state: str, reason: str, extra: str = "") -> str:
    return f"{REVIEW_MARK} {state}**\n\nReason: {reason}\n" + (f"\n{extra}\n" if extra else "")


def pr_comments(api: Any, repo_id: str, num: int, reviewers: set[str] | None = None) -> list[str]:
    """Comment texts of PR ``num``; with ``reviewers``, only theirs (others' carry no status)."""
    details = api.get_discussion_details(repo_id, num, repo_type="dataset")
    return [
        getattr(e, "content", "") or ""
        for e in details.events
        if getattr(e, "type", "") == "comment"
        and (reviewers is None or getattr(e, "author", None) in reviewers)
    ]


def last_review(comments: list[str]) -> tuple[str | None, str]:
    for text in reversed(comments):
        if text.startswith(REVIEW_MARK):
            state = text[len(REVIEW_MARK) :].split("**", 1)[0].strip()
            reason = text.split("Reason:", 1)[1].strip().split("\n\n", 1)[0] if "Reason:" in text else ""
            return state, reason
    return None, ""


def reviewers(api: Any, repo_id: str) -> set[str]:
    """Accounts whose review comments carry status: the repo's namespace and the card's
    ``lmolt.reviewers`` (only the owner can change main's card)."""
    names = {repo_id.split("/")[0]}
    try:
        meta = LeaderboardMeta.from_card(api.dataset_info(repo_id, revision="main").card_data)
        names |= meta.reviewer_names() if meta is not None else set()
    except Exception:  # noqa: BLE001 - no card: the namespace alone
        pass
    return names
