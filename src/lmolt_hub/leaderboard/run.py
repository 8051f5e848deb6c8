"""The leaderboard stage's entry: submit results, review the open PRs, rebuild the site from main."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmolt_hub.leaderboard.layout import create_leaderboard_repo, hub_api
from lmolt_hub.leaderboard.review import ReviewPolicy, review
from lmolt_hub.leaderboard.submit import submit_results


def run(
    results: Sequence[str | Path],
    repo: str,
    *,
    org: str,
    site: Path,
    work_dir: Path,
    policy: ReviewPolicy | None = None,
    **build_options: Any,
) -> dict[str, Any]:
    """Open one PR per results file on ``repo`` (created if missing), review every open PR with
    ``policy``, download main into ``work_dir`` and build the static site into ``site``
    (``build_options`` go to ``build.build``). Returns ``outcomes``, ``document`` and ``sha``
    (main's commit the site was built from)."""
    from huggingface_hub import snapshot_download

    from lmolt_hub.leaderboard.build import build

    create_leaderboard_repo(repo)
    for path in results:
        submit_results(path, repo_id=repo)
    outcomes = review(repo, org=org, policy=policy)
    shutil.rmtree(work_dir, ignore_errors=True)
    sha = hub_api().dataset_info(repo, revision="main").sha
    snapshot_download(repo, repo_type="dataset", revision=sha, local_dir=work_dir)
    document = build(site, results_root=work_dir, **build_options)
    return {"outcomes": outcomes, "document": document, "sha": sha}
