"""Links we print to users, made to work on the Hub in use.

huggingface_hub returns web URLs for pull requests and discussions
(``<endpoint>/datasets/<repo>/discussions/<n>``). huggingface.co serves those pages; the local Hub
(``lmolt-hub serve``) serves the same discussion as JSON from its API route only, so there we
print that one instead.
"""

from __future__ import annotations

import re

from lmolt_hub.hub.errors import hub_endpoint, is_local_endpoint

_DISCUSSION = re.compile(
    r"^/(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/discussions/(?P<num>\d+)/?$"
)


def discussion_link(url: str | None, endpoint: str | None = None) -> str | None:
    """``url`` as it is on huggingface.co; on a local Hub, the API URL of the same discussion."""
    endpoint = (endpoint or hub_endpoint()).rstrip("/")
    if not url or not is_local_endpoint(endpoint) or not url.startswith(endpoint + "/"):
        return url
    match = _DISCUSSION.match(url[len(endpoint) :])
    if not match:
        return url
    kind = match["type"] or "models"
    return f"{endpoint}/api/{kind}/{match['repo']}/discussions/{match['num']}"
