"""Pages for people: the zoo (``/``), a repo's page (``/{repo}``) and the static site under
``/site/`` (the leaderboard). The HTML itself is rendered by ``localhub.zoo``."""

from __future__ import annotations

import mimetypes

from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.handler import HubHandler
from lmolt_hub.localhub.names import validate_path
from lmolt_hub.localhub.router import Route
from lmolt_hub.localhub.zoo import render_index, render_repo

HTML = "text/html; charset=utf-8"


def index(req: HubHandler) -> None:
    req.send(200, render_index(req.store).encode(), HTML)


def repo_page(req: HubHandler, repo_type: str, repo_id: str) -> None:
    req.check_read(repo_type, repo_id)
    req.send(200, render_repo(req.store, req.discussions, repo_type, repo_id).encode(), HTML)


def static(req: HubHandler, path: str) -> None:
    rel = path or "index.html"
    validate_path(rel)
    site = (req.store.root / "site").resolve()
    target = (site / rel).resolve()
    if site not in target.parents:
        raise HubError(400, f"Invalid path {rel!r}")
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        raise HubError(404, f"No such page: /site/{rel}", "EntryNotFound")
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/json", "application/javascript"):
        ctype += "; charset=utf-8"
    with open(target, "rb") as f:
        size = target.stat().st_size
        req.send_file(f, 0, size, 200, ctype, {"Cache-Control": "no-cache"})


ROUTES = [
    Route("GET", "/", index),
    Route("GET", "/site/{path*}", static),
    Route("GET", "/{type?}/{repo}", repo_page),
]
