"""``lmolt-hub push OUTPUT_DIR``: push a finished training output_dir (adapter, card, run info).

For a run trained with ``push_to_hub: false``, or whose push failed: the same checks and the same
single-commit upload as the end of ``lmolt-hub train``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmolt_hub.training.config import RecipeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "output_dir", type=Path, help="a training output_dir (adapter_model.safetensors, README.md)"
    )
    parser.add_argument(
        "--repo-id", default=None,
        help="target repo org/name (default: hub_model_id, or hub_org/hub_name, recorded in run_info.json)",
    )  # fmt: skip
    parser.add_argument("--revision", default=None, help="branch to push to (default main)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument(
        "--overwrite", action="store_true", help="allow pushing onto a revision that already holds a model"
    )


def recorded_repo_id(output_dir: Path) -> str | None:
    """The repo the run was configured to push to, from its run_info.json."""
    from lmolt_hub.naming import repo_id, zoo_name
    from lmolt_hub.training.run_info import RUN_INFO

    path = output_dir / RUN_INFO
    if not path.is_file():
        return None
    info = json.loads(path.read_text(encoding="utf-8"))
    config = info.get("config") or {}
    script, training = config.get("script") or {}, config.get("training") or {}
    if training.get("hub_model_id"):
        return training["hub_model_id"]
    if script.get("hub_org"):
        return repo_id(script["hub_org"], script.get("hub_name") or zoo_name(info.get("method", "sft")))
    return None


def push_output_dir(output_dir: Path, repo_id: str | None, revision: str | None = None,
                    private: bool = False, overwrite: bool = False) -> tuple[str, str]:  # fmt: skip
    """(repo id, commit sha) after pushing ``output_dir``; RecipeError names what is wrong."""
    from lmolt_hub.training import publish

    if not any((output_dir / f).is_file() for f in publish.MODEL_FILES):
        raise RecipeError(
            f"{output_dir} holds no model ({', '.join(publish.MODEL_FILES)}): pass a finished output_dir"
        )
    repo_id = repo_id or recorded_repo_id(output_dir)
    if not repo_id:
        raise RecipeError(f"{output_dir}/run_info.json names no target repo: pass --repo-id ORG/NAME")
    publish.check_push_access(repo_id)
    publish.check_revision_free(repo_id, revision, overwrite)
    sha = publish.push_run(output_dir, repo_id, revision, private, "lmolt-hub: push of a finished run")
    return repo_id, sha


def main(args: argparse.Namespace) -> int:
    try:
        repo_id, sha = push_output_dir(
            args.output_dir, args.repo_id, args.revision, args.private, args.overwrite
        )
    except RecipeError as e:
        print(f"lmolt-hub push: error: {e}", file=sys.stderr)
        return 2
    print(f"pushed: {repo_id} @ {args.revision or 'main'} ({sha})")
    return 0
