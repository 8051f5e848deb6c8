"""The local Hub's route table: every endpoint, as method + pattern -> handler, grouped by resource.

Order matters only where patterns overlap: the first match wins (see ``localhub.router``).
"""

from __future__ import annotations

from lmolt_hub.localhub.router import Route, Router
from lmolt_hub.localhub.routes import discussions, files, misc, pages, repos, spaces

ROUTES: list[Route] = [*misc.ROUTES, *repos.ROUTES, *files.ROUTES, *discussions.ROUTES, *pages.ROUTES]
ROUTES += spaces.ROUTES  # last: a static Space's app files, under /spaces/<org>/<name>/


def router() -> Router:
    return Router(ROUTES)
