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
from collections import Counter
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lmolt_hub.localhub.auth import Auth
from lmolt_hub.localhub.discussions import Discussions
from lmolt_hub.localhub.handler import DEFAULT_HEAD_TIMEOUT, HubConfig, HubHandler
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

    def __init__(self, address: tuple[str, int], config: HubConfig, per_client: int):
        self.config = config
        self.slots = threading.BoundedSemaphore(config.max_connections)
        # One address may hold at most ``per_client`` of the slots, so one client (however
        # slowly it talks) cannot take them all.
        self.per_client = per_client
        self._by_client: Counter[str] = Counter()
        self._by_client_lock = threading.Lock()
        super().__init__(address, HubHandler)
        self.recovered = config.storage.hold_server_lock(config.discussions.recover)

    def process_request(self, request, client_address) -> None:  # noqa: ANN001 - stdlib signature
        """One thread per connection, at most ``max_connections`` (and ``per_client`` for one
        address); beyond that a quick 503."""
        client = str(client_address[0])
        with self._by_client_lock:
            mine = self._by_client[client] < self.per_client
            if mine:
                self._by_client[client] += 1
        if not mine:
            return self._refuse(request, b"Too many open connections from your address to this local Hub")
        if not self.slots.acquire(blocking=False):
            self._release_client(client)
            return self._refuse(request, b"Too many open connections to this local Hub")
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            self._release_client(client)
            raise

    def _refuse(self, request, why: bytes) -> None:  # noqa: ANN001
        with contextlib.suppress(OSError):
            request.settimeout(1.0)
            body = b'{"error": "%s; retry shortly"}' % why
            request.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"X-Request-Id: %s\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                % (secrets.token_hex(12).encode(), len(body), body)
            )
        self.shutdown_request(request)

    def _release_client(self, client: str) -> None:
        with self._by_client_lock:
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]

    def process_request_thread(self, request, client_address) -> None:  # noqa: ANN001
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()
            self._release_client(str(client_address[0]))

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
    head_timeout: float | None = None,
    max_connections_per_client: int | None = None,
) -> HubHTTPServer:
    """A server (not yet serving). ``tokens``: a list of admin tokens (``"user:token"`` names the
    admin), a mapping ``token -> {"user", "admin", "orgs"}``, or an ``Auth``.

    ``max_connections_per_client`` defaults to three quarters of ``max_connections``: the last
    quarter (at least 1 slot) stays for other addresses, however many one address opens (a
    client's connection pool, 8 processes pulling at once, stay well within it);
    ``head_timeout`` (seconds from a request's first byte to the end of its headers) to
    ``DEFAULT_HEAD_TIMEOUT`` or ``idle_timeout``, whichever is shorter."""
    per_client = max_connections_per_client or max(1, max_connections - max(1, max_connections // 4))
    if not 1 <= per_client <= max_connections:
        raise ValueError(
            f"connections per client (--max-connections-per-client) must be 1..{max_connections} "
            f"(--max-connections), got {per_client}"
        )
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
        head_timeout=head_timeout or min(DEFAULT_HEAD_TIMEOUT, idle_timeout),
    )
    return HubHTTPServer((host, port), config, per_client)


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
