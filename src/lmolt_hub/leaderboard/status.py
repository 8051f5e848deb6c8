"""``status``: every submission PR with its state, read from the PR and the reviewers' comments."""

from __future__ import annotations

from typing import Any

from lmolt_hub.leaderboard import layout, protocol


def status(repo_id: str | None = None, api: Any = None) -> list[dict[str, Any]]:
    """Every submission PR with its state (pending, running, verified, rejected) and reason."""
    api = layout.hub_api(api)
    repo_id = repo_id or layout.leaderboard_repo()
    reviewers = protocol.reviewers(api, repo_id)
    rows = []
    for d in sorted(api.get_repo_discussions(repo_id, repo_type="dataset"), key=lambda d: d.num):
        if not d.is_pull_request:
            continue
        review_state, reason = protocol.last_review(protocol.pr_comments(api, repo_id, d.num, reviewers))
        if d.status == "merged":  # unless the reviewer reverted an unvalidated merge
            state = "rejected" if review_state == "rejected" else "verified"
        elif d.status == "closed":
            state = "rejected"
            reason = reason or "closed without a review comment"
        else:
            state = "running" if review_state == "running" else "pending"
        rows.append(
            {
                "pr": d.num,
                "title": d.title,
                "author": d.author,
                "created_at": d.created_at.isoformat(),
                "state": state,
                "reason": reason,
            }
        )
    return rows
