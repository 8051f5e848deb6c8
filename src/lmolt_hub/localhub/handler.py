"""The transport of the local Hub: one ``HubHandler`` per connection parses each request, finds
its route, checks who is asking, and writes the response. What a request *does* lives in
``routes/``; this module knows no endpoint.

Everything a client sends is bounded: body sizes (per route), chunk sizes and framing (``wire``),
idle time per connection. Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound,
EntryNotFound), which is how the clients type them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import hmac
import io
import json
import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote

from lmolt_hub.localhub.auth import Auth, User
from lmolt_hub.localhub.discussions import Discussions
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.names import TYPE_PREFIX
from lmolt_hub.localhub.router import Router
from lmolt_hub.localhub.storage import Storage
from lmolt_hub.localhub.wire import Body

log = logging.getLogger("lmolt_hub.localhub")

MAX_JSON_BODY = 16 << 20  # every JSON / form body but commits (their limit is ``max_body``)
IO_TIMEOUT = 300.0  # seconds of silence within a request before the client is dropped
DEFAULT_HEAD_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its headers
LARGE_COMMIT = 16 << 20  # a commit body this big is decoded line by line in memory: bounded below
MAX_LARGE_COMMITS = 1  # large commits decoded at once (each holds ~2x its biggest line; the
# decode holds the GIL, so running several at once would not be faster anyway)


@dataclass
class HubConfig:
    """Server settings and state shared by all request threads."""

    storage: Storage
    discussions: Discussions
    auth: Auth
    router: Router
    max_body: int
    max_lfs: int
    max_connections: int
    idle_timeout: float
    secret: bytes = field(repr=False)  # signs LFS upload URLs (the client PUTs without auth)
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    large_commits: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_LARGE_COMMITS), repr=False
    )

    @property
    def users(self) -> dict[str, User]:
        return self.auth.users

    def sign(self, oid: str, size: int, repo: str = "") -> str:
        """Signature of an LFS upload URL: binds the object, its size and the repo it is for."""
        return hmac.new(self.secret, f"{oid}:{size}:{repo}".encode(), hashlib.sha256).hexdigest()


def release_free_memory() -> None:
    """Hand freed heap memory back to the system (glibc ``malloc_trim``), after a large commit.

    Each request runs in its own thread, and glibc gives threads their own heaps (arenas): the tens
    of MB a large commit line needed stay mapped in that thread's heap after they are freed, so
    commits handled by different threads would add up even when they run one after another."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():  # noqa: ANN202 - a ctypes function or None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return None


class _TimedSocketIO(socket.SocketIO):
    """The connection's reads, with a total deadline for a request's head.

    The socket timeout applies per ``recv``, so a client trickling one header byte every few
    seconds would hold its connection (and a server slot) forever. Here the head must be complete
    ``head_timeout`` seconds after its first byte; waiting for that byte is the idle timeout.
    """

    def __init__(self, sock: socket.socket):
        super().__init__(sock, "rb")
        self.phase, self.deadline, self.head_timeout = "body", None, DEFAULT_HEAD_TIMEOUT

    def wait_for_head(self, idle_timeout: float, head_timeout: float) -> None:
        self.phase, self.deadline, self.head_timeout = "idle", None, head_timeout
        self._sock.settimeout(idle_timeout)

    def body(self, timeout: float) -> None:
        self.phase, self.deadline = "body", None
        self._sock.settimeout(timeout)

    def readinto(self, b) -> int:  # noqa: ANN001 - io signature
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"request head not complete within {self.head_timeout:g} s")
            self._sock.settimeout(left)
        n = super().readinto(b)
        if self.phase == "idle" and n:
            self.phase, self.deadline = "head", time.monotonic() + self.head_timeout
        return n


