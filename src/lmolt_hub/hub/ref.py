"""Pinned references: which repo (or local directory) a stage reads, at which exact commit.

One rule decides whether a string names a local directory or a Hub repo (:func:`is_local`), and
one function pins a Hub repo to its commit sha with the Hub's answers mapped to one-line errors
(:func:`pin`). Stages that need more (an eval set's rows, a merge input's download) subclass
:class:`HubRef` with their own fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmolt_hub.hub.errors import hub_endpoint, hub_error_message

TINY_SCHEME = "tiny://"
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")  # org/name
NOUNS = {"model": "model", "dataset": "dataset", "space": "space"}


class RefError(ValueError):
    """A reference that cannot be pinned: the message names the problem and the fix."""


@dataclass
class HubRef:
    """A repo on the Hub or a local directory, with the commit it was pinned to."""

    id: str  # as written: Hub id, local path, or tiny://...
    revision: str | None = None  # what was asked for (branch, tag or sha); None: main
    sha: str | None = None  # the exact Hub commit (None for local paths)
    repo_type: str = "model"
    local_path: Path | None = None  # set for a local directory (and a built tiny model)

    @property
    def is_hub(self) -> bool:
        return self.local_path is None

    @property
    def pinned(self) -> str | None:
        """The revision to read with: the resolved sha, else what was asked for."""
        return self.sha or self.revision

    @property
    def source(self) -> str:
        """What ``from_pretrained``/``load_dataset`` is given: the local path, else the Hub id."""
        return str(self.local_path) if self.local_path is not None else self.id


def is_tiny(ref: str) -> bool:
    return ref.startswith(TINY_SCHEME)


def is_local(ref: str) -> bool:
    """True when ``ref`` names a local path, False for a Hub id.

    An existing path is local; so is anything written as a path (absolute, ``./``, ``../``,
    ``~``), which then fails as a missing directory rather than as an unknown Hub repo.
    Everything else (``org/name``) is a Hub id.
    """
    if not ref or is_tiny(ref):
        return False
    return ref.startswith((".", "/", "~")) or Path(ref).is_absolute() or Path(ref).expanduser().exists()


def is_hub_id(ref: str) -> bool:
    """Whether ``ref`` is shaped like a Hub id (``org/name``) and does not name a local path."""
    return not is_local(ref) and bool(HUB_ID.match(ref))


def pinned_revision(block: Mapping[str, Any]) -> str | None:
    """The revision a results/card block pins: its ``sha``, else its ``revision``."""
    return block.get("sha") or block.get("revision")


def local_ref(ref: str, repo_type: str = "model") -> HubRef:
    return HubRef(ref, repo_type=repo_type, local_path=Path(ref).expanduser())


def repo_info(repo_id: str, revision: str | None = None, *, repo_type: str = "model", what: str | None = None,
              hint: str = "", error: type[Exception] = RefError, offline_is_missing: bool = False,
              api: Any = None, **kwargs: Any):  # fmt: skip
    """``HfApi().repo_info`` with the Hub's answers as one-line ``error``s.

    Connection and token failures are re-raised untouched: the entry point's
    :func:`lmolt_hub.hub.errors.user_errors` turns them into the one line naming ``HF_ENDPOINT``;
    with ``offline_is_missing`` they are ``error``s too ("not found locally, and no Hub answers").
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    what = what or NOUNS.get(repo_type, repo_type)
    try:
        return (api or HfApi()).repo_info(repo_id, revision=revision, repo_type=repo_type, **kwargs)
    except GatedRepoError as exc:
        raise error(f"{what} {repo_id}: the repository is gated; accept its terms on the Hub and log in "
                    "(hf auth login)") from exc  # fmt: skip
    except RevisionNotFoundError as exc:
        raise error(f"{what} {repo_id}: revision {revision!r} not found") from exc
    except RepositoryNotFoundError as exc:
        noun = NOUNS.get(repo_type, repo_type)
        raise error(
            f"{what} {repo_id!r} not found on the Hub ({hub_endpoint()}): neither a local directory nor a "
            f"{noun} on the Hub; {hint or 'check the id, or log in if it is private'}"
        ) from exc
    except HFValidationError as exc:  # not a valid repo id at all
        raise error(f"{what} {repo_id!r} is not a local path and not a valid Hub id (org/name)") from exc
    except Exception as exc:
        message = hub_error_message(exc)  # no Hub answers, or it refused the token
        if message is not None:
            if not offline_is_missing:
                raise
            raise error(f"{what} {repo_id!r} not found locally, and {message}") from None
        if not isinstance(exc, HfHubHTTPError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{what} {repo_id}: the Hub refused the request ({first})") from exc


def pin(ref: str, revision: str | None = None, *, repo_type: str = "model", what: str | None = None,
        hint: str = "", error: type[Exception] = RefError) -> HubRef:  # fmt: skip
    """``ref`` as a :class:`HubRef`: a local path as is (it must exist), a Hub id pinned to its commit sha."""
    if is_local(ref):
        if not Path(ref).expanduser().exists():
            raise error(f"{what or NOUNS.get(repo_type, repo_type)} {ref}: no such local path")
        return local_ref(ref, repo_type)
    info = repo_info(ref, revision, repo_type=repo_type, what=what, hint=hint, error=error)
    return HubRef(ref, revision, info.sha, repo_type)
