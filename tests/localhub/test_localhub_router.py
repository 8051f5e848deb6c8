"""The local Hub's route table, without a server: which handler a method and path reach."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.router import Route, Router
from lmolt_hub.localhub.routes import ROUTES, discussions, files, misc, pages, repos, router

HUB = router()


def _match(method: str, path: str):
    segs = [unquote(s) for s in path.split("?")[0].split("/")[1:]]  # as HubHandler splits it
    return HUB.match(method, segs)


@pytest.mark.parametrize(
    ("method", "path", "handler", "params"),
    [
        ("GET", "/", pages.index, {}),
        ("HEAD", "/org/m", pages.repo_page, {"repo_type": "model", "repo_id": "org/m"}),
        ("GET", "/datasets/org/d", pages.repo_page, {"repo_type": "dataset", "repo_id": "org/d"}),
        ("GET", "/site", pages.static, {"path": ""}),
        ("GET", "/api/models", repos.list_repos, {"repo_type": "model"}),
        ("GET", "/api/spaces/org/s", repos.repo_info, {"repo_type": "space", "repo_id": "org/s"}),
        (
            "GET",
            "/api/models/org/m/revision/refs%2Fpr%2F3",
            repos.repo_info,
            {"repo_type": "model", "repo_id": "org/m", "revision": "refs/pr/3"},
        ),
        (
            "GET",
            "/api/datasets/org/d/tree/main/a/b",
            files.tree,
            {"repo_type": "dataset", "repo_id": "org/d", "revision": "main", "path": "a/b"},
        ),
        (
            "GET",
            "/api/models/org/m/tree/main",
            files.tree,
            {"repo_type": "model", "repo_id": "org/m", "revision": "main", "path": ""},
        ),
        (
            "HEAD",
            "/datasets/org/d/resolve/v1/data/train.parquet",
            files.resolve,
            {"repo_type": "dataset", "repo_id": "org/d", "revision": "v1", "path": "data/train.parquet"},
        ),
        (
            "POST",
            "/org/m.git/info/lfs/objects/batch",
            files.lfs_batch,
            {"repo_type": "model", "repo_id": "org/m"},
        ),
        ("PUT", "/lfs-upload/" + "a" * 64, files.lfs_upload, {"oid": "a" * 64}),
        (
            "POST",
            "/api/models/org/m/discussions/4/merge",
            discussions.discussion_action,
            {"repo_type": "model", "repo_id": "org/m", "num": "4", "action": "merge"},
        ),
        (
            "DELETE",
            "/api/models/org/m/tag/v1",
            repos.delete_tag,
            {"repo_type": "model", "repo_id": "org/m", "name": "v1"},
        ),
        ("HEAD", "/api/whoami-v2", misc.whoami, {}),
        ("GET", "/api/telemetry/hf_hub/x", misc.telemetry, {"rest": "hf_hub/x"}),
    ],
)
def test_paths_reach_their_handlers(method, path, handler, params):
    found = _match(method, path)
    assert found is not None, (method, path)
    assert found == (handler, params)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/models/org/m"),  # no such method
        ("POST", "/api/models/org/m"),  # wrong method for the path
        ("GET", "/api/widgets/org/m"),  # not a repo type
        ("GET", "/api/models/org/m/resolve"),
        ("GET", "/org/m/resolve/main"),  # resolve needs a file path
        ("GET", "/api/org/m"),  # 'api' is never a model namespace
        ("GET", "/org/m/n/o"),
        ("POST", "/org/m/info/lfs/objects/batch"),  # the LFS endpoint is under name.git
    ],
)
def test_unknown_routes_match_nothing(method, path):
    assert _match(method, path) is None


def test_a_bad_repo_id_is_a_400_before_any_handler():
    with pytest.raises(HubError) as err:
        _match("GET", "/api/models/..%2F..%2Fetc/passwd")
    assert err.value.status == 400 and "repo id" in err.value.message


def test_the_table_has_no_duplicate_routes():
    keys = [(r.method, r.pattern) for r in ROUTES]
    assert len(keys) == len(set(keys)) and len(keys) >= 30
    assert all(callable(r.handler) for r in ROUTES)


def test_first_match_wins_and_rest_must_be_last():
    first, second = (lambda req: None), (lambda req, name: None)
    assert Router([Route("GET", "/x/y", first), Route("GET", "/x/{name}", second)]).match(
        "GET", ["x", "y"]
    ) == (
        first,
        {},
    )
    with pytest.raises(ValueError, match="last segment"):
        Router([Route("GET", "/{rest*}/x", first)])


@pytest.mark.parametrize(
    "path",
    ["/api/models/gpt2", "/api/models/gpt2/revision/main", "/gpt2/resolve/main/config.json", "/bert-base"],
)
def test_a_namespace_less_id_is_repo_not_found_after_every_two_segment_route_failed(path):
    """``gpt2`` is huggingface.co's canonical model: the clients need RepoNotFound, not 'no route'."""
    with pytest.raises(HubError) as err:
        _match("GET", path)
    assert err.value.status == 404 and err.value.code == "RepoNotFound"


def test_two_segment_ids_win_over_the_namespace_less_reading():
    # 'org/likers' is a repo id here, not repo 'org' + the likers route
    assert _match("GET", "/api/models/org/likers") == (
        repos.repo_info,
        {"repo_type": "model", "repo_id": "org/likers"},
    )
