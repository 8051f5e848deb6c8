"""What a second user of the local Hub does in the leaderboard's adversarial tests: real eval rows,
model repos pushed with the real client, submission PRs, and a forger's careful re-scoring."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path


def eval_rows(n: int) -> list[dict[str, str]]:
    """The first ``n`` real ChEBI-20 test pairs, as eval-set rows."""
    from lmolt_hub.resources import chebi20_split

    with open(chebi20_split("test"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    return [{"id": r["CID"], "molecule": r["SMILES"], "caption": r["description"]} for r in rows]


def model_repo(api, repo: str, files: dict[str, bytes | Path]) -> str:
    """Create ``repo`` and commit ``files`` (bytes or a local path) in one commit; its sha."""
    from huggingface_hub import CommitOperationAdd

    api.create_repo(repo, exist_ok=True)
    ops = [CommitOperationAdd(p, str(d) if isinstance(d, Path) else d) for p, d in files.items()]
    return api.create_commit(repo, ops, commit_message="model").oid


def open_pr(api, repo: str, files: dict[str, bytes], title: str) -> int:
    """A PR on the leaderboard dataset as a user opens it with the real client."""
    from huggingface_hub import CommitOperationAdd

    ops = [CommitOperationAdd(p, data) for p, data in files.items()]
    return api.create_commit(repo, ops, commit_message=title, repo_type="dataset", create_pr=True).pr_num


def submission_files(folder: str, results: dict, samples: dict[str, list[dict]]) -> dict[str, bytes]:
    """A submission folder's files: results.json and one samples file per direction."""
    files = {f"{folder}/results.json": json.dumps(results).encode()}
    for d, name in results["samples"].items():
        files[f"{folder}/{name}"] = "".join(json.dumps(r) + "\n" for r in samples[d]).encode()
    return files


def pr_comments(api, repo: str, num: int) -> list[str]:
    details = api.get_discussion_details(repo, num, repo_type="dataset")
    return [e.content for e in details.events if e.type == "comment"]


def rescore(results: dict, samples: dict[str, list[dict]], nli: str, boot: int) -> dict:
    """What a careful forger does: recompute every number (corpus and per-sample, in place) for the
    forged outputs with the harness's own scoring, so only the checks beyond the numbers can catch it."""
    from lmolt_hub.metrics.scoring import score_direction

    out = copy.deepcopy(results)
    for d, rows in samples.items():
        opts = {"nli_model": nli} if d == "smiles2caption" else {}
        s = score_direction(d, [r["output"] for r in rows], [r["reference"] for r in rows], options=opts,
                            hallucination=True, bootstrap_resamples=boot, seed=0)  # fmt: skip
        out["results"][d], out["confidence_intervals"][d], out["hallucination"][d] = (
            s.corpus,
            s.confidence_intervals,
            s.hallucination,
        )
        out["n_samples"][d] = len(rows)
        for row, metrics in zip(rows, s.per_sample, strict=True):  # the per-sample values too
            row["metrics"] = json.loads(json.dumps(metrics, allow_nan=True).replace("NaN", "null"))
    return json.loads(json.dumps(out, allow_nan=True).replace("NaN", "null"))
