"""`leaderboard build` counts verified submissions only (issue: "Build trusts whatever is on main").

Attacks on the built page by files that reach ``main`` without (or around) review: a direct write
of an unverified or altered results file, a planted ``submissions/0000/fake/`` folder that sorts
before a real team's row, a malformed file, and a model named ``aaa/lmolt-sft`` that used to
become everyone's baseline. Each ends "not counted" with a reason; the honest rows stay.
"""

from __future__ import annotations

import json

import pytest

from lmolt_hub.leaderboard.aggregate import default_spec
from lmolt_hub.leaderboard.build import build, load_verified

from helpers.leaderboard_data import (
    SYNTHETIC_BASELINE,
    synthetic_leaderboard_root,
    write_submission,
    write_verification,
)

pytestmark = pytest.mark.adversarial


def _verified_rows(doc: dict) -> dict[str, dict]:
    return {r["model"]: r for r in doc["rows"] if r["kind"] == "verified"}


def _not_counted(doc: dict) -> dict[str, str]:
    return {x["source"]: x["reason"] for x in doc["inputs"]["not_counted"]}


def test_direct_write_without_verification_is_not_counted(tmp_path):
    root = synthetic_leaderboard_root(tmp_path / "repo")
    folder = write_submission(root, "mallory/lmolt-cpo", "e" * 40, 0.99, 5)  # no verification.json
    doc = build(tmp_path / "site", results_root=root, baseline=SYNTHETIC_BASELINE)
    assert "mallory/lmolt-cpo" not in _verified_rows(doc)
    reason = _not_counted(doc)[f"{folder.relative_to(root).as_posix()}/results.json"]
    assert "verification.json" in reason
    assert len(_verified_rows(doc)) == 4  # the honest rows stay


def test_results_changed_after_review_are_not_counted(tmp_path):
    root = synthetic_leaderboard_root(tmp_path / "repo")
    folder = write_submission(root, "mallory/lmolt-cpo", "e" * 40, 0.30, 5, pr=5)
    results = json.loads((folder / "results.json").read_text())
    results["results"]["smiles2caption"]["bleu2"] = 0.99  # forged after the verification was written
    (folder / "results.json").write_text(json.dumps(results))
    doc = build(tmp_path / "site", results_root=root, baseline=SYNTHETIC_BASELINE)
    assert "mallory/lmolt-cpo" not in _verified_rows(doc)
    assert "results_sha256" in _not_counted(doc)[f"{folder.relative_to(root).as_posix()}/results.json"]


def test_planted_folder_cannot_replace_another_teams_row(tmp_path):
    root = synthetic_leaderboard_root(tmp_path / "repo")
    real = _verified_rows(build(tmp_path / "before", results_root=root, baseline=SYNTHETIC_BASELINE))
    # Same identity as test-org's accepted row, better numbers, in a folder that sorts first, and even
    # with a verification.json that binds its bytes.
    fake = write_submission(root, "test-org/lmolt-cpo", "b" * 40, 0.99, 9, pr=99, folder_ns="0000")
    assert fake.relative_to(root).as_posix() < "submissions/test-org"
    doc = build(tmp_path / "site", results_root=root, baseline=SYNTHETIC_BASELINE)
    rows = _verified_rows(doc)
    assert rows["test-org/lmolt-cpo"]["results"] == real["test-org/lmolt-cpo"]["results"]
    assert rows["test-org/lmolt-cpo"]["source"].startswith("submissions/test-org/")
    assert "namespace" in _not_counted(doc)[f"{fake.relative_to(root).as_posix()}/results.json"]


def _move(folder, name: str):
    target = folder.parent / name
    folder.rename(target)
    return target


def test_duplicates_keep_the_first_accepted_not_the_first_path(tmp_path):
    root = tmp_path / "repo"
    # same identity (model, revision, eval set, versions), two verified folders; "aaa-" sorts first
    _move(write_submission(root, "test-org/lmolt-cpo", "b" * 40, 0.6, 2, pr=7), "zzz-first")
    later = _move(write_submission(root, "test-org/lmolt-cpo", "b" * 40, 0.1, 3), "aaa-later")
    write_verification(later, pr=8, reviewed_at="2027-01-01T00:00:00+00:00")
    counted, _ = load_verified(root)
    assert [a.record.source for a in counted] == [
        "submissions/test-org/zzz-first/results.json",
        "submissions/test-org/aaa-later/results.json",
    ]
    doc = build(tmp_path / "site", results_root=root, include_paper=False)
    (row,) = doc["rows"]
    assert row["source"] == "submissions/test-org/zzz-first/results.json"


def test_results_outside_the_submission_layout_are_not_counted(tmp_path):
    root = tmp_path / "repo"
    deep = write_submission(root, "test-org/lmolt-cpo", "b" * 40, 0.6, 2)
    nested = deep / "x"
    nested.mkdir()
    (deep / "results.json").rename(nested / "results.json")
    write_verification(nested, pr=3)
    counted, refused = load_verified(root)
    assert counted == []
    assert "not at submissions/<namespace>/<id>/" in refused[0]["reason"]


def test_malformed_results_on_main_do_not_stop_the_build(tmp_path):
    root = synthetic_leaderboard_root(tmp_path / "repo")
    bad = root / "submissions" / "mallory" / "broken"
    bad.mkdir(parents=True)
    (bad / "results.json").write_text("{not json")
    write_verification(bad, pr=6)
    nested = root / "submissions" / "mallory" / "list"
    nested.mkdir()
    (nested / "results.json").write_text("[1, 2]")
    write_verification(nested, pr=7)
    doc = build(tmp_path / "site", results_root=root, baseline=SYNTHETIC_BASELINE)
    reasons = _not_counted(doc)
    assert {"submissions/mallory/broken/results.json", "submissions/mallory/list/results.json"} <= set(
        reasons
    )
    assert all(reasons.values())
    assert len(_verified_rows(doc)) == 4


def test_baseline_hijack_fails(tmp_path):
    """A verified ``aaa/lmolt-sft`` (same zoo name as ours, sorts first) is not the baseline."""
    org = default_spec()["baseline"]["verified"]["model"].split("/")[0]
    root = tmp_path / "repo"
    write_submission(root, f"{org}/lmolt-sft", "a" * 40, 0.40, 1, pr=1)
    write_submission(root, f"{org}/lmolt-cpo", "b" * 40, 0.60, 2, pr=2)
    write_submission(root, "aaa/lmolt-sft", "f" * 40, 0.01, 3, pr=3)  # honest-looking, terrible baseline
    doc = build(tmp_path / "site", results_root=root)
    rows = _verified_rows(doc)
    assert {r["baseline"] for r in rows.values()} == {f"{org}/lmolt-sft"}
    assert doc["aggregate"]["baseline"]["verified"] == {"model": f"{org}/lmolt-sft"}
    assert rows[f"{org}/lmolt-sft"]["aggregate"]["overall"]["value"] == 0.0
    assert rows[f"{org}/lmolt-cpo"]["rank"]["overall"] == 1
