"""The leaderboard as a static Space: `leaderboard build --push-space` publishes it (one commit),
the local Hub serves its files (downloads) and its page (sandboxed, its own scripts run), and the
zoo lists it.

Synthetic accepted submissions (test data, helpers/leaderboard_data.py) stand in for a reviewed
leaderboard repo; the browser test (test_browser_leaderboard.py) opens the served page in Chromium.
"""

from __future__ import annotations

import http.client
import json

import pytest
import yaml

ORG = "spaceorg"
SPACE = f"{ORG}/lmolt-leaderboard"
PAGE_FILES = {"README.md", "index.html", "app.js", "style.css", "leaderboard.json"}


def _get(hub, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    host, port = hub.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", path)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def _build(tmp_path, *extra: str) -> int:
    from lmolt_hub.cli import main

    from helpers.leaderboard_data import synthetic_leaderboard_root

    root = synthetic_leaderboard_root(tmp_path / "repo")
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes-of-the-maintainer.txt").write_text("not part of the page")  # must stay out of the Space
    return main(["leaderboard", "build", "--results-dir", str(root), "--org", ORG, "--output-dir", str(out),
                 "--push-space", *extra])  # fmt: skip


@pytest.fixture(scope="module")
def space(local_hub, tmp_path_factory):
    """The Space after two builds (the second one adds nothing new but must still be one commit)."""
    from huggingface_hub import HfApi

    api = HfApi()
    first = tmp_path_factory.mktemp("first")
    assert _build(first, SPACE) == 0
    # a file a later build no longer writes must go away with that build
    api.upload_file(path_or_fileobj=b"old", path_in_repo="figure0_gone.png", repo_id=SPACE, repo_type="space")
    before = len(api.list_repo_commits(SPACE, repo_type="space"))
    assert (
        _build(tmp_path_factory.mktemp("second")) == 0
    )  # --push-space without a value: <org>/lmolt-leaderboard
    return {"api": api, "hub": local_hub, "commits_before": before, "site": first / "site"}


def test_push_space_publishes_the_page_as_one_commit(space):
    api = space["api"]
    files = set(api.list_repo_files(SPACE, repo_type="space"))
    doc = json.loads((space["site"] / "leaderboard.json").read_text())
    assert PAGE_FILES | set(doc["plots"].values()) == files - {".gitattributes"}
    assert "figure0_gone.png" not in files
    assert len(api.list_repo_commits(SPACE, repo_type="space")) == space["commits_before"] + 1
    card = api.space_info(SPACE).card_data
    assert card.sdk == "static" and card.app_file == "index.html"
    readme = (space["site"] / "README.md").read_text()
    assert f"lmolt-hub leaderboard submit --org {ORG} --results" in readme
    assert f"datasets/{ORG}/lmolt-leaderboard" in readme
    path = api.hf_hub_download(SPACE, "leaderboard.json", repo_type="space", force_download=True)
    served = json.loads(open(path, encoding="utf-8").read())
    assert served["rows"] and served == doc  # the build is deterministic: both builds wrote these bytes


def test_space_files_download_and_page_is_served_sandboxed(space):
    hub = space["hub"]
    # downloads (what hf_hub_download / evaluate.load use): attachments that never render
    resp, body = _get(hub, f"/spaces/{SPACE}/resolve/main/index.html")
    assert resp.status == 200 and b'<script src="app.js">' in body
    assert resp.headers["Content-Disposition"].startswith("attachment")
    resolve_csp = resp.headers["Content-Security-Policy"]
    assert resolve_csp.startswith("sandbox") and "allow-scripts" not in resolve_csp
    # the browsable page: inline, its scripts may run, but in a sandbox with an opaque origin
    resp, body = _get(hub, f"/spaces/{SPACE}/")
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script src="app.js">' in body and "Content-Disposition" not in resp.headers
    csp = resp.headers["Content-Security-Policy"]
    own = f"{hub.url}/spaces/{SPACE}/"
    assert csp.startswith("sandbox allow-scripts;") and "allow-same-origin" not in csp
    assert f"script-src {own};" in csp and f"connect-src {own};" in csp and "default-src 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for name, ctype in (("app.js", "javascript"), ("leaderboard.json", "application/json")):
        resp, _ = _get(hub, f"/spaces/{SPACE}/{name}")
        assert resp.status == 200 and ctype in resp.headers["Content-Type"], name
        assert resp.headers["Access-Control-Allow-Origin"] == "*"  # the sandboxed page fetches with CORS
    assert _get(hub, f"/spaces/{SPACE}/no-such-file.js")[0].status == 404
    assert (
        _get(hub, f"/spaces/{SPACE}/..%2F..%2Fapi%2Fwhoami-v2")[0].status == 422
    )  # invalid path, as the Hub
    # the repo page (no trailing slash) stays the repo page, and links to the app
    resp, body = _get(hub, f"/spaces/{SPACE}")
    assert resp.status == 200 and f'href="/spaces/{SPACE}/"'.encode() in body


def test_only_static_spaces_are_served_as_pages(space, local_hub):
    api = space["api"]
    other = f"{ORG}/a-gradio-metric"
    api.create_repo(other, repo_type="space", space_sdk="gradio", exist_ok=True)
    card = "---\nsdk: gradio\napp_file: app.py\n---\n# metric\nA metric Space.\n"
    api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=other, repo_type="space")
    api.upload_file(path_or_fileobj=b"<script>1</script>", path_in_repo="index.html", repo_id=other,
                    repo_type="space")  # fmt: skip
    resp, body = _get(local_hub, f"/spaces/{other}/")
    assert resp.status == 404 and b"not a static Space (sdk: gradio)" in body
    assert _get(local_hub, f"/spaces/{other}/resolve/main/index.html")[0].status == 200  # a download
    # the zoo lists every Space, links the static ones' pages, and names each SDK
    resp, body = _get(local_hub, "/")
    page = body.decode()
    assert "<h2>Spaces</h2>" in page and other in page and "sdk: gradio" in page
    assert f'href="/spaces/{SPACE}/"' in page and "Leaderboard Space" in page
    assert f'href="/spaces/{other}/"' not in page


def test_push_space_refuses_offline_and_bad_tokens(tmp_path, monkeypatch, capsys):
    from lmolt_hub.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "build", "--offline", "--output-dir", str(tmp_path / "o"), "--push-space"])
    assert "drop one of them" in str(exc.value)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_token_of_this_hub")
    with pytest.raises(SystemExit) as exc:
        _build(tmp_path, f"{ORG}/lmolt-leaderboard-other")
    message = str(exc.value)
    assert message.startswith("lmolt-hub leaderboard build --push-space: error:") and "\n" not in message
    assert "rejects HF_TOKEN" in message


def test_space_card_front_matter_is_static():
    from lmolt_hub.leaderboard.space import space_card

    text = space_card("acme/lmolt-leaderboard")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["sdk"] == "static" and front["app_file"] == "index.html"
    assert "## How to submit" in text and "acme/lmolt-leaderboard" in text
