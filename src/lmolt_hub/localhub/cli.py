"""``lmolt-hub serve``: run the local Hub in the foreground."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import secrets
import sys
from pathlib import Path

from lmolt_hub.localhub.auth import TOKEN_ENV, TOKENS_FILE_ENV, Auth, AuthConfigError, User
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.handler import DEFAULT_HEAD_TIMEOUT
from lmolt_hub.localhub.server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_LFS,
    make_server,
)
from lmolt_hub.localhub.storage import Storage

ADMIN_TOKEN_FILE = "admin-token"  # under --root: the generated admin token (mode 0600)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", required=True, help="directory holding the repositories (created if missing)"
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 picks a free one; default 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--tokens-file",
        default=os.environ.get(TOKENS_FILE_ENV),
        help=f"JSON/YAML file mapping each token to {{user, admin, orgs}} (default: ${TOKENS_FILE_ENV}). "
        "Keeps tokens out of `ps`",
    )
    parser.add_argument(
        "--token",
        action="extend",
        nargs="+",
        default=[],
        help="admin token(s) ('user:token' names the admin). Visible to `ps`: prefer --tokens-file or "
        f"${TOKEN_ENV}. Without any token, an admin token is generated into <root>/{ADMIN_TOKEN_FILE}",
    )
    parser.add_argument("--read-only", action="store_true", help="refuse all writes (no token is accepted)")
    parser.add_argument(
        "--max-body-mb",
        type=int,
        default=DEFAULT_MAX_BODY >> 20,
        help="limit for commit request bodies, MiB (other JSON bodies: 16 MiB, validate-yaml: 1 MiB)",
    )
    parser.add_argument(
        "--max-lfs-gb",
        type=int,
        default=DEFAULT_MAX_LFS >> 30,
        help="limit for one LFS object (streamed to disk), GiB",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help=f"open connections served at once (one thread each; default {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        help=f"seconds an idle keep-alive connection is kept (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections-per-client",
        type=int,
        default=None,
        help="connections one client address may hold (default: 3/4 of --max-connections, so a "
        "quarter always stays for other addresses)",
    )
    parser.add_argument(
        "--head-timeout",
        type=float,
        default=None,
        help=f"seconds a request's headers may take from their first byte (default "
        f"{DEFAULT_HEAD_TIMEOUT:g}, or --idle-timeout if shorter): slow-header clients are dropped",
    )
    parser.add_argument(
        "--gc",
        action="store_true",
        help="do not serve: delete blobs no commit references (e.g. after delete_repo) and files a "
        "crash left half-written, then exit; refused while a server holds --root",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")


def _generated_admin(root: Path) -> tuple[Auth, Path]:
    """An admin token kept in <root>/admin-token (created once, mode 0600), never printed."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / ADMIN_TOKEN_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("hf_local_" + secrets.token_hex(16) + "\n")
    return Auth({path.read_text().strip(): User("lmolt-user", admin=True)}), path


def resolve_auth(args: argparse.Namespace) -> tuple[Auth, str]:
    """The server's users and a line telling the operator how to get a token (never the token)."""
    if args.read_only:
        return Auth(), "  read-only: writes are refused"
    auth, sources = Auth(), []
    if args.tokens_file:
        auth = auth.merged(Auth.from_file(args.tokens_file))
        sources.append(f"tokens file {args.tokens_file}")
    if os.environ.get(TOKEN_ENV):
        auth = auth.merged(Auth.from_tokens([os.environ[TOKEN_ENV]]))
        sources.append(f"${TOKEN_ENV}")
    if args.token:
        auth = auth.merged(Auth.from_tokens(args.token))
        sources.append("--token")
    if not auth.users:
        auth, path = _generated_admin(Path(args.root))
        return auth, f'  admin token: export HF_TOKEN="$(cat {path})"'
    n = len(auth.users)
    return auth, f"  {n} token{'s' * (n != 1)} from {', '.join(sources)}: export HF_TOKEN=<your token>"


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if args.gc:
        try:
            removed, freed = Storage(args.root).gc()
        except HubError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 1
        print(f"removed {removed} unreferenced blobs ({freed / 1e6:.1f} MB)")
        return 0
    try:
        auth, token_line = resolve_auth(args)
    except AuthConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        httpd = make_server(
            args.root,
            args.host,
            args.port,
            auth,
            max_body=args.max_body_mb << 20,
            max_lfs=args.max_lfs_gb << 30,
            max_connections=args.max_connections,
            idle_timeout=args.idle_timeout,
            head_timeout=args.head_timeout,
            max_connections_per_client=args.max_connections_per_client,
        )
    except ValueError as e:  # e.g. a per-client cap above --max-connections
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # port taken, or an address this machine does not have: one line, no traceback
        if e.errno != errno.EADDRINUSE:
            print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
            return 1
        print(f"error: port {args.port} on {args.host} is in use (another `lmolt-hub serve`?): "
              "stop it, or pass --port N (--port 0 picks a free one)", file=sys.stderr)  # fmt: skip
        return 1
    host, port = httpd.server_address[:2]
    url = f"http://{host}:{port}"
    print(f"lmolt-hub local Hub serving {httpd.config.storage.root} at {url}", flush=True)
    print(f"  export HF_ENDPOINT={url} HF_HUB_DISABLE_XET=1", flush=True)
    print(token_line, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    finally:
        httpd.server_close()
    return 0
