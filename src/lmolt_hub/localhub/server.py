"""HTTP front of the local Hub: the subset of the huggingface.co API the unmodified clients use.

Standard library only (``ThreadingHTTPServer``, HTTP/1.1 keep-alive). Bodies are
streamed in chunks; downloads use ``sendfile``. Errors carry ``X-Error-Code``
(RepoNotFound, RevisionNotFound, EntryNotFound), which is how the clients type them.

Everything a client sends is bounded: body sizes (per route), chunk sizes and framing
(``wire``), card YAML (``cardmeta``), concurrent connections and idle time per connection.
Who may do what is decided by ``auth``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import mimetypes
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

from lmolt_hub.localhub import storage as st
from lmolt_hub.localhub.auth import Auth, User
from lmolt_hub.localhub.cardmeta import CardError, card_data, load_front_matter
from lmolt_hub.localhub.discussions import Discussions
from lmolt_hub.localhub.names import (
    validate_path,
    validate_repo_id,
    validate_repo_type,
    validate_revision,
    validate_sha256,
)
from lmolt_hub.localhub.storage import HubError, Storage
from lmolt_hub.localhub.wire import CHUNK, Body, attachment, dict_list, int_field, ndjson_item, parse_range

log = logging.getLogger("lmolt_hub.localhub")

DEFAULT_MAX_BODY = 512 << 20  # NDJSON commit bodies (regular files travel base64 in commits)
DEFAULT_MAX_LFS = 100 << 30  # one LFS object, streamed to disk
MAX_JSON_BODY = 16 << 20  # every other JSON / form body
MAX_YAML_BODY = 1 << 20  # /api/validate-yaml (a card's README)
DEFAULT_MAX_CONNECTIONS = 128  # open connections (one thread each)
DEFAULT_IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may wait for its next request
IO_TIMEOUT = 300.0  # seconds of silence within a request before the client is dropped
TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
# Extensions the Hub stores in LFS even when the sample looks like text.
LFS_EXTENSIONS = {
    ".parquet",
    ".arrow",
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".onnx",
    ".msgpack",
    ".npy",
    ".npz",
    ".pkl",
    ".pickle",
    ".gz",
    ".zip",
    ".tar",
    ".zst",
    ".xz",
    ".bz2",
    ".model",
    ".gguf",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".pdf",
    ".wav",
    ".mp3",
    ".tflite",
    ".ot",
    ".joblib",
}
LFS_THRESHOLD = 10 << 20
TREE_PAGE = 1000
TREE_PAGE_EXPAND = 50


class HubConfig:
    """Server settings shared by all request threads."""

    def __init__(
        self,
        root: str | os.PathLike,
        tokens: list[str] | tuple[str, ...] | dict[str, Any] | Auth = (),
        max_body: int = DEFAULT_MAX_BODY,
        max_lfs: int = DEFAULT_MAX_LFS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ):
        self.storage = Storage(root)
        self.discussions = Discussions(self.storage)
        # A list holds admin tokens ("user:token" names the admin); a mapping or Auth maps users.
        self.auth = tokens if isinstance(tokens, Auth) else Auth.from_tokens(tokens)
        self.max_body = max_body
        self.max_lfs = max_lfs
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.secret = secrets.token_bytes(32)  # signs LFS upload URLs (the client PUTs without auth)

    @property
    def users(self) -> dict[str, User]:
        return self.auth.users

    def sign(self, oid: str, size: int) -> str:
        return hmac.new(self.secret, f"{oid}:{size}".encode(), hashlib.sha256).hexdigest()


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


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubHTTPServer
    server_version = "lmolt-hub"
    timeout = IO_TIMEOUT  # seconds of socket silence before a stuck client is dropped

    def handle(self) -> None:
        """Serve requests on this connection; an idle keep-alive connection is dropped sooner."""
        self.close_connection = False
        while not self.close_connection:
            self.connection.settimeout(self.cfg.idle_timeout)
            self.handle_one_request()

    # ------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from stdlib
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def cfg(self) -> HubConfig:
        return self.server.config

    @property
    def store(self) -> Storage:
        return self.server.config.storage

    def base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

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
        self.connection.settimeout(IO_TIMEOUT)  # the request has started: the idle limit is over
        self.body = Body(self.rfile, 0, False)
        raw_path, _, query = self.path.partition("?")
        self.query = parse_qs(query, keep_blank_values=True)
        # Split the raw path first: a revision like refs%2Fpr%2F1 is one segment.
        segs = [unquote(s) for s in raw_path.split("/")[1:]]
        try:
            self.body = self._open_body()
            self._route(method, segs)
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

    def _check_length(self, limit: int) -> None:
        """Refuse an announced body over ``limit`` before reading any of it."""
        if not self.body.chunked and self.body.left and self.body.left > limit:
            self.close_connection = True
            raise HubError(
                413, f"Request body of {self.body.left} bytes is larger than the limit of {limit} bytes"
            )

    def _read_all(self, limit: int) -> bytes:
        self._check_length(limit)
        try:
            return self.body.read_all(limit)
        except HubError:
            self.close_connection = True
            raise

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
            self._send(e.status, body, "application/json", headers)
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

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8", headers)

    def _read_json(self, limit: int = MAX_JSON_BODY) -> Any:
        raw = self._read_all(min(self.cfg.max_body, limit))
        if not raw:
            return {}
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise HubError(400, f"Body is not valid JSON: {str(e)[:200]}") from None
        if not isinstance(obj, dict):
            raise HubError(400, "Body must be a JSON object")
        return obj

    def _read_form_or_json(self) -> dict[str, list[str]]:
        raw = self._read_all(MAX_JSON_BODY)
        if "json" in (self.headers.get("Content-Type") or ""):
            try:
                obj = json.loads(raw or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
                raise HubError(400, f"Body is not valid JSON: {str(e)[:200]}") from None
            if not isinstance(obj, dict):
                raise HubError(400, "Body must be a JSON object")
            return {k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in obj.items()}
        return parse_qs(raw.decode(errors="replace"), keep_blank_values=True)

    def _user(self, required: bool) -> User | None:
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

    def _writer(self) -> User:
        user = self._user(True)
        assert user is not None
        return user

    def _check_read(self, repo_type: str, repo_id: str) -> dict:
        """Repo metadata if the caller may read it; a private repo is 404 to everyone else."""
        meta = self.store.repo_meta(repo_type, repo_id)
        if not Auth.can_read(self._user(False), repo_id, meta):
            raise HubError(404, f"Repository {repo_type} {repo_id!r} not found", "RepoNotFound")
        return meta

    def _check_write(self, repo_type: str, repo_id: str, what: str) -> tuple[User, dict]:
        """(user, metadata) if the caller may write the repo; 403 naming who may, otherwise."""
        user = self._writer()
        meta = self._check_read(repo_type, repo_id)
        if not Auth.can_write(user, repo_id, meta):
            raise HubError(
                403,
                f"User {user.name!r} may not {what} {repo_type} {repo_id!r}: only the owner of namespace "
                f"{repo_id.split('/')[0]!r} (or an admin) may; open a pull request instead",
            )
        return user, meta

    # ------------------------------------------------------------ routing
    def _route(self, method: str, segs: list[str]) -> None:
        if segs == [""] and method in ("GET", "HEAD"):
            return self._index()
        head = segs[0]
        if head == "api":
            return self._route_api(method, segs[1:])
        if head == "site" and method in ("GET", "HEAD"):
            return self._static(segs[1:])
        if head == "lfs-upload" and method == "PUT" and len(segs) == 2:
            return self._lfs_upload(segs[1])
        repo_type = "model"
        if head in ("datasets", "spaces"):
            repo_type, segs = PLURAL[head], segs[1:]
        if len(segs) >= 3 and segs[1].endswith(".git") and segs[2:] == ["info", "lfs", "objects", "batch"]:
            repo_id = f"{segs[0]}/{segs[1][:-4]}"
            return self._lfs_batch(repo_type, repo_id)
        if len(segs) == 2 and method in ("GET", "HEAD"):
            return self._repo_page(repo_type, f"{segs[0]}/{segs[1]}")
        if len(segs) >= 5 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(repo_type, f"{segs[0]}/{segs[1]}", segs[3], "/".join(segs[4:]))
        raise self._unsupported(method)

    def _route_api(self, method: str, segs: list[str]) -> None:
        key = (method, "/".join(segs))
        simple = {
            ("GET", "agent-harnesses"): lambda: self._json({"standardEnvVars": [], "harnesses": {}}),
            ("POST", "validate-yaml"): self._validate_yaml,
            ("GET", "whoami-v2"): self._whoami,
            ("POST", "repos/create"): self._create_repo,
            ("DELETE", "repos/delete"): self._delete_repo,
        }
        if key in simple:
            return simple[key]()
        if segs[:1] == ["telemetry"] and method in ("GET", "HEAD"):
            return self._json({})  # huggingface_hub's usage pings (send_telemetry): accepted, dropped
        if not segs or segs[0] not in PLURAL:
            raise self._unsupported(method)
        repo_type = PLURAL[segs[0]]
        if len(segs) == 1 and method in ("GET", "HEAD"):
            return self._list_repos(repo_type)
        if len(segs) < 3:
            raise self._unsupported(method)
        repo_id = validate_repo_id(f"{segs[1]}/{segs[2]}")
        rest = segs[3:]
        action = rest[0] if rest else ""
        if method in ("GET", "HEAD"):
            if not rest:
                return self._repo_info(repo_type, repo_id, None)
            if action == "revision" and len(rest) == 2:
                return self._repo_info(repo_type, repo_id, rest[1])
            if action == "tree" and len(rest) >= 2:
                return self._tree(repo_type, repo_id, rest[1], "/".join(rest[2:]).strip("/"))
            if action == "refs":
                return self._refs(repo_type, repo_id)
            if action == "commits" and len(rest) == 2:
                return self._commits(repo_type, repo_id, rest[1])
            if action == "discussions" and len(rest) == 1:
                return self._list_discussions(repo_type, repo_id)
            if action == "discussions" and len(rest) == 2:
                return self._discussion(repo_type, repo_id, rest[1])
        if method == "POST":
            if action == "paths-info" and len(rest) == 2:
                return self._paths_info(repo_type, repo_id, rest[1])
            if action == "preupload" and len(rest) == 2:
                return self._preupload(repo_type, repo_id, rest[1])
            if action == "commit" and len(rest) == 2:
                return self._commit(repo_type, repo_id, rest[1])
            if action in ("branch", "tag") and len(rest) == 2:
                return self._create_ref(repo_type, repo_id, action, rest[1])
            if action == "discussions" and len(rest) == 1:
                return self._create_discussion(repo_type, repo_id)
            if action == "discussions" and len(rest) >= 3:
                return self._discussion_action(repo_type, repo_id, rest[1], rest[2])
        if method == "DELETE" and action in ("branch", "tag") and len(rest) == 2:
            self._check_write(repo_type, repo_id, f"delete a {action} of")
            self.store.delete_ref(repo_type, repo_id, "heads" if action == "branch" else "tags", rest[1])
            return self._json({})
        if method == "PUT" and action == "settings":
            self._check_write(repo_type, repo_id, "change the settings of")
            body = self._read_json()
            private = body.get("private")
            if body.get("visibility") in ("private", "public"):
                private = body["visibility"] == "private"
            self.store.update_settings(repo_type, repo_id, private)
            return self._json({})
        raise self._unsupported(method)

    def _unsupported(self, method: str) -> HubError:
        # Logged loudly: a client calling a route we lack is a gap to fill, not a user error.
        log.warning("local Hub: unsupported route %s %s", method, self.path[:300])
        return HubError(404, f"Route not supported by the local Hub: {method} {self.path[:200]}")

    # ------------------------------------------------------------ users, repos
    def _whoami(self) -> None:
        user = self._writer()
        self._json(
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

    def _validate_yaml(self) -> None:
        body = self._read_json(limit=MAX_YAML_BODY)
        content = body.get("content") or ""
        if not isinstance(content, str):
            raise HubError(400, "'content' must be a string")
        try:
            load_front_matter(content)
        except CardError as e:
            return self._json({"errors": [{"message": str(e)}], "warnings": []}, status=400)
        self._json({"errors": [], "warnings": []})

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.base_url()}/{TYPE_PREFIX[repo_type]}{repo_id}"

    def _body_repo(self, user: User) -> tuple[str, str, dict]:
        """(repo type, repo id, body) of a create/delete request; a missing name is a 400."""
        body = self._read_json()
        repo_type = validate_repo_type(body.get("type"))
        name, org = body.get("name"), body.get("organization") or user.name
        for field, value in (("name", name), ("organization", org)):
            if not isinstance(value, str) or not value:
                raise HubError(400, f"Missing or invalid repo {field!r}: expected a non-empty string")
        return repo_type, validate_repo_id(f"{org}/{name}"), body

    def _create_repo(self) -> None:
        user = self._writer()
        repo_type, repo_id, body = self._body_repo(user)
        private = body.get("private") or body.get("visibility") == "private"
        url = self._repo_url(repo_type, repo_id)
        exists = self.store.repo_exists(repo_type, repo_id)
        if exists and Auth.can_read(user, repo_id, self.store.repo_meta(repo_type, repo_id)):
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", extra={"url": url})
        namespace = repo_id.split("/")[0]
        if exists or not user.owns_namespace(namespace):
            raise HubError(
                403,
                f"User {user.name!r} may not create repos in namespace {namespace!r}: "
                f"use your own namespace ({user.name!r}) or ask the Hub's admin for access",
            )
        if not self.store.create_repo(repo_type, repo_id, bool(private), user.name):
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", extra={"url": url})
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        user = self._writer()
        repo_type, repo_id, _ = self._body_repo(user)
        self._check_write(repo_type, repo_id, "delete")
        self.store.delete_repo(repo_type, repo_id)
        self._json({})

    def _info_dict(self, repo_type: str, meta: dict, sha: str, full: bool = True) -> dict:
        repo_id = meta["id"]
        commit = self.store.commit(repo_type, repo_id, sha)
        files = {p: st.FileEntry(**e) for p, e in commit["files"].items()}
        card = card_data(self.store.readme_text(files))
        raw_tags = (card or {}).get("tags") or []
        tags = [
            str(t)
            for t in (raw_tags if isinstance(raw_tags, list) else [raw_tags])
            if isinstance(t, str | int | float)
        ]
        if card and card.get("license"):
            tags.append(f"license:{card['license']}")
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": sha,
            "lastModified": commit["date"],
            "createdAt": meta.get("createdAt"),
            "private": bool(meta.get("private")),
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": tags,
            "cardData": card,
        }
        if repo_type == "model":
            info["modelId"] = repo_id
            if card:
                info["library_name"] = card.get("library_name")
                info["pipeline_tag"] = card.get("pipeline_tag")
        if full:
            info["siblings"] = [
                {
                    "rfilename": p,
                    "size": e.size,
                    "blobId": e.oid,
                    **(
                        {
                            "lfs": {
                                "sha256": e.sha256,
                                "size": e.size,
                                "pointerSize": e.lfs_info()["pointerSize"],
                            }
                        }
                        if e.lfs
                        else {}
                    ),
                }
                for p, e in sorted(files.items())
            ]
            info["usedStorage"] = sum(e.size for e in files.values())
        return info

    def _repo_info(self, repo_type: str, repo_id: str, revision: str | None) -> None:
        meta = self._check_read(repo_type, repo_id)
        sha = self.store.resolve(repo_type, repo_id, revision)
        self._json(self._info_dict(repo_type, meta, sha))

    def _list_repos(self, repo_type: str) -> None:
        q = {k: v[-1] for k, v in self.query.items()}
        author, search = q.get("author"), (q.get("search") or "").lower()
        full = q.get("full", "").lower() in ("1", "true")
        user = self._user(False)
        out = []
        for meta in self.store.list_repos(repo_type):
            if author and meta["id"].split("/")[0] != author:
                continue
            if search and search not in meta["id"].lower():
                continue
            if not Auth.can_read(user, meta["id"], meta):
                continue
            try:
                sha = self.store.resolve(repo_type, meta["id"], "main")
                info = self._info_dict(repo_type, meta, sha, full=full)
                if _matches_filters(info, self.query.get("filter", []), q.get("pipeline_tag")):
                    out.append(info)
            except HubError:
                continue  # deleted meanwhile
            except Exception:  # one broken repo never breaks the listing for everyone
                log.exception("local Hub: skipping %s %s in a listing", repo_type, meta.get("id"))
        reverse = q.get("direction", "-1") == "-1"
        sort = q.get("sort", "lastModified")
        if sort in ("lastModified", "last_modified", "createdAt", "created_at", "id"):
            field = {"last_modified": "lastModified", "created_at": "createdAt"}.get(sort, sort)
            out.sort(key=lambda i: str(i.get(field) or ""), reverse=reverse)
        if q.get("limit", "").isdigit():
            out = out[: int(q["limit"])]
        self._json(out)

    # ------------------------------------------------------------ trees and files
    def _entry_json(self, path: str, e: st.FileEntry, last_commit: dict | None = None) -> dict:
        d: dict[str, Any] = {"type": "file", "oid": e.oid, "size": e.size, "path": path}
        if e.lfs:
            d["lfs"] = e.lfs_info()
        if last_commit is not None:
            d["lastCommit"] = last_commit
        return d

    def _last_commits(self, repo_type: str, repo_id: str, sha: str, paths: list[str]) -> dict[str, dict]:
        """Newest commit (first-parent walk) that changed each path, for ``expand=true``."""
        wanted, out = set(paths), {}
        cur = self.store.commit(repo_type, repo_id, sha)
        while wanted:
            parent = self.store.commit(repo_type, repo_id, cur["parents"][0]) if cur["parents"] else None
            info = {"id": cur["id"], "title": cur["title"], "date": cur["date"]}
            for p in list(wanted):
                mine = cur["files"].get(p) or {k: v for k, v in cur["files"].items() if k.startswith(p + "/")}
                theirs = (
                    (
                        parent["files"].get(p)
                        or {k: v for k, v in parent["files"].items() if k.startswith(p + "/")}
                    )
                    if parent
                    else None
                )
                if parent is None or mine != theirs:
                    out[p] = info
                    wanted.discard(p)
            if parent is None:
                break
            cur = parent
        return out

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        if path:
            validate_path(path)
        self._check_read(repo_type, repo_id)
        sha = self.store.resolve(repo_type, repo_id, revision)
        files = self.store.files(repo_type, repo_id, sha)
        recursive = self.query.get("recursive", ["false"])[-1].lower() in ("1", "true")
        expand = self.query.get("expand", ["false"])[-1].lower() in ("1", "true")
        prefix = f"{path}/" if path else ""
        if path and path in files:
            raise HubError(400, f"{path!r} is a file, not a folder")
        entries: dict[str, dict] = {}
        for p, e in files.items():
            if not p.startswith(prefix):
                continue
            rel = p[len(prefix) :].split("/")
            if recursive:
                for i in range(1, len(rel)):
                    d = prefix + "/".join(rel[:i])
                    entries.setdefault(
                        d, {"type": "directory", "oid": _tree_oid(files, d), "size": 0, "path": d}
                    )
                entries[p] = self._entry_json(p, e)
            elif len(rel) == 1:
                entries[p] = self._entry_json(p, e)
            else:
                d = prefix + rel[0]
                entries.setdefault(d, {"type": "directory", "oid": _tree_oid(files, d), "size": 0, "path": d})
        if path and not entries:
            raise HubError(404, f"Folder {path!r} not found at {revision!r}", "EntryNotFound")
        items = [entries[k] for k in sorted(entries)]
        page = TREE_PAGE_EXPAND if expand else TREE_PAGE
        start = int(self.query.get("cursor", ["0"])[-1] or 0)
        chunk = items[start : start + page]
        if expand and chunk:
            last = self._last_commits(repo_type, repo_id, sha, [i["path"] for i in chunk])
            for i in chunk:
                i["lastCommit"] = last.get(i["path"])
        headers = {}
        if start + page < len(items):
            q = {k: v[-1] for k, v in self.query.items()}
            q["cursor"] = str(start + page)
            raw_path = self.path.partition("?")[0]
            headers["Link"] = f'<{self.base_url()}{raw_path}?{urlencode(q)}>; rel="next"'
        self._json(chunk, headers=headers)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        form = self._read_form_or_json()
        self._check_read(repo_type, repo_id)
        sha = self.store.resolve(repo_type, repo_id, revision)
        files = self.store.files(repo_type, repo_id, sha)
        expand = (form.get("expand") or ["false"])[-1].lower() in ("1", "true")
        out = []
        for p in form.get("paths", []):
            p = p.strip("/")
            if p in files:
                out.append(self._entry_json(p, files[p]))
            elif any(f.startswith(p + "/") for f in files):
                out.append({"type": "directory", "oid": _tree_oid(files, p), "size": 0, "path": p})
        if expand and out:
            last = self._last_commits(repo_type, repo_id, sha, [i["path"] for i in out])
            for i in out:
                i["lastCommit"] = last.get(i["path"])
        self._json(out)

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        validate_repo_id(repo_id)
        validate_path(path)
        self._check_read(repo_type, repo_id)
        sha = self.store.resolve(repo_type, repo_id, revision)
        entry = self.store.files(repo_type, repo_id, sha).get(path)
        if entry is None:
            raise HubError(404, f"Entry {path!r} not found in {repo_id} at {revision!r}", "EntryNotFound")
        headers = {
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
            "Cache-Control": "private, max-age=0"
            if not _is_sha(revision)
            else "public, max-age=31536000, immutable",
            "Access-Control-Expose-Headers": "X-Repo-Commit,X-Linked-Etag,X-Linked-Size,ETag,Content-Range",
            # Uploaded files are never rendered on the zoo's origin (no stored XSS via .html/.svg).
            "Content-Disposition": attachment(path),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        }
        if entry.lfs:
            headers["ETag"] = f'"{entry.sha256}"'
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        else:
            headers["ETag"] = f'"{entry.oid}"'
        start, end = 0, entry.size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            parsed = parse_range(rng, entry.size)
            if parsed is None:
                raise HubError(416, f"Range {rng!r} not satisfiable for a file of {entry.size} bytes")
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        self.wfile.flush()
        with self.store.open_blob(entry.sha256) as f:
            self.connection.sendfile(f, offset=start, count=length)

    # ------------------------------------------------------------ uploads and commits
    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._writer()
        body = self._read_json()
        self._check_read(repo_type, repo_id)
        if "create_pr" not in self.query:
            self.store.resolve(repo_type, repo_id, revision)
        out = []
        for f in dict_list(body, "files"):
            path = validate_path(f.get("path", ""))
            try:
                sample = base64.b64decode(f.get("sample") or "")
            except (binascii.Error, ValueError):
                sample = b""
            size = int(f.get("size") or 0)
            binary = b"\x00" in sample or os.path.splitext(path)[1].lower() in LFS_EXTENSIONS
            mode = "lfs" if size > 0 and (binary or size >= LFS_THRESHOLD) else "regular"
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": None})
        self._json({"files": out, "commitOid": None})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        self._writer()
        body = self._read_json()
        self._check_read(repo_type, repo_id)
        if body.get("operation") not in ("upload", "download"):
            raise HubError(400, "LFS batch operation must be 'upload' or 'download'")
        objects = []
        for obj in dict_list(body, "objects"):
            oid, size = validate_sha256(obj.get("oid", "")), int_field(obj.get("size", -1), "size")
            if size < 0 or size > self.cfg.max_lfs:
                objects.append(
                    {
                        "oid": oid,
                        "size": size,
                        "error": {"code": 422, "message": f"Size {size} outside 0..{self.cfg.max_lfs}"},
                    }
                )
                continue
            item: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if body["operation"] == "upload" and self.store.has_blob(oid, size):
                self.store.touch_blob(oid)  # the commit that follows references it: keep it from gc
            elif body["operation"] == "upload":
                href = f"{self.base_url()}/lfs-upload/{oid}?size={size}&sig={self.cfg.sign(oid, size)}"
                item["actions"] = {"upload": {"href": href, "expires_in": 86400}}
            objects.append(item)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            "application/vnd.git-lfs+json",
        )

    def _lfs_upload(self, oid: str) -> None:
        validate_sha256(oid)
        size = int_field(self.query.get("size", ["-1"])[-1], "size")
        sig = self.query.get("sig", [""])[-1]
        if not hmac.compare_digest(sig.encode(), self.cfg.sign(oid, size).encode()):
            raise HubError(403, "Invalid or expired LFS upload signature")
        if self.body.left is not None and not self.body.chunked and self.body.left != size:
            raise HubError(400, f"Content-Length {self.body.left} does not match the announced size {size}")
        try:
            if self.store.has_blob(oid, size):
                self._discard(size)  # already stored: read (at most) the announced bytes and accept
                self.store.touch_blob(oid)
            else:
                self.store.put_stream(self.body.read, size, oid)
            if not self.body.at_end():  # bytes beyond the announced size are refused, never parsed
                raise HubError(400, f"Upload body is longer than the announced size {size}")
        except (HubError, OSError):
            self.close_connection = True  # OSError: client vanished mid-body; temp file already removed
            raise
        self._send(200, b"", "text/plain")

    def _discard(self, size: int) -> None:
        left = size
        while left > 0 and (chunk := self.body.read(min(CHUNK, left))):
            left -= len(chunk)

    def _check_commit_target(self, repo_type: str, repo_id: str, revision: str, create_pr: bool) -> User:
        """Branches need write access; a new PR needs read access; refs/pr/N only its author (or a writer)."""
        user = self._writer()
        meta = self._check_read(repo_type, repo_id)
        if create_pr or Auth.can_write(user, repo_id, meta):
            return user
        num = revision.removeprefix("refs/pr/")
        if revision.startswith("refs/pr/") and num.isdigit():
            disc = self.cfg.discussions.get(repo_type, repo_id, int(num))
            if disc["isPullRequest"] and disc["author"]["name"] == user.name:
                return user
            raise HubError(
                403,
                f"User {user.name!r} may not push to {revision!r} of {repo_id!r}: only the author of "
                f"pull request #{num} (or the repo's owner) may",
            )
        raise HubError(
            403,
            f"User {user.name!r} may not push to {revision!r} of {repo_type} {repo_id!r}: only the owner "
            f"of namespace {repo_id.split('/')[0]!r} (or an admin) may; open a pull request (create_pr=True)",
        )

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        validate_revision(revision)
        create_pr = self.query.get("create_pr", ["0"])[-1] in ("1", "true", "True")
        user = self._check_commit_target(repo_type, repo_id, revision, create_pr)
        self._check_length(self.cfg.max_body)
        header: dict = {}
        ops: list[tuple[str, str, st.FileEntry | None]] = []
        for line in self.body.lines(self.cfg.max_body):
            key, value = ndjson_item(line)
            if key == "header":
                header = value
                continue
            path = value.get("path", "")
            path = validate_path(
                path.strip("/") if key == "deletedFolder" and isinstance(path, str) else path
            )
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, "Only base64-encoded regular files are supported")
                ops.append((key, path, st.regular_entry(self.store, value.get("content", ""))))
            elif key == "lfsFile":
                oid = validate_sha256(value.get("oid", ""))
                size = value.get("size")
                if size is None and self.store.has_blob(oid):
                    size = self.store.blob_path(oid).stat().st_size
                ops.append(
                    (key, path, st.lfs_entry(oid, int_field(size if size is not None else -1, "size")))
                )
            elif key in ("deletedFile", "deletedFolder"):
                ops.append((key, path, None))
            else:
                raise HubError(400, f"Unknown commit operation {str(key)[:40]!r}")
        sha, pr = self.cfg.discussions.commit(repo_type, repo_id, revision, header, ops, user.name, create_pr)
        url = self._repo_url(repo_type, repo_id)
        out = {"success": True, "commitOid": sha, "commitUrl": f"{url}/commit/{sha}"}
        if pr is not None:
            out["pullRequestUrl"] = f"{url}/discussions/{pr}"
        self._json(out)

    # ------------------------------------------------------------ refs and history
    def _refs(self, repo_type: str, repo_id: str) -> None:
        self._check_read(repo_type, repo_id)
        refs = self.store.refs(repo_type, repo_id)

        def fmt(kind: str, prefix: str) -> list[dict]:
            return [
                {"name": n, "ref": f"{prefix}{n}", "targetCommit": s} for n, s in sorted(refs[kind].items())
            ]

        out = {"branches": fmt("heads", "refs/heads/"), "tags": fmt("tags", "refs/tags/"), "converts": []}
        if self.query.get("include_prs"):
            out["pullRequests"] = fmt("pr", "refs/pr/")
        self._json(out)

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        self._check_read(repo_type, repo_id)
        sha = self.store.resolve(repo_type, repo_id, revision)
        out = [
            {
                "id": c["id"],
                "title": c["title"],
                "message": c["message"],
                "date": c["date"],
                "authors": [{"user": a} for a in c["authors"]],
                "formatted": {"title": c["title"], "message": c["message"]},
            }
            for c in self.store.history(repo_type, repo_id, sha)
        ]
        self._json(out)

    def _create_ref(self, repo_type: str, repo_id: str, kind: str, name: str) -> None:
        self._check_write(repo_type, repo_id, f"create a {kind} in")
        body = self._read_json()
        if kind == "branch":
            start = body.get("startingPoint")
            if start is not None and not isinstance(start, str):
                raise HubError(400, "'startingPoint' must be a revision string")
            self.store.create_ref(repo_type, repo_id, "heads", name, start)
        else:  # POST /tag/{revision} with {"tag": name}
            self.store.create_ref(repo_type, repo_id, "tags", str(body.get("tag", "")), name)
        self._json({})

    # ------------------------------------------------------------ discussions
    def _list_discussions(self, repo_type: str, repo_id: str) -> None:
        self._check_read(repo_type, repo_id)
        q = {k: v[-1] for k, v in self.query.items()}
        items = self.cfg.discussions.list(repo_type, repo_id)
        dtype, status, author = q.get("type", "all"), q.get("status", "all"), q.get("author")
        if dtype == "pull_request":
            items = [i for i in items if i["isPullRequest"]]
        elif dtype == "discussion":
            items = [i for i in items if not i["isPullRequest"]]
        if status == "open":
            items = [i for i in items if i["status"] in ("open", "draft")]
        elif status == "closed":
            items = [i for i in items if i["status"] in ("closed", "merged")]
        if author:
            items = [i for i in items if i["author"]["name"] == author]
        page = int(q.get("p", "0") or 0)
        per = 50
        chunk = items[page * per : (page + 1) * per]
        summaries = [
            {k: v for k, v in i.items() if k not in ("events", "changes", "filesWithConflicts")}
            for i in chunk
        ]
        for summary, item in zip(summaries, chunk, strict=True):
            summary["numComments"] = sum(e["type"] == "comment" for e in item["events"][1:])
        self._json(
            {
                "discussions": summaries,
                "count": len(items),
                "start": page * per,
                "numClosedDiscussions": sum(i["status"] in ("closed", "merged") for i in items),
            }
        )

    def _discussion(self, repo_type: str, repo_id: str, num: str) -> None:
        self._check_read(repo_type, repo_id)
        disc = self.cfg.discussions.get(repo_type, repo_id, _num(num))
        if disc["isPullRequest"]:
            disc.setdefault("filesWithConflicts", [])
            disc["diff"] = self._pr_diff(repo_type, repo_id, disc)
        self._json(disc)

    def _pr_diff(self, repo_type: str, repo_id: str, disc: dict) -> str:
        """A name-status summary of what the PR changes against its base."""
        refs = self.store.refs(repo_type, repo_id)
        head = refs["pr"].get(str(disc["num"]))
        base = disc.get("baseCommit")
        if not head or not base:
            return ""
        a, b = self.store.files(repo_type, repo_id, base), self.store.files(repo_type, repo_id, head)
        lines = [
            f"{'A' if p not in a else 'D' if p not in b else 'M'}\t{p}"
            for p in sorted(set(a) | set(b))
            if a.get(p) != b.get(p)
        ]
        return "\n".join(lines)

    def _create_discussion(self, repo_type: str, repo_id: str) -> None:
        user = self._writer()
        body = self._read_json()
        self._check_read(repo_type, repo_id)
        disc = self.cfg.discussions.create(
            repo_type,
            repo_id,
            str(body.get("title") or ""),
            str(body.get("description") or ""),
            bool(body.get("pullRequest")),
            user.name,
        )
        self._json(
            {
                "num": disc["num"],
                "pullRequest": disc["isPullRequest"],
                "url": f"{self._repo_url(repo_type, repo_id)}/discussions/{disc['num']}",
            }
        )

    def _discussion_action(self, repo_type: str, repo_id: str, num_s: str, action: str) -> None:
        user = self._writer()
        body = self._read_json() or {}
        num = _num(num_s)
        meta = self._check_read(repo_type, repo_id)
        comment = body.get("comment")
        comment = None if comment is None else str(comment)
        if action == "comment":
            event = self.cfg.discussions.comment(repo_type, repo_id, num, comment or "", user.name)
            return self._json({"newMessage": event})
        writer = Auth.can_write(user, repo_id, meta)
        if action in ("status", "title") and not writer:
            if self.cfg.discussions.get(repo_type, repo_id, num)["author"]["name"] != user.name:
                raise HubError(
                    403,
                    f"User {user.name!r} may not change #{num} of {repo_id!r}: only its author or the owner",
                )
        if action == "status":
            event = self.cfg.discussions.change_status(
                repo_type, repo_id, num, str(body.get("status", "")), comment, user.name
            )
            return self._json({"newStatus": event})
        if action == "title":
            event = self.cfg.discussions.rename(
                repo_type, repo_id, num, str(body.get("title", "")).strip(), user.name
            )
            return self._json({"newTitle": event})
        if action == "merge":
            if not writer:
                raise HubError(
                    403, f"User {user.name!r} may not merge pull requests of {repo_id!r}: only the owner may"
                )
            expected = body.get("expectedHeadOid")  # local extension: merge only the reviewed head
            if expected is not None and not isinstance(expected, str):
                raise HubError(400, "'expectedHeadOid' must be a commit sha")
            sha = self.cfg.discussions.merge_pr(repo_type, repo_id, num, comment, user.name, expected)
            return self._json({"mergeCommitId": sha})
        raise HubError(404, f"Unknown discussion action {action!r}")

    # ------------------------------------------------------------ pages
    def _index(self) -> None:
        from lmolt_hub.localhub.zoo import render_index

        self._send(200, render_index(self.store).encode(), "text/html; charset=utf-8")

    def _repo_page(self, repo_type: str, repo_id: str) -> None:
        from lmolt_hub.localhub.zoo import render_repo

        validate_repo_id(repo_id)
        self._check_read(repo_type, repo_id)
        self._send(
            200,
            render_repo(self.store, self.cfg.discussions, repo_type, repo_id).encode(),
            "text/html; charset=utf-8",
        )

    def _static(self, segs: list[str]) -> None:
        rel = "/".join(segs) or "index.html"
        validate_path(rel)
        site = (self.store.root / "site").resolve()
        target = (site / rel).resolve()
        if site not in target.parents:
            raise HubError(400, f"Invalid path {rel!r}")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            raise HubError(404, f"No such page: /site/{rel}", "EntryNotFound")
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/json", "application/javascript"):
            ctype += "; charset=utf-8"
        size = target.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if self.command != "HEAD" and size:
            self.wfile.flush()
            with open(target, "rb") as f:
                self.connection.sendfile(f)


# ---------------------------------------------------------------- helpers


def _is_sha(rev: str) -> bool:
    return len(rev) == 40 and all(c in "0123456789abcdef" for c in rev)


def _matches_filters(info: dict, filters: list[str], pipeline_tag: str | None) -> bool:
    """``filter=`` values must all be among the repo's tags, library, pipeline tag or ``dataset:`` links."""
    card = info.get("cardData") or {}
    datasets = card.get("datasets") or []
    known = set(info.get("tags") or []) | {
        f"dataset:{d}" for d in (datasets if isinstance(datasets, list) else [])
    }
    known |= {str(v) for v in (info.get("library_name"), info.get("pipeline_tag")) if v}
    if pipeline_tag and info.get("pipeline_tag") != pipeline_tag:
        return False
    return all(f in known for f in filters)


def _num(s: str) -> int:
    if not s.isdigit():
        raise HubError(400, f"Invalid discussion number {s[:20]!r}")
    return int(s)


def _tree_oid(files: dict[str, st.FileEntry], folder: str) -> str:
    prefix = folder + "/"
    h = hashlib.sha1()
    for p in sorted(files):
        if p.startswith(prefix):
            h.update(f"{p}\0{files[p].oid}\n".encode())
    return h.hexdigest()


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


Tokens = list[str] | tuple[str, ...] | dict[str, Any] | Auth


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
    if isinstance(tokens, tuple):
        tokens = list(tokens)
    config = HubConfig(root, tokens, max_body, max_lfs, max_connections, idle_timeout)
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
