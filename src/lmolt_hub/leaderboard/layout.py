"""The leaderboard repository: its id, its folder layout, its card, and how it is read.

Layout of ``<org>/lmolt-leaderboard`` (a dataset repo)::

    submissions/<namespace>/<submission-id>/submission.json   what it is, who, when
    submissions/<namespace>/<submission-id>/results.json      a harness results file ...
    submissions/<namespace>/<submission-id>/samples_*.jsonl   ... with its samples
    submissions/<namespace>/<submission-id>/request.json      or: a request to evaluate a model
    submissions/<namespace>/<submission-id>/verification.json written by the reviewer on acceptance

A submission only ever *adds* files in its own new folder (``review`` enforces it).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
from pathlib import Path
from typing import Any

import yaml

from lmolt_hub.hub.cards import LeaderboardMeta
from lmolt_hub.naming import leaderboard_dataset

SUBMISSIONS_DIR = "submissions"
SUBMISSION_FILE = "submission.json"
VERIFICATION_FILE = "verification.json"
RESULTS_FILE = "results.json"
REQUEST_FILE = "request.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def leaderboard_repo(org: str | None = None) -> str:
    return leaderboard_dataset(org)


def hub_api(api: Any = None) -> Any:
    if api is not None:
        return api
    from huggingface_hub import HfApi

    return HfApi()


def safe_part(part: str) -> str:
    return _SAFE.sub("-", part).strip("-") or "_"


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def submission_id(model_id: str, revision: str, payload: bytes) -> str:
    digest = hashlib.sha256(payload).hexdigest()[:10]
    stamp = now().strftime("%Y%m%dT%H%M%S")
    return f"{safe_part(model_id.split('/')[-1])}-{safe_part(revision)[:12]}-{stamp}-{digest}"


def tree(api: Any, repo_id: str, revision: str) -> dict[str, tuple[str | None, int]]:
    """path -> (blob id, size) of every file at ``revision``."""
    out = {}
    for entry in api.list_repo_tree(repo_id, recursive=True, revision=revision, repo_type="dataset"):
        if hasattr(entry, "size") and not hasattr(entry, "tree_id"):
            out[entry.path] = (getattr(entry, "blob_id", None), int(entry.size or 0))
    return out


def head(api: Any, repo_id: str, ref: str) -> str:
    """The commit sha ``ref`` points at now (everything of one review is read at this sha)."""
    return api.dataset_info(repo_id, revision=ref).sha


def read_file(api: Any, repo_id: str, path: str, revision: str = "main") -> bytes:
    return Path(api.hf_hub_download(repo_id, path, repo_type="dataset", revision=revision)).read_bytes()


def download(api: Any, repo_id: str, revision: str, paths: list[str], target: Path) -> Path:
    for path in paths:  # through ``api``: its endpoint and token
        api.hf_hub_download(repo_id, path, repo_type="dataset", revision=revision, local_dir=target)
    return target / os.path.dirname(paths[0])


def whoami(api: Any) -> str | None:
    try:
        return api.whoami()["name"]
    except Exception:  # noqa: BLE001 - anonymous or an old server
        return None


CARD_DATA = {
    "license": "apache-2.0",
    "pretty_name": "lmolt-hub leaderboard submissions",
    "tags": ["leaderboard", "chemistry", "molecule-captioning"],
}
CARD_BODY = """# lmolt-hub leaderboard

Submissions to the lmolt-hub leaderboard (machine language-molecule translation,
L+M-24 3k evaluation set). Open a pull request with `lmolt-hub leaderboard submit`;
`lmolt-hub leaderboard review` validates it, recomputes the metrics from the samples,
and merges or closes it with a comment. `main` holds accepted submissions only.
"""


def create_leaderboard_repo(repo_id: str, api: Any = None) -> str:
    """Create the dataset repo with its card if it does not exist; return its id."""
    from huggingface_hub import CommitOperationAdd

    api = hub_api(api)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
    if not api.file_exists(repo_id, "README.md", repo_type="dataset"):
        reviewers = sorted({whoami(api)} - {None})  # whose review comments count
        card = CARD_DATA | LeaderboardMeta(reviewers=reviewers).to_front_matter()
        text = f"---\n{yaml.safe_dump(card, sort_keys=False).strip()}\n---\n{CARD_BODY}"
        api.create_commit(
            repo_id,
            [CommitOperationAdd("README.md", text.encode())],
            commit_message="Leaderboard repository card",
            repo_type="dataset",
        )
    return repo_id
