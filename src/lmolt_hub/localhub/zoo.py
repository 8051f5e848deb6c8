"""The ``/`` page: models, datasets and Spaces of the local Hub with their card summaries."""

from __future__ import annotations

import html
import re

from lmolt_hub.localhub import storage as st
from lmolt_hub.localhub.cardmeta import card_data, split_card
from lmolt_hub.localhub.discussions import Discussions
from lmolt_hub.localhub.entries import FileEntry
from lmolt_hub.localhub.errors import HubError

LEADERBOARD_PATH = "/site/leaderboard/index.html"
LEADERBOARD_SPACE = "lmolt-leaderboard"  # naming.LEADERBOARD_DATASET (localhub imports no lmolt_hub stage)
MAX_SUMMARY = 1000  # characters: a bound for hostile cards; lmolt-hub's first sentences are far shorter
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) and ![alt](src) -> text / alt
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
# A sentence ends at . ! or ? followed by white space and then a capital, a digit, an opening
# bracket or quote, or the end of the paragraph; "e.g. x", "arXiv:2405.13984" and "1.5" do not end one.
_SENTENCE_END = re.compile(
    r"(?<!\be\.g)(?<!\bi\.e)(?<!\bet al)(?<!\bcf)(?<!\bvs)[.!?](?=\s+[A-Z0-9(\"'\[]|\s*$)"
)


def _first_paragraph(body: str) -> str:
    """The first paragraph of prose in a card body: no headings, tables, lists, code or HTML comments."""
    lines: list[str] = []
    fenced = False
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            fenced = not fenced
            if lines:
                break
            continue
        skip = fenced or line.startswith(("#", "|", "<!--", "- ", "* ", ">", "---"))
        if not line or skip:
            if lines:
                break
            continue
        lines.append(line)
    return " ".join(lines)


def first_sentence(body: str) -> str:
    """The card's first sentence, complete, as plain text (markdown links and emphasis removed)."""
    text = _EMPHASIS.sub("", _LINK.sub(r"\1", _first_paragraph(body)))
    text = re.sub(r"\s+", " ", text).strip()
    end = _SENTENCE_END.search(text)
    sentence = text[: end.end()] if end else text
    if len(sentence) > MAX_SUMMARY:
        sentence = sentence[:MAX_SUMMARY].rsplit(" ", 1)[0] + " \u2026"
    return sentence


def _summary(storage: st.Storage, repo_type: str, repo_id: str) -> tuple[str, str, str, str | None]:
    """(last modified, short description, tags, a Space's SDK) from the head of ``main``."""
    try:
        sha = storage.resolve(repo_type, repo_id, "main")
        commit = storage.commit(repo_type, repo_id, sha)
    except HubError:
        return "", "", "", None
    files = {p: FileEntry(**e) for p, e in commit["files"].items()}
    text = storage.readme_text(files)
    card = card_data(text) or {}
    _, body = split_card(text)  # the body only: the YAML was parsed (bounded) by card_data
    desc = first_sentence(body)
    tags = card.get("tags") or []
    tags = ", ".join(str(t) for t in tags) if isinstance(tags, list) else str(tags)
    sdk = card.get("sdk") if repo_type == "space" and isinstance(card.get("sdk"), str) else None
    if sdk:
        tags = ", ".join(t for t in (f"sdk: {sdk}", tags) if t)
    return commit["date"][:19].replace("T", " "), desc, tags, sdk


def _table(storage: st.Storage, repo_type: str) -> str:
    repos = [m for m in storage.list_repos(repo_type) if not m.get("private")]
    if not repos:
        return f"<p>No {repo_type}s yet.</p>"
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    rows = []
    for meta in repos:
        rid = meta["id"]
        date, desc, tags, sdk = _summary(storage, repo_type, rid)
        link = f"/{prefix}{html.escape(rid, quote=True)}"
        app = f' (<a href="{link}/">open</a>)' if sdk == "static" else ""  # served by routes.spaces
        rows.append(
            f'<tr><td><a href="{link}">{html.escape(rid)}</a>{app}</td>'
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
    static = repo_type == "space" and (card_data(storage.readme_text(files)) or {}).get("sdk") == "static"
    app = f'<p><a href="/spaces/{esc_id}/">Open the Space</a> (static)</p>' if static else ""
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
        + f"<p>main = <code>{sha}</code> (<a href='/api/{repo_type}s/{esc_id}'>API</a>)</p>{app}"
        + f"<h2>Card</h2><pre>{html.escape(storage.readme_text(files)) or 'no README.md'}</pre>"
        + f"<h2>Files</h2><table><tr><th>path</th><th>bytes</th><th></th></tr>{file_rows}</table>"
        + f"<h2>Refs</h2><ul>{ref_items}</ul>"
        + f"<h2>Discussions and pull requests</h2><ul>{discussions or '<li>none</li>'}</ul></body></html>"
    )


def _leaderboard_links(storage: st.Storage) -> str:
    """Links to every public leaderboard Space (``*/lmolt-leaderboard``), then the built site folder."""
    spaces = [
        m["id"] for m in storage.list_repos("space")
        if not m.get("private") and m["id"].split("/")[-1] == LEADERBOARD_SPACE
    ]  # fmt: skip
    links = [
        f'<a href="/spaces/{html.escape(s, quote=True)}/">Leaderboard Space {html.escape(s)}</a>'
        for s in spaces
    ]
    links.append(f'<a href="{LEADERBOARD_PATH}">Leaderboard (built site)</a>')
    return "<p>" + " &middot; ".join(links) + "</p>"


def render_index(storage: st.Storage) -> str:
    return (
        _HEAD.format(title="lmolt-hub zoo")
        + "<h1>lmolt-hub model zoo (local Hub)</h1>"
        + _leaderboard_links(storage)
        + f"<h2>Models</h2>{_table(storage, 'model')}"
        + f"<h2>Datasets</h2>{_table(storage, 'dataset')}"
        + f"<h2>Spaces</h2>{_table(storage, 'space')}"
        + "</body></html>"
    )
