"""The leaderboard page in a real headless Chromium (selenium + Debian chromium/chromedriver).

Builds the page from synthetic accepted submissions (test data, see
helpers/leaderboard_data.py) plus the paper's reported rows, serves it with
http.server, then sorts, filters, and checks that an injected ``<script>`` /
``onerror`` model name is displayed as text and never runs.

The same page published as a static Space (``push_space``) is opened from the local Hub's zoo:
it renders there, and runs sandboxed (an opaque origin that cannot read the Hub's API).
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian packages chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from lmolt_hub.leaderboard.build import build

    from helpers.leaderboard_data import SYNTHETIC_BASELINE, synthetic_leaderboard_root

    base = tmp_path_factory.mktemp("browser")
    root = synthetic_leaderboard_root(base / "repo")
    out = base / "site" / "leaderboard"
    doc = build(out, results_root=root, baseline=SYNTHETIC_BASELINE)
    handler = functools.partial(_QuietHandler, directory=str(base / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/leaderboard/index.html", doc, base
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lmolt-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1600,1200",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(driver, url):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 15).until(lambda d: d.find_element("tag name", "body").get_attribute("data-ready"))
    assert driver.find_element("tag name", "body").get_attribute("data-ready") == "true", driver.find_element(
        "id", "status"
    ).text


def _column(driver, key):
    cells = driver.find_elements("css selector", f'#leaderboard tbody td[data-col="{key}"]')
    return [c.text.split("\n")[0] for c in cells]


def _select(driver, element_id, value):
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


def _click_header(driver, key):
    driver.find_element("css selector", f'#leaderboard th[data-col="{key}"] button').click()


def _number(text):
    return None if text in ("\u2013", "") else float(text)


def test_page_sorts_filters_and_escapes(site, driver, tmp_path):
    from helpers.leaderboard_data import INJECTED_NAME

    url, doc, _ = site
    _open(driver, url)
    rows = driver.find_elements("css selector", "#leaderboard tbody tr")
    assert len(rows) == len(doc["rows"])
    # Default order: by rank, kinds kept apart (ranks are per kind), verified first.
    kinds = [r.get_attribute("data-kind") for r in rows]
    assert kinds == sorted(kinds, key=lambda k: k != "verified") and kinds[0] == "verified"
    n_verified = kinds.count("verified")
    first_ranks = [int(t) for t in _column(driver, "rank")[:n_verified]]
    assert first_ranks == sorted(first_ranks)

    # The injected name is shown verbatim as text and none of its markup ran or exists.
    assert driver.execute_script("return window.__lmolt_pwned === undefined")
    assert INJECTED_NAME in _column(driver, "model")
    assert not driver.find_elements("css selector", "#leaderboard img, #leaderboard script")

    # Sort by a metric column: descending on first click, ascending on the second.
    metric = doc["metrics"]["caption2smiles"][0]["key"]
    key = f"caption2smiles.{metric}"
    _click_header(driver, key)
    values = [_number(t) for t in _column(driver, key)]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True) and len(present) >= 5
    assert values[: len(present)] == present  # missing values sort last
    _click_header(driver, key)
    present = [v for v in map(_number, _column(driver, key)) if v is not None]
    assert present == sorted(present)
    header = driver.find_element("css selector", f'#leaderboard th[data-col="{key}"]')
    assert header.get_attribute("aria-sort") == "ascending"

    # Filter: verified rows only, then one method.
    _select(driver, "filter-kind", "verified")
    kinds = {
        r.get_attribute("data-kind") for r in driver.find_elements("css selector", "#leaderboard tbody tr")
    }
    n_verified = sum(r["kind"] == "verified" for r in doc["rows"])
    assert kinds == {"verified"} and len(_column(driver, "model")) == n_verified
    _select(driver, "filter-method", "cpo")
    expected = sorted(r["model"] for r in doc["rows"] if r["kind"] == "verified" and r["method"] == "cpo")
    assert sorted(_column(driver, "model")) == expected and len(expected) == 2

    _select(driver, "filter-method", "all")
    _select(driver, "filter-fusion", "slerp")
    assert _column(driver, "model") == ["test-org/lmolt-slerp-cpo"]
    _select(driver, "filter-fusion", "all")

    # Direction filter: only M->L metric columns remain, ranks follow the direction's aggregate.
    _select(driver, "filter-direction", "smiles2caption")
    cols = [
        th.get_attribute("data-col")
        for th in driver.find_elements("css selector", "#leaderboard th[data-col]")
    ]
    assert any(c.startswith("smiles2caption.") for c in cols)
    assert not any(c.startswith("caption2smiles.") for c in cols)
    assert driver.find_element("css selector", '#leaderboard th[data-col="rank"]').get_attribute(
        "aria-sort"
    ) == ("ascending")  # the metric column went away, so the table fell back to ranks
    _click_header(driver, "rank")
    _click_header(driver, "rank")
    ranks = [int(t) for t in _column(driver, "rank")]
    assert ranks == sorted(ranks)
    by_model = {r["model"]: r["rank"]["smiles2caption"] for r in doc["rows"] if r["kind"] == "verified"}
    assert dict(zip(_column(driver, "model"), ranks, strict=True)) == by_model

    # The figures load (they are real PNGs written by build).
    loaded = driver.execute_script(
        "return [...document.querySelectorAll('#figures img')].map(i => i.complete && i.naturalWidth > 0)"
    )
    assert loaded == [True, True]

    shot = tmp_path / "leaderboard.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_page_reports_missing_json(site, driver):
    url, _, base = site
    broken = base / "site" / "broken"
    broken.mkdir(exist_ok=True)
    for name in ("index.html", "app.js", "style.css"):
        shutil.copyfile(base / "site" / "leaderboard" / name, broken / name)
    _open_error = url.replace("/leaderboard/", "/broken/")
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(_open_error)
    WebDriverWait(driver, 15).until(lambda d: d.find_element("tag name", "body").get_attribute("data-ready"))
    assert "Could not load leaderboard.json" in driver.find_element("id", "status").text
    assert json.loads((base / "site" / "leaderboard" / "leaderboard.json").read_text())["rows"]


SPACE_ID = "browser-org/lmolt-leaderboard"


OTHER_REPO = "browser-org/not-the-space"


@pytest.fixture(scope="module")
def space(site, local_hub):
    from huggingface_hub import HfApi

    from lmolt_hub.leaderboard.space import push_space

    _, doc, base = site
    folder = base / "site" / "leaderboard"
    push_space(folder, SPACE_ID)
    figure = doc["plots"]["figure1"]
    HfApi().create_repo(OTHER_REPO, exist_ok=True)
    HfApi().upload_file(path_or_fileobj=folder / figure, path_in_repo=figure, repo_id=OTHER_REPO)
    return f"{local_hub.url}/spaces/{SPACE_ID}/", doc


def _load_image(driver, url):
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const img = new Image();"
        "img.onload = () => done('loaded'); img.onerror = () => done('blocked'); img.src = arguments[0];",
        url,
    )


def _fetch(driver, url):
    """What a fetch of ``url`` from the page gives: 'status <n>' or 'blocked' (CSP / CORS refusal)."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => done('status ' + r.status), () => done('blocked'));",
        url,
    )


