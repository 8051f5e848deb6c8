"""The route table's machinery: ``Route(method, pattern, handler)`` and a first-match ``Router``.

Patterns work on path *segments* that were percent-decoded one by one, so a revision sent as
``refs%2Fpr%2F1`` stays one segment. Segment forms:

- ``literal``: that exact text;
- ``{name}``: one segment, passed as ``name=...``;
- ``{type}``: ``models``/``datasets``/``spaces``, passed as ``repo_type`` (singular);
- ``{type?}``: an optional leading ``datasets``/``spaces`` (absent: ``repo_type="model"``);
- ``{repo}`` / ``{repo}.git``: two segments ``namespace/name``, passed as a validated ``repo_id``
  (never a reserved namespace such as ``api``, so those prefixes stay the server's own); when no
  route matches, a second pass reads ``{repo}`` as ONE segment: a namespace-less id (``gpt2``,
  huggingface.co's canonical models), answered ``404 RepoNotFound`` as the clients expect;
- ``{name*}`` / ``{name+}`` (last): the remaining zero / one or more segments, joined with ``/``.

A ``GET`` route also answers ``HEAD`` (the response carries no body).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lmolt_hub.localhub.names import PLURAL, RESERVED_NAMESPACES, canonical_model_error, validate_repo_id

Handler = Callable[..., None]
_TYPE_PREFIXES = {"datasets": "dataset", "spaces": "space"}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler

    def segments(self) -> list[str]:
        return self.pattern.split("/")[1:]


@dataclass(frozen=True)
class _Compiled:
    method: str
    tokens: tuple[str, ...]
    handler: Handler


class Router:
    """Routes in table order; the first whose method and pattern match handles the request."""

    def __init__(self, routes: Iterable[Route]):
        self._routes: list[_Compiled] = []
        for r in routes:
            tokens = r.segments()
            if any(t.endswith(("*}", "+}")) for t in tokens[:-1]):
                raise ValueError(f"{r.pattern}: a {{name*}} or {{name+}} must be the last segment")
            if tokens and tokens[0] == "{type?}":  # two routes: without and with the type prefix
                self._routes.append(_Compiled(r.method, tuple(tokens[1:]), r.handler))
                tokens = ["{prefix}", *tokens[1:]]
            self._routes.append(_Compiled(r.method, tuple(tokens), r.handler))

    def __len__(self) -> int:
        return len(self._routes)

    def match(self, method: str, segs: list[str]) -> tuple[Handler, dict[str, Any]] | None:
        """(handler, keyword arguments) of the first matching route; None when no route matches.

        A matched ``{repo}`` is validated here, so a bad repo id is a 400 before any handler runs.
        """
        for single in (False, True):
            for route in self._routes:
                if route.method != method and not (route.method == "GET" and method == "HEAD"):
                    continue
                params = _match(route.tokens, segs, single)
                if params is None:
                    continue
                if single and "repo_id" in params:
                    raise canonical_model_error(params["repo_id"])
                if "repo_id" in params:
                    validate_repo_id(params["repo_id"])
                return route.handler, params
        return None


def _match(tokens: tuple[str, ...], segs: list[str], single: bool = False) -> dict[str, Any] | None:
    params: dict[str, Any] = {"repo_type": "model"} if _has_repo(tokens) else {}
    i = 0
    for tok in tokens:
        if tok.endswith(("*}", "+}")):  # the rest of the path (always the last token)
            rest = segs[i:]
            if tok.endswith("+}") and not rest:
                return None
            params[tok[1:-2]] = "/".join(rest)
            return params
        if i >= len(segs):
            return None
        seg = segs[i]
        if tok == "{type}":
            if seg not in PLURAL:
                return None
            params["repo_type"] = PLURAL[seg]
        elif tok == "{prefix}":
            if seg not in _TYPE_PREFIXES:
                return None
            params["repo_type"] = _TYPE_PREFIXES[seg]
        elif tok in ("{repo}", "{repo}.git"):
            width = 1 if single else 2
            if i + width > len(segs) or segs[i] in RESERVED_NAMESPACES:
                return None
            name = segs[i + width - 1]
            if tok.endswith(".git"):
                if not name.endswith(".git"):
                    return None
                name = name[:-4]
            params["repo_id"] = name if single else f"{seg}/{name}"
            i += width - 1
        elif tok.startswith("{") and tok.endswith("}"):
            params[tok[1:-1]] = seg
        elif tok != seg:
            return None
        i += 1
    return params if i == len(segs) else None


def _has_repo(tokens: tuple[str, ...]) -> bool:
    return any(t.startswith("{repo}") for t in tokens)