class HubHandler(BaseHTTPRequestHandler):
    """Parse, authenticate, dispatch, respond. Route handlers get it as ``req``."""

    protocol_version = "HTTP/1.1"
    server_version = "lmolt-hub"
    timeout = IO_TIMEOUT  # seconds of socket silence before a stuck client is dropped
    # Headers and body go out in separate writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) on every keep-alive request, capping a connection at ~22 requests/s.
    disable_nagle_algorithm = True
    body: Body
    query: dict[str, list[str]]
    request_id: str = ""

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # replaced by a reader that enforces the head deadline
        self._io = _TimedSocketIO(self.connection)
        self.rfile = io.BufferedReader(self._io)

    def handle(self) -> None:
        """Serve requests on this connection; an idle keep-alive connection is dropped sooner."""
        self.close_connection = False
        while not self.close_connection:
            self.request_id = secrets.token_hex(12)
            self._io.wait_for_head(self.cfg.idle_timeout, self.cfg.head_timeout)
            self.handle_one_request()

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        # Every answer carries one, as on the Hub: the clients quote it in their error messages.
        self.send_header("X-Request-Id", self.request_id or secrets.token_hex(12))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from stdlib
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def cfg(self) -> HubConfig:
        return self.server.config  # type: ignore[attr-defined]  # a server.HubHTTPServer

    @property
    def store(self) -> Storage:
        return self.cfg.storage

    @property
    def discussions(self) -> Discussions:
        return self.cfg.discussions

    def base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.base_url()}/{TYPE_PREFIX[repo_type]}{repo_id}"

    def flag(self, name: str) -> bool:
        """A boolean query parameter (``?recursive=true``)."""
        return self.query.get(name, ["false"])[-1].lower() in ("1", "true")

    # ------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._io.body(IO_TIMEOUT)  # the head is in: the body may take its time (per recv)
        self.body = Body(self.rfile, 0, False)
        raw_path, _, query = self.path.partition("?")
        self.query = parse_qs(query, keep_blank_values=True)
        # Split the raw path first: a revision like refs%2Fpr%2F1 is one segment.
        segs = [unquote(s) for s in raw_path.split("/")[1:]]
        try:
            self.body = self._open_body()
            found = self.cfg.router.match(method, segs)
            if found is None:
                raise self._unsupported(method)
            handler, params = found
            if "repo_id" in params:  # ids are case-insensitive; handlers see the stored case
                params["repo_id"] = self.store.canonical_id(params["repo_type"], params["repo_id"])
            handler(self, **params)
            if not self.body.at_end():
                # Unread bytes must never be parsed as a next request: drop the connection.
                self.close_connection = True
        except HubError as e:
            self._error(e)
        except OSError:  # client vanished or timed out mid-request: nothing to answer
            self.close_connection = True
        except (ValueError, TypeError, KeyError) as e:  # malformed fields in a request body
            log.debug("bad request %s %s", method, self.path, exc_info=True)
            self._error(HubError(400, f"Bad request: {type(e).__name__}: {e}"))
        except Exception as e:  # a bug must not kill the server thread silently
            log.exception("internal error on %s %s", method, self.path)
            self._error(HubError(500, f"Internal error: {type(e).__name__}: {e}"))

    def _unsupported(self, method: str) -> HubError:
        # Logged loudly: a client calling a route we lack is a gap to fill, not a user error.
        log.warning("local Hub: unsupported route %s %s", method, self.path[:300])
        return HubError(404, f"Route not supported by the local Hub: {method} {self.path[:200]}")

    # ------------------------------------------------------------ request bodies
    def _open_body(self) -> Body:
        length = self.headers.get("Content-Length")
        te = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if te and te != "chunked":
            self.close_connection = True
            raise HubError(501, f"Transfer-Encoding {te[:40]!r} is not supported (only 'chunked')")
        if length is not None and te:
            self.close_connection = True  # ambiguous framing: the classic request-smuggling vector
            raise HubError(400, "A request may not carry both Content-Length and Transfer-Encoding")
        if length is not None and (not length.isdigit() or len(length) > 15):
            self.close_connection = True  # cannot tell where this body ends
            raise HubError(400, "Invalid Content-Length")
        return Body(self.rfile, int(length) if length else (None if te else 0), bool(te))

    def check_length(self, limit: int) -> None:
        """Refuse an announced body over ``limit`` before reading any of it."""
        if not self.body.chunked and self.body.left and self.body.left > limit:
            self.close_connection = True
            raise HubError(
                413, f"Request body of {self.body.left} bytes is larger than the limit of {limit} bytes"
            )

    def read_all(self, limit: int) -> bytes:
        self.check_length(limit)
        try:
            return self.body.read_all(limit)
        except HubError:
            self.close_connection = True
            raise

    def read_json(self, limit: int = MAX_JSON_BODY) -> dict:
        """The body as a JSON object ({} when empty); anything else is a 400."""
        raw = self.read_all(min(self.cfg.max_body, limit))
        return _json_object(raw) if raw else {}

    def read_form_or_json(self) -> dict[str, list[str]]:
        raw = self.read_all(MAX_JSON_BODY)
        if "json" in (self.headers.get("Content-Type") or ""):
            obj = _json_object(raw or b"{}")
            return {k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in obj.items()}
        return parse_qs(raw.decode(errors="replace"), keep_blank_values=True)

    # ------------------------------------------------------------ who is asking
    def user(self, required: bool) -> User | None:
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        user = self.cfg.auth.lookup(token)
        if user is None and required:
            if not self.cfg.users:
                raise HubError(403, "This local Hub is read-only: start it with tokens to allow writes")
            if token:
                raise HubError(401, "Invalid credentials in Authorization header")
            raise HubError(
                401, "Writes need a token: set HF_TOKEN (or pass token=) to a token of this local Hub"
            )
        return user

    def writer(self) -> User:
        user = self.user(True)
        assert user is not None
        return user

    def check_read(self, repo_type: str, repo_id: str) -> dict:
        """Repo metadata if the caller may read it; a private repo is 404 to everyone else."""
        meta = self.store.repo_meta(repo_type, repo_id)
        if not Auth.can_read(self.user(False), repo_id, meta):
            raise HubError(404, f"Repository {repo_type} {repo_id!r} not found", "RepoNotFound")
        return meta

    def check_write(self, repo_type: str, repo_id: str, what: str) -> tuple[User, dict]:
        """(user, metadata) if the caller may write the repo; 403 naming who may, otherwise."""
        user = self.writer()
        meta = self.check_read(repo_type, repo_id)
        if not Auth.can_write(user, repo_id, meta):
            raise HubError(
                403,
                f"User {user.name!r} may not {what} {repo_type} {repo_id!r}: only the owner of namespace "
                f"{repo_id.split('/')[0]!r} (or an admin) may; open a pull request instead",
            )
        return user, meta

    # ------------------------------------------------------------ responses
    def send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(obj).encode(), "application/json; charset=utf-8", headers)

    def send_file(
        self, f: BinaryIO, offset: int, length: int, status: int, ctype: str, headers: dict[str, str]
    ) -> None:
        """``length`` bytes of ``f`` from ``offset``, by ``sendfile`` (no copy through Python)."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        self.wfile.flush()
        self.connection.sendfile(f, offset=offset, count=length)

    def _error(self, e: HubError) -> None:
        body = json.dumps({"error": e.message, **e.extra}).encode()
        headers = {
            "X-Error-Message": e.message.encode("ascii", "replace")
            .decode()[:500]
            .replace("\n", " ")
            .replace("\r", " ")
        }
        if e.code:
            headers["X-Error-Code"] = e.code
        if not self._body_drained():
            self.close_connection = True
            headers["Connection"] = "close"
        try:
            self.send(e.status, body, "application/json", headers)
        except OSError:
            self.close_connection = True

    def _body_drained(self) -> bool:
        """Discard a small unread body so keep-alive stays in sync; give up on big ones."""
        b = self.body
        if b.chunked:
            return b.done
        if not b.left:
            return True
        if b.left > 1 << 20:
            return False
        try:
            b.read_all(1 << 20)
        except (OSError, HubError):
            return False
        return True


def _json_object(raw: bytes) -> dict:
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise HubError(400, f"Body is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(obj, dict):
        raise HubError(400, "Body must be a JSON object")
    return obj
