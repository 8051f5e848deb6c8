"""``lmolt-hub serve``: run the local Hub in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys

from lmolt_hub.localhub.server import DEFAULT_MAX_BODY, DEFAULT_MAX_LFS, make_server


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", required=True, help="directory holding the repositories (created if missing)"
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 picks a free one; default 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--token",
        action="extend",
        nargs="+",
        default=[],
        help="token(s) allowed to write (several after one --token, or repeat it; 'user:token' names the committing user). "
        "Default: $LMOLT_HUB_TOKEN, else a random token printed at start-up",
    )
    parser.add_argument("--read-only", action="store_true", help="refuse all writes (no token is accepted)")
    parser.add_argument(
        "--max-body-mb",
        type=int,
        default=DEFAULT_MAX_BODY >> 20,
        help="limit for JSON/commit request bodies, MiB",
    )
    parser.add_argument(
        "--max-lfs-gb",
        type=int,
        default=DEFAULT_MAX_LFS >> 30,
        help="limit for one LFS object (streamed to disk), GiB",
    )
    parser.add_argument(
        "--gc",
        action="store_true",
        help="do not serve: delete blobs no commit references (e.g. after delete_repo) and exit",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if args.gc:
        from lmolt_hub.localhub.storage import Storage

        removed, freed = Storage(args.root).gc()
        print(f"removed {removed} unreferenced blobs ({freed / 1e6:.1f} MB)")
        return 0
    tokens = list(args.token)
    if not tokens and not args.read_only:
        tokens = [os.environ.get("LMOLT_HUB_TOKEN") or "hf_local_" + secrets.token_hex(16)]
    if args.read_only:
        tokens = []
    httpd = make_server(
        args.root,
        args.host,
        args.port,
        tokens,
        max_body=args.max_body_mb << 20,
        max_lfs=args.max_lfs_gb << 30,
    )
    host, port = httpd.server_address[:2]
    url = f"http://{host}:{port}"
    print(f"lmolt-hub local Hub serving {httpd.config.storage.root} at {url}", flush=True)
    print(f"  export HF_ENDPOINT={url} HF_HUB_DISABLE_XET=1", flush=True)
    if tokens:
        print(f"  export HF_TOKEN={tokens[0].rpartition(':')[2]}", flush=True)
    else:
        print("  read-only: writes are refused", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr)
    finally:
        httpd.server_close()
    return 0
