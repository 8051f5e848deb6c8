"""Static Spaces, browsable: ``/spaces/<org>/<name>/`` serves the app of a Space whose card says
``sdk: static``, and ``/spaces/<org>/<name>/<file>`` any file of its ``main``, inline.

Downloads of a Space's files (``/spaces/<org>/<name>/resolve/<rev>/<file>``, what
``hf_hub_download`` and ``evaluate.load`` fetch) are the generic ``resolve`` route of
``routes.files``: attachments that never render.

The app is uploaded by whoever owns the Space, so it runs under the same policy as other uploaded
HTML, with one exception: its own scripts run. The CSP ``sandbox allow-scripts`` (no
``allow-same-origin``) gives the page an opaque origin, as if it lived on a host of its own (as
``*.static.hf.space`` does on huggingface.co): it cannot read the zoo's pages or the API with the
visitor's credentials, open popups, or submit forms. Every fetch source is limited to the Space's
own folder, so it loads its own ``app.js``, styles, data and images, and nothing from other repos.
Its files answer ``Access-Control-Allow-Origin: *``: they are public, and the opaque-origin page
reads ``leaderboard.json`` with a CORS request.
"""

from __future__ import annotations

import mimetypes

from lmolt_hub.localhub.cardmeta import card_data
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.handler import HubHandler
from lmolt_hub.localhub.names import validate_path
from lmolt_hub.localhub.router import Route

STATIC_SDK = "static"


def app_base(req: HubHandler, repo_id: str) -> str:
    return f"{req.base_url()}/spaces/{repo_id}/"


def app_policy(base: str) -> str:
    """The CSP of a static Space's files: sandboxed with scripts, every source the Space's folder."""
    own = base  # a source ending in "/" matches that folder and below, on this host only
    return (
        f"sandbox allow-scripts; default-src 'none'; script-src {own}; style-src {own}; "
        f"img-src {own} data:; connect-src {own}; font-src {own}; media-src {own}; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )


def space_sdk(card: dict | None) -> str | None:
    sdk = (card or {}).get("sdk")
    return sdk if isinstance(sdk, str) else None


def space_app(req: HubHandler, repo_type: str, repo_id: str, path: str) -> None:
    """A file of a static Space's ``main`` (the app's entry for ``""`` or a folder), inline.

    ``repo_type`` is the router's default for a ``{repo}`` without a ``{type}`` token; the literal
    ``spaces`` prefix of the route is what makes this a space.
    """
    del repo_type
    req.check_read("space", repo_id)
    sha = req.store.resolve("space", repo_id, "main")
    files = req.store.files("space", repo_id, sha)
    card = card_data(req.store.readme_text(files))
    sdk = space_sdk(card)
    if sdk != STATIC_SDK:
        raise HubError(
            404,
            f"Space {repo_id!r} is not a static Space (sdk: {sdk or 'none'}): the local Hub runs only "
            f"static Spaces; its files are at /spaces/{repo_id}/resolve/main/<file>",
            "EntryNotFound",
        )
    if path in ("", "/") or path.endswith("/"):
        entry_file = (card or {}).get("app_file") if path in ("", "/") else None
        path = path + (entry_file if isinstance(entry_file, str) and entry_file else "index.html")
    validate_path(path)
    entry = files.get(path)
    if entry is None:
        raise HubError(404, f"No file {path!r} in Space {repo_id} at main", "EntryNotFound")
    ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/json", "application/javascript"):
        ctype += "; charset=utf-8"
    headers = {
        "X-Repo-Commit": sha,
        "ETag": f'"{entry.oid}"',
        "Cache-Control": "no-cache",  # main moves with every rebuild
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": app_policy(app_base(req, repo_id)),
        "Referrer-Policy": "no-referrer",
        "Access-Control-Allow-Origin": "*",
    }
    with req.store.open_blob(entry.sha256) as f:
        req.send_file(f, 0, entry.size, 200, ctype, headers)


ROUTES = [
    # after every other route: /spaces/<org>/<name>/resolve/..., discussions etc. match first
    Route("GET", "/spaces/{repo}/{path+}", space_app),
]
