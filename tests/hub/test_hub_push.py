"""hub/push.py: a folder lands as exactly one commit; ignored files stay home; stale files go in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmolt_hub.hub.push import PushError, check_target, push_folder


def _folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_push_folder_is_one_commit_with_ignores_and_deletes(local_hub, tmp_path: Path):
    from huggingface_hub import HfApi

    api, repo = HfApi(), "pushorg/folder"
    first = _folder(tmp_path / "v1", {"data/a.parquet": "1", "data/old.parquet": "2", "README.md": "x"})
    push_folder(first, repo, repo_type="dataset", message="v1")
    n_before = len(api.list_repo_commits(repo, repo_type="dataset"))
    second = _folder(tmp_path / "v2", {"data/a.parquet": "3", "README.md": "y", "checkpoint-1/opt.pt": "z",
                                       "notes.txt": "keep"})  # fmt: skip
    sha = push_folder(
        second, repo, repo_type="dataset", message="v2", ignore=["checkpoint-*"], delete=["data/*"]
    )
    commits = api.list_repo_commits(repo, repo_type="dataset")
    assert len(commits) == n_before + 1 and commits[0].commit_id == sha
    files = set(api.list_repo_files(repo, repo_type="dataset"))
    assert {"data/a.parquet", "README.md", "notes.txt"} <= files
    assert "data/old.parquet" not in files and not any(f.startswith("checkpoint-") for f in files)


def test_push_to_a_branch_creates_it(local_hub, tmp_path: Path):
    from huggingface_hub import HfApi

    push_folder(
        _folder(tmp_path / "m", {"config.json": "{}"}), "pushorg/branchy", revision="run-1", message="m"
    )
    assert "config.json" in HfApi().list_repo_files("pushorg/branchy", revision="run-1")


def test_check_target_names_the_fix_in_one_line(local_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_token_of_this_hub")
    with pytest.raises(PushError, match="rejects HF_TOKEN") as e:
        check_target("pushorg/anything")
    assert "\n" not in str(e.value)


def test_only_some_files_into_a_repo_folder(local_hub, tmp_path: Path):
    from huggingface_hub import HfApi

    run = _folder(tmp_path / "run", {"results.json": "{}", "samples.jsonl": "", "scratch.tmp": "x"})
    push_folder(run, "pushorg/results", repo_type="dataset", only=["results.json", "samples.jsonl"],
                path_in_repo="org__m/main", message="results")  # fmt: skip
    files = set(HfApi().list_repo_files("pushorg/results", repo_type="dataset"))
    assert {"org__m/main/results.json", "org__m/main/samples.jsonl"} <= files
    assert not any(f.endswith("scratch.tmp") for f in files)
