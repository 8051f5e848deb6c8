"""The ``/`` page: models and datasets of the local Hub with their card summaries."""

from __future__ import annotations

import html

from lmolt_hub.localhub import storage as st
from lmolt_hub.localhub.cardmeta import card_data, split_card
from lmolt_hub.localhub.discussions import Discussions

LEADERBOARD_PATH = "/site/leaderboard/index.html"


def _summary(storage: st.Storage, repo_type: str, repo_id: str) -> tuple[str, str, str]:
    """(last modified, short description, tags) from the head of ``main``."""
    try:
        sha = storage.resolve(repo_type, repo_id, "main")
        commit = storage.commit(repo_type, repo_id, sha)
    except st.HubError:
        return "", "", ""
    files = {p: st.FileEntry(**e) for p, e in commit["files"].items()}
    text = storage.readme_text(files)
    card = card_data(text) or {}
    _, body = split_card(text)  # the body only: the YAML was parsed (bounded) by card_data
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
        link = f"/{prefix}{html.escape(rid, quote=True)}"
        rows.append(
            f'<tr><td><a href="{link}">{html.escape(rid)}</a></td>'
            f"<td>{html.escape(desc)}</td><td>{html.escape(tags)}</td><td>{html.escape(date)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>id</th><th>summary</th><th>tags</th><th>updated (UTC)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


_HEAD = (
    "<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
    "<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}"
    "td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}"
    "pre{{background:#f6f6f6;padding:1em;white-space:pre-wrap}}</style></head><body>"
)


def render_repo(storage: st.Storage, discussions: Discussions, repo_type: str, repo_id: str) -> str:
    """A repo page: card (as escaped text), files of ``main``, branches, tags, discussions."""
    sha = storage.resolve(repo_type, repo_id, "main")
    files = storage.files(repo_type, repo_id, sha)
    refs = storage.refs(repo_type, repo_id)
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    esc_id = html.escape(repo_id, quote=True)
    file_rows = "".join(
        f'<tr><td><a href="/{prefix}{esc_id}/resolve/{sha}/{html.escape(p, quote=True)}">{html.escape(p)}</a></td>'
        f"<td>{e.size:,}</td><td>{'LFS' if e.lfs else ''}</td></tr>"
        for p, e in sorted(files.items())
    )
    ref_items = "".join(
        f"<li>{kind} <code>{html.escape(name)}</code> &rarr; <code>{target[:12]}</code></li>"
        for kind, group in (("branch", "heads"), ("tag", "tags"), ("PR", "pr"))
        for name, target in sorted(refs[group].items())
    )
    discussions = "".join(
        f"<li>#{d['num']} [{'PR' if d['isPullRequest'] else 'discussion'}, {html.escape(d['status'])}] "
        f"{html.escape(d['title'])} by {html.escape(d['author']['name'])}</li>"
        for d in discussions.list(repo_type, repo_id)
    )
    return (
        _HEAD.format(title=esc_id)
        + f'<p><a href="/">&larr; zoo</a></p><h1>{html.escape(repo_type)}: {esc_id}</h1>'
        + f"<p>main = <code>{sha}</code> (<a href='/api/{repo_type}s/{esc_id}'>API</a>)</p>"
        + f"<h2>Card</h2><pre>{html.escape(storage.readme_text(files)) or 'no README.md'}</pre>"
        + f"<h2>Files</h2><table><tr><th>path</th><th>bytes</th><th></th></tr>{file_rows}</table>"
        + f"<h2>Refs</h2><ul>{ref_items}</ul>"
        + f"<h2>Discussions and pull requests</h2><ul>{discussions or '<li>none</li>'}</ul></body></html>"
    )


def render_index(storage: st.Storage) -> str:
    return (
        _HEAD.format(title="lmolt-hub zoo")
        + "<h1>lmolt-hub model zoo (local Hub)</h1>"
        + f'<p><a href="{LEADERBOARD_PATH}">Leaderboard</a></p>'
        + f"<h2>Models</h2>{_table(storage, 'model')}"
        + f"<h2>Datasets</h2>{_table(storage, 'dataset')}"
        + "</body></html>"
    )
