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
    Route("POST", "/api/validate-yaml", validate_yaml),
    Route("GET", "/api/agent-harnesses", agent_harnesses),
    Route("GET", "/api/telemetry/{rest*}", telemetry),
]
