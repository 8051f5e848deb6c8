"""Links and messages of `leaderboard submit` and `--push-results` (issue 14, point 8).

`submit` used to print a pull-request URL that 404s on the local Hub, and `--push-results`
opened a PR silently. Both now print what they did, with a link that answers on the Hub in use.
"""

from __future__ import annotations

import json
import re
import urllib.request

from lmolt_hub.hub.links import discussion_link

ORG = "links"


def test_discussion_link_rewrites_only_local_hub_discussions():
    local = "http://127.0.0.1:8765"
    assert discussion_link(f"{local}/datasets/o/board/discussions/3", local) == (
        f"{local}/api/datasets/o/board/discussions/3"
    )
    assert (
        discussion_link(f"{local}/o/model/discussions/12", local)
        == f"{local}/api/models/o/model/discussions/12"
    )
    assert discussion_link(f"{local}/o/model/commit/abc", local) == f"{local}/o/model/commit/abc"
    hf = "https://huggingface.co"
    assert (
        discussion_link(f"{hf}/datasets/o/board/discussions/3", hf) == f"{hf}/datasets/o/board/discussions/3"
    )
    assert discussion_link(None, local) is None


def _get(url: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as reply:  # raises on 4xx/5xx
        return reply.status, json.loads(reply.read())


def _link(text: str) -> str:
    match = re.search(r"(http://\S+/discussions/\d+)", text)
    assert match, text
    return match.group(1)


def test_submit_prints_a_link_that_answers_on_the_local_hub(local_hub, capsys):
    from lmolt_hub.cli import main
    from lmolt_hub.leaderboard import create_leaderboard_repo

    repo = create_leaderboard_repo(f"{ORG}/lmolt-leaderboard")
    assert main(["leaderboard", "submit", "--repo", repo, "--model", f"{ORG}/some-model"]) == 0
    out = capsys.readouterr().out
    link = _link(out)
    assert "/api/datasets/" in link
    status, body = _get(link, local_hub.token)
    assert status == 200 and body["isPullRequest"] and str(body["num"]) == link.rsplit("/", 1)[1]
    assert "lmolt-hub leaderboard status" in out


def test_push_results_says_what_it_pushed(local_hub, tmp_path, capsys):
    from huggingface_hub import HfApi, metadata_update

    from lmolt_hub.cli import main
    from lmolt_hub.evaluation.cli import _print_summary

    preds = tmp_path / "preds.tsv"
    preds.write_text("SMILES\tground truth\toutput\nCCO\tan alcohol\tan alcohol\nC\tmethane\ta gas\n")
    args = ["eval", "--predictions", str(preds), "--direction", "smiles2caption", "--no-hallucination",
            "--bootstrap-resamples", "0", "--output-dir", str(tmp_path / "out"), "--push-results",
            "--results-repo", f"{ORG}/lmolt-results", "--model-name", f"{ORG}/preds"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    match = re.search(rf"pushed: {ORG}/lmolt-results/(\S+) \(commit ([0-9a-f]{{10}})\)", out)
    assert match, out
    files = HfApi().list_repo_files(f"{ORG}/lmolt-results", repo_type="dataset")
    assert any(f.startswith(match.group(1) + "/results_") for f in files)

    # A card change opened as a pull request (not our model): the printed link answers.
    api = HfApi()
    api.create_repo(f"{ORG}/their-model", exist_ok=True)
    api.upload_file(
        path_or_fileobj=b"---\nlicense: mit\n---\n", path_in_repo="README.md", repo_id=f"{ORG}/their-model"
    )
    info = metadata_update(f"{ORG}/their-model", {"tags": ["x"]}, create_pr=True)
    url = info.pr_url  # what push_results records as card_url
    doc = {"results": {}, "hallucination": {}, "confidence_intervals": {}, "n_samples": {},
           "push": {"results_repo": "r", "path_in_repo": "p", "results_commit": "0" * 40,
                    "card_url": url, "card_pr": True, "card_pr_num": info.pr_num}}  # fmt: skip
    _print_summary(doc)
    out = capsys.readouterr().out
    assert f"opened pull request #{info.pr_num} on the model card" in out
    status, body = _get(_link(out), local_hub.token)
    assert status == 200 and body["isPullRequest"]
