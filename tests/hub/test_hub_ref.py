"""hub/ref.py: one rule for "local path or Hub id", one pin() with the Hub's answers as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmolt_hub.hub.ref import HubRef, RefError, is_local, pin, pinned_revision


def test_is_local_rule(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert is_local("org/name")  # an existing directory wins over the Hub id it looks like
    assert not is_local("other/name")  # else a Hub id
    assert is_local("./missing") and is_local("/abs/missing") and is_local("~/missing")  # written as paths
    assert not is_local("tiny://llama") and not is_local("")


def test_pinned_prefers_the_sha():
    assert HubRef("a/b", "main", "abc").pinned == "abc"
    assert HubRef("a/b", "v1").pinned == "v1"
    assert pinned_revision({"sha": None, "revision": "v2"}) == "v2"
    assert pinned_revision({"sha": "s", "revision": "v2"}) == "s"


def test_pin_local_directory_needs_no_hub(tmp_path: Path):
    ref = pin(str(tmp_path))
    assert not ref.is_hub and ref.sha is None and ref.source == str(tmp_path)


def test_pin_resolves_sha_and_maps_hub_errors(local_hub, tmp_path: Path):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("reforg/data", repo_type="dataset", exist_ok=True)
    (tmp_path / "a.txt").write_text("x")
    sha = api.upload_folder(folder_path=str(tmp_path), repo_id="reforg/data", repo_type="dataset").oid
    ref = pin("reforg/data", "main", repo_type="dataset")
    assert (ref.sha, ref.revision, ref.repo_type, ref.is_hub, ref.pinned) == (
        sha,
        "main",
        "dataset",
        True,
        sha,
    )
    with pytest.raises(RefError, match="neither a local directory nor a model on the Hub") as e:
        pin("reforg/nothing-here")
    assert "\n" not in str(e.value)
    with pytest.raises(RefError, match="dataset reforg/data: revision 'v9' not found"):
        pin("reforg/data", "v9", repo_type="dataset")


class _Custom(ValueError):
    pass


def test_pin_raises_the_stage_error_class(local_hub):
    with pytest.raises(_Custom, match="base model 'reforg/none'.*fix it"):
        pin("reforg/none", what="base model", hint="fix it", error=_Custom)


def test_pin_a_missing_path_is_a_missing_path_not_a_hub_lookup(tmp_path: Path):
    with pytest.raises(RefError, match="no such local path"):
        pin(str(tmp_path / "gone"), repo_type="dataset")
