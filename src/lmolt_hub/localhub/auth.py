"""Who may do what on the local Hub: tokens map to users, users own namespaces.

The rules follow huggingface.co:

- reads of public repos need no token; a private repo is readable only by whoever may write it;
- a user writes (commits to branches, tags, settings, deletes) only in its own namespace and in the
  namespaces (organisations) its entry lists, as they are NOW: who created a repo grants nothing,
  so a user removed from an org loses its repos, his own included; an admin writes everywhere;
- anyone with a token may open a pull request or discussion on a repo it can read, and may push
  to the ``refs/pr/N`` it opened (nobody else's); merging needs write access to the repo.

Tokens come from a tokens file (JSON or YAML, ``token -> {user, admin, orgs}``), from the
environment, or (admin tokens, for tests and back-compatibility) from a plain list.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmolt_hub.localhub.names import NAME_RE

DEFAULT_USER = "lmolt-user"
TOKENS_FILE_ENV = "LMOLT_HUB_TOKENS_FILE"
TOKEN_ENV = "LMOLT_HUB_TOKEN"
_TOKEN_RE = re.compile(r"^[\x21-\x7e]{8,512}$")  # printable ASCII, no spaces: it travels in a header


class AuthConfigError(ValueError):
    """A tokens file or token list that cannot be used (message names the problem and the fix)."""


@dataclass(frozen=True)
class User:
    """One token's identity. ``orgs`` are extra namespaces the user may write to."""

    name: str
    admin: bool = False
    orgs: tuple[str, ...] = field(default_factory=tuple)

    def owns_namespace(self, namespace: str) -> bool:
        """Names are case-insensitive, as on the Hub."""
        ns = namespace.lower()
        return self.admin or ns == self.name.lower() or ns in {o.lower() for o in self.orgs}


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name or "--" in name:
        raise AuthConfigError(
            f"{where}: user/org name {name!r} must be 1-96 characters of [A-Za-z0-9._-] "
            "starting with a letter or digit"
        )
    return name


def _check_token(token: object, where: str) -> str:
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise AuthConfigError(f"{where}: a token must be 8-512 printable ASCII characters without spaces")
    return token


def user_from_entry(entry: Any, where: str) -> User:
    """``"alice"`` or ``{"user": "alice", "admin": false, "orgs": ["lab"]}``."""
    if isinstance(entry, str):
        return User(_check_name(entry, where))
    if not isinstance(entry, Mapping):
        raise AuthConfigError(f"{where}: expected a user name or a mapping with 'user' (and 'admin', 'orgs')")
    unknown = set(entry) - {"user", "admin", "orgs"}
    if unknown:
        raise AuthConfigError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: user, admin, orgs")
    admin = entry.get("admin", False)
    if not isinstance(admin, bool):
        raise AuthConfigError(f"{where}: 'admin' must be true or false")
    orgs = entry.get("orgs") or []
    if not isinstance(orgs, list):
        raise AuthConfigError(f"{where}: 'orgs' must be a list of namespace names")
    return User(_check_name(entry.get("user"), where), admin, tuple(_check_name(o, where) for o in orgs))


class Auth:
    """Token -> User lookup (constant-time comparison) and the permission rules."""

    def __init__(self, users: Mapping[str, User] | None = None):
        self.users: dict[str, User] = dict(users or {})

    @classmethod
    def from_tokens(cls, tokens: Iterable[str] | Mapping[str, Any]) -> Auth:
        """A mapping ``token -> entry`` (see ``user_from_entry``) or a list of admin tokens.

        List items may be ``"user:token"`` to name the admin (otherwise ``lmolt-user``): this is
        the pre-namespace form kept for tests, ``use_local_hub`` and ``--token``.
        """
        if isinstance(tokens, Mapping):
            return cls(
                {
                    _check_token(t, "tokens"): user_from_entry(e, f"token {t[:4]}...")
                    for t, e in tokens.items()
                }
            )
        users: dict[str, User] = {}
        for item in tokens:
            name, sep, tok = str(item).rpartition(":")
            users[tok if sep else str(item)] = User(name if sep else DEFAULT_USER, admin=True)
        return cls(users)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Auth:
        """Read a tokens file: JSON or YAML mapping ``token: {user: ..., admin: ..., orgs: [...]}``."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise AuthConfigError(f"cannot read tokens file {p}: {e.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise AuthConfigError(f"tokens file {p} is neither JSON nor YAML: {e}") from None
        if not isinstance(data, Mapping) or not data:
            raise AuthConfigError(
                f"tokens file {p} must map each token to a user, e.g. "
                '\'hf_alice_secret: {user: alice}\' or \'{"hf_x": {"user": "bob", "admin": true}}\''
            )
        return cls.from_tokens({str(k): v for k, v in data.items()})

    def merged(self, other: Auth) -> Auth:
        return Auth({**self.users, **other.users})

    def lookup(self, token: str | None) -> User | None:
        if not token:
            return None
        found = None
        for known, user in self.users.items():  # compare all: timing reveals nothing
            if hmac.compare_digest(token.encode(), known.encode()):
                found = user
        return found

    def first_token(self) -> str | None:
        """An admin token if there is one (``RunningHub.token``), else any token."""
        admins = [t for t, u in self.users.items() if u.admin]
        return (admins or list(self.users) or [None])[0]

    # ---- rules
    @staticmethod
    def can_write(user: User | None, repo_id: str, meta: Mapping[str, Any]) -> bool:
        if user is None:
            return False
        return user.owns_namespace(repo_id.split("/")[0])

    @classmethod
    def can_read(cls, user: User | None, repo_id: str, meta: Mapping[str, Any]) -> bool:
        return not meta.get("private") or cls.can_write(user, repo_id, meta)
