"""Discussion and pull-request endpoints: list, details (with a PR's diff), open, comment, change
status or title, merge."""

from __future__ import annotations

from lmolt_hub.localhub.auth import Auth
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.handler import HubHandler
from lmolt_hub.localhub.names import discussion_number
from lmolt_hub.localhub.router import Route

PAGE = 50


def list_discussions(req: HubHandler, repo_type: str, repo_id: str) -> None:
    req.check_read(repo_type, repo_id)
    q = {k: v[-1] for k, v in req.query.items()}
    items = req.discussions.list(repo_type, repo_id)
    dtype, status, author = q.get("type", "all"), q.get("status", "all"), q.get("author")
    if dtype == "pull_request":
        items = [i for i in items if i["isPullRequest"]]
    elif dtype == "discussion":
        items = [i for i in items if not i["isPullRequest"]]
    if status == "open":
        items = [i for i in items if i["status"] in ("open", "draft")]
    elif status == "closed":
        items = [i for i in items if i["status"] in ("closed", "merged")]
    if author:
        items = [i for i in items if i["author"]["name"] == author]
    page = int(q.get("p", "0") or 0)
    chunk = items[page * PAGE : (page + 1) * PAGE]
    summaries = [
        {k: v for k, v in i.items() if k not in ("events", "changes", "filesWithConflicts")} for i in chunk
    ]
    for summary, item in zip(summaries, chunk, strict=True):
        summary["numComments"] = sum(e["type"] == "comment" for e in item["events"][1:])
    req.json(
        {
            "discussions": summaries,
            "count": len(items),
            "start": page * PAGE,
            "numClosedDiscussions": sum(i["status"] in ("closed", "merged") for i in items),
        }
    )


def discussion(req: HubHandler, repo_type: str, repo_id: str, num: str) -> None:
    req.check_read(repo_type, repo_id)
    disc = req.discussions.get(repo_type, repo_id, discussion_number(num))
    if disc["isPullRequest"]:
        disc.setdefault("filesWithConflicts", [])
        disc["diff"] = req.discussions.pr_diff(repo_type, repo_id, disc)
    req.json(disc)


def create_discussion(req: HubHandler, repo_type: str, repo_id: str) -> None:
    user = req.writer()
    body = req.read_json()
    req.check_read(repo_type, repo_id)
    disc = req.discussions.create(
        repo_type,
        repo_id,
        str(body.get("title") or ""),
        str(body.get("description") or ""),
        bool(body.get("pullRequest")),
        user.name,
    )
    url = f"{req.repo_url(repo_type, repo_id)}/discussions/{disc['num']}"
    req.json({"num": disc["num"], "pullRequest": disc["isPullRequest"], "url": url})


def discussion_action(req: HubHandler, repo_type: str, repo_id: str, num: str, action: str) -> None:
    """``comment`` (anyone with a token), ``status``/``title`` (author or writer), ``merge`` (writer)."""
    user = req.writer()
    body = req.read_json()
    n = discussion_number(num)
    meta = req.check_read(repo_type, repo_id)
    comment = body.get("comment")
    comment = None if comment is None else str(comment)
    discussions = req.discussions
    if action == "comment":
        return req.json({"newMessage": discussions.comment(repo_type, repo_id, n, comment or "", user.name)})
    writer = Auth.can_write(user, repo_id, meta)
    if action in ("status", "title") and not writer:
        if discussions.get(repo_type, repo_id, n)["author"]["name"] != user.name:
            raise HubError(
                403, f"User {user.name!r} may not change #{n} of {repo_id!r}: only its author or the owner"
            )
    if action == "status":
        status = str(body.get("status", ""))
        event = discussions.change_status(repo_type, repo_id, n, status, comment, user.name)
        return req.json({"newStatus": event})
    if action == "title":
        title = str(body.get("title", "")).strip()
        return req.json({"newTitle": discussions.rename(repo_type, repo_id, n, title, user.name)})
    if action == "merge":
        if not writer:
            raise HubError(
                403, f"User {user.name!r} may not merge pull requests of {repo_id!r}: only the owner may"
            )
        expected = body.get("expectedHeadOid")  # local extension: merge only the reviewed head
        if expected is not None and not isinstance(expected, str):
            raise HubError(400, "'expectedHeadOid' must be a commit sha")
        sha = discussions.merge_pr(repo_type, repo_id, n, comment, user.name, expected)
        return req.json({"mergeCommitId": sha})
    raise HubError(404, f"Unknown discussion action {action!r}")


def edit_comment(
    req: HubHandler, repo_type: str, repo_id: str, num: str, comment_id: str, action: str
) -> None:
    """``.../comment/{id}/edit`` {content} (its author) and ``.../comment/{id}/hide`` (author or owner)."""
    user = req.writer()
    body = req.read_json()
    meta = req.check_read(repo_type, repo_id)
    if action == "edit":
        content = body.get("content")
        if not isinstance(content, str):
            raise HubError(400, "'content' must be a string")
        change = {"content": content}
    elif action == "hide":
        change = {"hide": "1"}
    else:
        raise HubError(404, f"Unknown comment action {action[:40]!r}")
    event = req.discussions.edit_comment(
        repo_type,
        repo_id,
        discussion_number(num),
        comment_id,
        user.name,
        Auth.can_write(user, repo_id, meta),
        **change,
    )
    req.json({"updatedComment": event})


ROUTES = [
    Route("GET", "/api/{type}/{repo}/discussions", list_discussions),
    Route("GET", "/api/{type}/{repo}/discussions/{num}", discussion),
    Route("POST", "/api/{type}/{repo}/discussions", create_discussion),
    Route("POST", "/api/{type}/{repo}/discussions/{num}/{action}", discussion_action),
    Route("POST", "/api/{type}/{repo}/discussions/{num}/comment/{comment_id}/{action}", edit_comment),
]
