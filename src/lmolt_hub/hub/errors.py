"""One-line errors for the mistakes every command shares: no Hub server, a bad token, a typo.

Every entry point (``lmolt-hub``, ``eval_harness/run.py``, ``recipes/<method>.py``) runs its
work inside :func:`user_errors`, which turns a connection failure anywhere in an exception's
chain (httpx, requests, or a client library's wrapper around them) into one line naming
``HF_ENDPOINT`` and the fix, and exits through ``SystemExit`` so that no traceback is printed,
also under ``accelerate launch``.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
HF_HOSTS = ("huggingface.co", "hf.co")
# Substrings of connection failures in wrappers that drop the original exception as a cause
# (transformers' OSError "We couldn't connect", huggingface_hub's LocalEntryNotFoundError).
CONNECT_HINTS = (
    "connection refused", "connecterror", "connecttimeout", "couldn't connect", "failed to establish",
    "name or service not known", "temporary failure in name resolution", "nodename nor servname",
)  # fmt: skip
CONNECT_CLASSES = {"ConnectError", "ConnectTimeout", "NewConnectionError", "MaxRetryError"}


def hub_endpoint() -> str:
    """The Hub the clients talk to (``HF_ENDPOINT``, else huggingface.co)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_local_endpoint(endpoint: str | None = None) -> bool:
    """True for any endpoint that is not huggingface.co (a local or lab Hub)."""
    host = (urlsplit(endpoint or hub_endpoint()).hostname or "").lower()
    return not any(host == h or host.endswith("." + h) for h in HF_HOSTS)


def disable_xet_for_local_hub() -> None:
    """Turn Xet uploads off when HF_ENDPOINT is not huggingface.co (a local Hub cannot serve Xet).

    huggingface_hub reads the variable when its constants are imported, so this runs when
    lmolt_hub is imported; if huggingface_hub came first, its constant is set too. An explicit
    HF_HUB_DISABLE_XET from the user wins.
    """
    if not os.environ.get("HF_ENDPOINT") or not is_local_endpoint():
        return
    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and os.environ["HF_HUB_DISABLE_XET"].lower() in ("1", "true", "yes", "on"):
        constants.HF_HUB_DISABLE_XET = True


def unreachable_message(endpoint: str | None = None) -> str:
    endpoint = endpoint or hub_endpoint()
    if os.environ.get("HF_ENDPOINT"):
        return (
            f"no Hub answers at HF_ENDPOINT={endpoint}: start one with `lmolt-hub serve --root DIR` "
            "(and export the HF_ENDPOINT/HF_TOKEN it prints), or unset HF_ENDPOINT to use huggingface.co"
        )
    return (
        f"cannot reach the Hub at {endpoint} (HF_ENDPOINT is unset): check the network, or point "
        "HF_ENDPOINT at a local Hub started with `lmolt-hub serve --root DIR`"
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything in its cause/context chain) is a failure to connect."""
    for e in _chain(exc):
        if isinstance(e, BrokenPipeError):  # our stdout piped into `head`: not the Hub
            return False
        if isinstance(e, ConnectionError) or type(e).__name__ in CONNECT_CLASSES:
            return True
        if any(h in str(e).lower() for h in CONNECT_HINTS):
            return True
    return False


def hub_error_message(exc: BaseException) -> str | None:
    """The one-line explanation of a Hub connection or token failure; None for anything else."""
    if is_connection_error(exc):
        return unreachable_message()
    for e in _chain(exc):
        # huggingface.co answers 401 for a missing or gated repo too: those keep their own message
        if _status(e) == 401 and type(e).__name__ not in ("RepositoryNotFoundError", "GatedRepoError"):
            return (
                f"the Hub at {hub_endpoint()} (HF_ENDPOINT) refused the token: set HF_TOKEN to a valid token "
                "of this Hub (`hf auth login`, or the one `lmolt-hub serve` printed)"
            )
    return None


@contextlib.contextmanager
def user_errors(prog: str) -> Iterator[None]:
    """Exit with ``<prog>: error: <one line>`` (status 1) on Hub connection/token failures."""
    try:
        yield
    except Exception as e:
        message = hub_error_message(e)
        if message is None:
            raise
        raise SystemExit(f"{prog}: error: {message}") from None


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean --learning_rate?)`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word.lstrip("-"), [c.lstrip("-") for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def hub_reachable(timeout: float = 5.0) -> bool:
    """Whether something listens at the Hub endpoint (a TCP connect: milliseconds)."""
    import socket

    url = urlsplit(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def ensure_hub_reachable(prog: str) -> None:
    """Exit with one line when nothing listens at the Hub endpoint.

    Without this, huggingface_hub retries uploads with back-off for ~25 s and logs every retry
    before failing.
    """
    if not hub_reachable():
        raise SystemExit(f"{prog}: error: {unreachable_message()}")
