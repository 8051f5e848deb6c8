"""The local Hub's route table: every endpoint, as method + pattern -> handler, grouped by resource.

Order matters only where patterns overlap: the first match wins (see ``localhub.router``).
"""

from __future__ import annotations

from lmolt_hub.localhub.router import Route, Router
from lmolt_hub.localhub.routes import discussions, files, misc, pages, repos

ROUTES: list[Route] = [*misc.ROUTES, *repos.ROUTES, *files.ROUTES, *discussions.ROUTES, *pages.ROUTES]


def router() -> Router:
    return Router(ROUTES)