def test_space_page_from_the_zoo_runs_sandboxed(space, driver, local_hub):
    from selenium.webdriver.support.ui import WebDriverWait

    from helpers.leaderboard_data import INJECTED_NAME

    url, doc = space
    # the zoo links to the Space's page; following the link opens it
    driver.get(f"{local_hub.url}/")
    driver.find_element("css selector", f'a[href="/spaces/{SPACE_ID}/"]').click()
    WebDriverWait(driver, 15).until(lambda d: d.find_element("tag name", "body").get_attribute("data-ready"))
    assert driver.current_url == url
    assert driver.find_element("tag name", "body").get_attribute("data-ready") == "true"

    # its own app.js ran, read its leaderboard.json and loaded its style sheet and figures
    assert len(driver.find_elements("css selector", "#leaderboard tbody tr")) == len(doc["rows"])
    assert driver.execute_script("return document.styleSheets.length") == 1
    loaded = driver.execute_script(
        "return [...document.querySelectorAll('#figures img')].map(i => i.complete && i.naturalWidth > 0)"
    )
    assert loaded == [True, True]
    metric = doc["metrics"]["caption2smiles"][0]["key"]
    _click_header(driver, f"caption2smiles.{metric}")  # the table is live: sorting works
    present = [v for v in map(_number, _column(driver, f"caption2smiles.{metric}")) if v is not None]
    assert present == sorted(present, reverse=True) and present

    # a hostile model name is text, never markup
    assert INJECTED_NAME in _column(driver, "model")
    assert driver.execute_script("return window.__lmolt_pwned === undefined")

    # the sandbox: an opaque origin without cookies or storage, and nothing outside its own folder
    assert driver.execute_script("return window.origin") == "null"
    assert (
        driver.execute_script("try { return typeof localStorage.length } catch (e) { return 'denied' }")
        == "denied"
    )
    assert _fetch(driver, "leaderboard.json") == "status 200"
    assert _fetch(driver, f"{local_hub.url}/api/whoami-v2") == "blocked"
    assert _fetch(driver, f"{local_hub.url}/api/models") == "blocked"
    assert _fetch(driver, f"{local_hub.url}/site/leaderboard/leaderboard.json") == "blocked"
    # images too come from its own folder only: its figure loads, the same PNG in another repo does not
    figure = doc["plots"]["figure1"]
    assert _load_image(driver, f"{local_hub.url}/spaces/{SPACE_ID}/{figure}") == "loaded"
    assert _load_image(driver, f"{local_hub.url}/{OTHER_REPO}/resolve/main/{figure}") == "blocked"
