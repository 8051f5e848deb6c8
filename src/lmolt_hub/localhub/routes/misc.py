"""Endpoints outside any repo: ``whoami``, card YAML validation, and two the clients call that
have nothing to do here (agent harnesses, telemetry pings)."""

from __future__ import annotations

from lmolt_hub.localhub.cardmeta import CardError, load_front_matter
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
    content = req.read_json(limit=MAX_YAML_BODY).get("content") or ""
    if not isinstance(content, str):
        raise HubError(400, "'content' must be a string")
    try:
        load_front_matter(content)
    except CardError as e:
        return req.json({"errors": [{"message": str(e)}], "warnings": []}, status=400)
    req.json({"errors": [], "warnings": []})


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
