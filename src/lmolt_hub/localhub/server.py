"""The local Hub's HTTP server: the subset of the huggingface.co API the unmodified clients use.

Standard library only (``ThreadingHTTPServer``, HTTP/1.1 keep-alive): one thread per connection,
at most ``max_connections``. ``handler`` is the transport, ``routes`` the endpoints, ``storage``
and ``discussions`` the state on disk, ``auth`` who may do what.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lmolt_hub.localhub.auth import Auth
from lmolt_hub.localhub.discussions import Discussions
from lmolt_hub.localhub.handler import HubConfig, HubHandler
from lmolt_hub.localhub.routes import router
from lmolt_hub.localhub.storage import Storage

DEFAULT_MAX_BODY = 512 << 20  # NDJSON commit bodies (regular files travel base64 in commits)
DEFAULT_MAX_LFS = 100 << 30  # one LFS object, streamed to disk
DEFAULT_MAX_CONNECTIONS = 128  # open connections (one thread each)
DEFAULT_IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may wait for its next request

Tokens = list[str] | tuple[str, ...] | dict[str, Any] | Auth

__all__ = ["HubConfig", "HubHTTPServer", "HubHandler", "RunningHub", "make_server", "start_in_thread"]


class HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], config: HubConfig):
        self.config = config
        self.slots = threading.BoundedSemaphore(config.max_connections)
        super().__init__(address, HubHandler)
        self.recovered = config.storage.hold_server_lock(config.discussions.recover)

    def process_request(self, request, client_address) -> None:  # noqa: ANN001 - stdlib signature
        """One thread per connection, at most ``max_connections``; beyond that a quick 503."""
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                body = b'{"error": "Too many open connections to this local Hub; retry shortly"}'
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:  # noqa: ANN001
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def server_close(self) -> None:
        super().server_close()
        self.config.storage.release_server_lock()


class RunningHub:
    """A server running in a background thread (``.url .root .token .stop()``)."""

    def __init__(self, httpd: HubHTTPServer, thread: threading.Thread, token: str | None):
        self.httpd, self.thread, self.token = httpd, thread, token
        host, port = httpd.server_address[:2]
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        self.root: Path = httpd.config.storage.root

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> RunningHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_server(
    root: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 0,
    tokens: Tokens = (),
    max_body: int = DEFAULT_MAX_BODY,
    max_lfs: int = DEFAULT_MAX_LFS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> HubHTTPServer:
    """A server (not yet serving). ``tokens``: a list of admin tokens (``"user:token"`` names the
    admin), a mapping ``token -> {"user", "admin", "orgs"}``, or an ``Auth``."""
    storage = Storage(root)
    # A list holds admin tokens ("user:token" names the admin); a mapping or Auth maps users.
    auth = tokens if isinstance(tokens, Auth) else Auth.from_tokens(tokens)
    config = HubConfig(
        storage=storage,
        discussions=Discussions(storage),
        auth=auth,
        router=router(),
        max_body=max_body,
        max_lfs=max_lfs,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        secret=secrets.token_bytes(32),
    )
    return HubHTTPServer((host, port), config)


def start_in_thread(
    root: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 0,
    tokens: Tokens = (),
    **limits: Any,
) -> RunningHub:
    """Start a local Hub in a daemon thread; returns a handle with ``.url .root .token .stop()``.

    ``.token`` is an admin token when there is one (see ``make_server`` for ``tokens``).
    """
    httpd = make_server(root, host, port, tokens, **limits)
    thread = threading.Thread(target=httpd.serve_forever, name="lmolt-localhub", daemon=True)
    thread.start()
    return RunningHub(httpd, thread, httpd.config.auth.first_token())
