"""``--push-results``: upload a run to the results dataset and add a ``model-index`` to the model card.

Files go to ``<org>/lmolt-results`` (dataset) under the same relative folder
as locally (``<org>__<model>/<revision>/``). The model card gets one
``model-index`` entry per direction (task ``translation``) with every corpus
metric; when we do not own the model repository, the card change is opened as
a pull request instead of a commit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lmolt_hub.formats import results as R
from lmolt_hub.formats.direction import Direction
from lmolt_hub.hub.push import push_folder
from lmolt_hub.hub.ref import pinned_revision
from lmolt_hub.naming import results_dataset

log = logging.getLogger(__name__)

TASK_NAMES = {d.value: d.task_name for d in Direction}


def default_results_repo(model_id: str | None) -> str:
    org = (
        model_id.split("/")[0]
        if model_id and "/" in model_id and not model_id.startswith((".", "/"))
        else None
    )
    return results_dataset(org)


def model_index(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's ``model-index`` block for a results document."""
    ds = doc["eval_dataset"]
    entries = []
    for direction, metrics in doc["results"].items():
        values = {
            **metrics,
            **{
                f"hallucination_{k}": v
                for k, v in doc["hallucination"].get(direction, {}).items()
                if isinstance(v, (int, float))
            },
        }
        entries.append(
            {
                "task": {"type": "translation", "name": TASK_NAMES.get(direction, direction)},
                "dataset": {
                    "type": ds["id"],
                    "name": f"{ds['id']} ({direction})",
                    "split": ds.get("split") or "test",
                    "revision": pinned_revision(ds),
                },
                "metrics": [
                    {"type": f"{direction}/{name}", "name": name, "value": value}
                    for name, value in values.items()
                    if value is not None
                ],
            }
        )
    return [{"name": doc["model"]["id"].split("/")[-1], "results": entries}]


def _owns(api, repo_id: str) -> bool:
    try:
        me = api.whoami()
    except Exception:  # noqa: BLE001 (no token, or a Hub without whoami: be conservative)
        return False
    names = {me.get("name")} | {o.get("name") for o in me.get("orgs", []) if isinstance(o, dict)}
    return repo_id.split("/")[0] in names


def push_results(
    results_path: str | Path, repo: str | None = None, update_card: bool = True
) -> dict[str, Any]:
    """Upload one run (results JSON, samples, TSVs) and update the model card; return what was done."""
    from huggingface_hub import HfApi, metadata_update

    path = Path(results_path)
    doc = R.read_results(path)
    api = HfApi()
    repo = repo or default_results_repo(doc["model"]["id"])
    folder = f"{path.parent.parent.name}/{path.parent.name}"
    files = [path.name, *doc["samples"].values(), *doc.get("tsv", {}).values()]
    sha = push_folder(path.parent, repo, repo_type="dataset", only=files, path_in_repo=folder,
                      message=f"Results of {doc['model']['id']} ({path.name})")  # fmt: skip
    out: dict[str, Any] = {"results_repo": repo, "results_commit": sha, "path_in_repo": folder}
    model_id = doc["model"]["id"]
    if update_card and doc["kind"] == "model" and doc["model"].get("sha"):
        create_pr = not _owns(api, model_id)
        url = metadata_update(
            model_id,
            {"model-index": model_index(doc)},
            overwrite=True,
            create_pr=create_pr,
            commit_message=f"Add lmolt-hub evaluation results ({doc['eval_dataset']['id']})",
        )
        # metadata_update returns the CommitInfo (a str: the commit URL); a PR's own page is pr_url
        pr_url = getattr(url, "pr_url", None)
        out |= {
            "card_url": str(pr_url or url),
            "card_pr": create_pr,
            "card_pr_num": getattr(url, "pr_num", None),
        }
    return out
