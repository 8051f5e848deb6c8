"""Submitting to the leaderboard: a pull request that adds one new folder (results or a request)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.leaderboard import layout
from lmolt_hub.leaderboard.layout import REQUEST_FILE, RESULTS_FILE, SUBMISSION_FILE, SUBMISSIONS_DIR
from lmolt_hub.leaderboard.validate import strict_json


@dataclass
class Submitted:
    folder: str
    pr_num: int | None
    pr_url: str | None


def _open_pr(api: Any, repo_id: str, files: dict[str, bytes], title: str, description: str) -> Submitted:
    from huggingface_hub import CommitOperationAdd

    folder = os.path.dirname(next(iter(files)))
    info = api.create_commit(
        repo_id,
        [CommitOperationAdd(path, data) for path, data in sorted(files.items())],
        commit_message=title,
        commit_description=description,
        repo_type="dataset",
        create_pr=True,
    )
    return Submitted(
        folder=folder, pr_num=getattr(info, "pr_num", None), pr_url=getattr(info, "pr_url", None)
    )


def submit_results(results_path: Path | str, repo_id: str | None = None, api: Any = None) -> Submitted:
    """Open a PR adding a harness results file and its samples (found next to it)."""
    api = layout.hub_api(api)
    repo_id = repo_id or layout.leaderboard_repo()
    results_path = Path(results_path)
    payload = results_path.read_bytes()
    results = strict_json(payload, results_path.name)  # refuse obviously broken files before uploading
    model = (results.get("model") or {}) if isinstance(results, dict) else {}
    model_id = model.get("id") or "unknown/unknown"
    revision = pinned_revision(model) or "unknown"
    namespace = layout.safe_part(model_id.split("/")[0]) if "/" in model_id else "_"
    folder = f"{SUBMISSIONS_DIR}/{namespace}/{layout.submission_id(model_id, revision, payload)}"
    files = {f"{folder}/{RESULTS_FILE}": payload}
    for direction, name in sorted((results.get("samples") or {}).items()):
        sample_path = results_path.parent / str(name)
        if Path(str(name)).name != name or not sample_path.is_file():
            raise FileNotFoundError(f"samples file {name!r} for {direction} not found next to {results_path}")
        files[f"{folder}/{name}"] = sample_path.read_bytes()
    meta = {
        "type": "results",
        "model": model_id,
        "revision": revision,
        "submitted_at": layout.now().isoformat(),
    }
    files[f"{folder}/{SUBMISSION_FILE}"] = json.dumps(meta, indent=1, sort_keys=True).encode()
    return _open_pr(
        api, repo_id, files, f"Results: {model_id}@{revision[:12]}", f"Submitted results for {model_id}."
    )


def submit_request(
    model_id: str, revision: str | None = None, repo_id: str | None = None, api: Any = None
) -> Submitted:
    """Open a PR asking the maintainers to evaluate ``model_id`` with the harness."""
    api = layout.hub_api(api)
    repo_id = repo_id or layout.leaderboard_repo()
    request = {"model": model_id, "revision": revision}
    payload = json.dumps(request, indent=1, sort_keys=True).encode()
    namespace = layout.safe_part(model_id.split("/")[0]) if "/" in model_id else "_"
    folder = f"{SUBMISSIONS_DIR}/{namespace}/{layout.submission_id(model_id, revision or 'main', payload)}"
    meta = {
        "type": "request",
        "model": model_id,
        "revision": revision,
        "submitted_at": layout.now().isoformat(),
    }
    files = {
        f"{folder}/{REQUEST_FILE}": payload,
        f"{folder}/{SUBMISSION_FILE}": json.dumps(meta, indent=1, sort_keys=True).encode(),
    }
    title = f"Evaluation request: {model_id}@{revision or 'main'}"
    return _open_pr(api, repo_id, files, title, f"Please evaluate {model_id}.")
