"""Endpoints outside any repo: ``whoami``, card YAML validation, and two the clients call that
have nothing to do here (agent harnesses, telemetry pings)."""

from __future__ import annotations

from lmolt_hub.localhub.cardmeta import CardError, load_front_matter, validate_metadata
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.handler import HubHandler
from lmolt_hub.localhub.router import Route

MAX_YAML_BODY = 1 << 20  # /api/validate-yaml (a card's README)


def whoami(req: HubHandler) -> None:
    user = req.writer()
    req.json(
        {
            "type": "user",
            "name": user.name,
            "fullname": user.name,
            "orgs": [{"type": "org", "name": o, "fullname": o} for o in user.orgs],
            "isPro": False,
            "isAdmin": user.admin,
            "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}},
        }
    )


def org_members(req: HubHandler, org: str) -> None:
    """``HfApi.list_organization_members``: the users whose tokens name ``org`` among their orgs
    (the leaderboard's reviewer asks who may submit rows for an org's models)."""
    req.user(required=False)
    names = sorted({u.name for u in req.cfg.auth.users.values() if org in u.orgs})
    if not names:
        raise HubError(404, f"organization {org} not found")
    req.json([{"user": n, "fullname": n, "type": "user", "avatarUrl": ""} for n in names])


def validate_yaml(req: HubHandler) -> None:
    """A card's metadata checked as the Hub does: 400 with the errors (as text when the client asks
    for ``text/plain``, as ``RepoCard.validate`` does), else 200 with any warnings."""
    content = req.read_json(limit=MAX_YAML_BODY).get("content") or ""
    if not isinstance(content, str):
        raise HubError(400, "'content' must be a string")
    try:
        errors, warnings = validate_metadata(load_front_matter(content))
    except CardError as e:
        errors, warnings = [str(e)], []
    status = 400 if errors else 200
    if "text/plain" in (req.headers.get("Accept") or ""):
        text = "\n".join([*(f"Error: {e}" for e in errors), *(f"Warning: {w}" for w in warnings)])
        return req.send(status, text.encode(), "text/plain; charset=utf-8")
    req.json(
        {"errors": [{"message": e} for e in errors], "warnings": [{"message": w} for w in warnings]}, status
    )


def agent_harnesses(req: HubHandler) -> None:
    req.json({"standardEnvVars": [], "harnesses": {}})


def telemetry(req: HubHandler, rest: str) -> None:
    req.json({})  # huggingface_hub's usage pings (send_telemetry): accepted, dropped


ROUTES = [
    Route("GET", "/api/whoami-v2", whoami),
    Route("GET", "/api/organizations/{org}/members", org_members),
    Route("POST", "/api/validate-yaml", validate_yaml),
    Route("GET", "/api/agent-harnesses", agent_harnesses),
    Route("GET", "/api/telemetry/{rest*}", telemetry),
]
