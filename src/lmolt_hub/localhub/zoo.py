"""The ``/`` page: models and datasets of the local Hub with their card summaries."""

from __future__ import annotations

import html

from lmolt_hub.localhub import storage as st

LEADERBOARD_PATH = "/site/leaderboard/index.html"


def _summary(storage: st.Storage, repo_type: str, repo_id: str) -> tuple[str, str, str]:
    """(last modified, short description, tags) from the head of ``main``."""
    try:
        sha = storage.resolve(repo_type, repo_id, "main")
        commit = storage.commit(repo_type, repo_id, sha)
    except st.HubError:
        return "", "", ""
    files = {p: st.FileEntry(**e) for p, e in commit["files"].items()}
    card = st.card_data(storage, repo_type, repo_id, files) or {}
    text = st.readme_text(storage, files)
    try:
        _, body = st.parse_card(text)
    except Exception:
        body = text
    desc = next((ln.strip() for ln in body.splitlines() if ln.strip() and not ln.startswith("#")), "")
    tags = card.get("tags") or []
    tags = ", ".join(str(t) for t in tags) if isinstance(tags, list) else str(tags)
    return commit["date"][:19].replace("T", " "), desc[:300], tags


def _table(storage: st.Storage, repo_type: str) -> str:
    repos = [m for m in storage.list_repos(repo_type) if not m.get("private")]
    if not repos:
        return f"<p>No {repo_type}s yet.</p>"
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    rows = []
    for meta in repos:
        rid = meta["id"]
        date, desc, tags = _summary(storage, repo_type, rid)
        link = f"/api/{repo_type}s/{html.escape(rid, quote=True)}"
        readme = f"/{prefix}{html.escape(rid, quote=True)}/resolve/main/README.md"
        rows.append(
            f'<tr><td><a href="{link}">{html.escape(rid)}</a> (<a href="{readme}">card</a>)</td>'
            f"<td>{html.escape(desc)}</td><td>{html.escape(tags)}</td><td>{html.escape(date)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>id</th><th>summary</th><th>tags</th><th>updated (UTC)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_index(storage: st.Storage) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>lmolt-hub zoo</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}</style></head><body>"
        "<h1>lmolt-hub model zoo (local Hub)</h1>"
        f'<p><a href="{LEADERBOARD_PATH}">Leaderboard</a></p>'
        f"<h2>Models</h2>{_table(storage, 'model')}"
        f"<h2>Datasets</h2>{_table(storage, 'dataset')}"
        "</body></html>"
    )
