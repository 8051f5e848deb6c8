"""The leaderboard as a static Hub Space: ``<org>/lmolt-leaderboard`` (a space repo; the
submissions live in the dataset repo of the same name).

``build`` writes the page (``index.html``, ``app.js``, ``style.css``), ``leaderboard.json`` and
the figures into a folder; :func:`push_space` adds the Space card (``sdk: static``, with how to
submit) and publishes the folder as one commit, removing files of an earlier build that this
build no longer writes (a figure that went away).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from lmolt_hub.io import write_text
from lmolt_hub.leaderboard.layout import leaderboard_repo
from lmolt_hub.naming import LEADERBOARD_DATASET

SPACE_NAME = LEADERBOARD_DATASET  # the Space and the submissions dataset share the name
SPACE_SDK = "static"
CARD_FILE = "README.md"

SPACE_CARD = {
    "title": "lmolt-hub leaderboard",
    "emoji": "\U0001f9ea",
    "colorFrom": "blue",
    "colorTo": "green",
    "sdk": SPACE_SDK,
    "app_file": "index.html",
    "pinned": False,
    "license": "apache-2.0",
    "short_description": "Machine language-molecule translation leaderboard",
    "tags": ["leaderboard", "chemistry", "molecule-captioning"],
}

SPACE_BODY = """# lmolt-hub leaderboard

The leaderboard of machine language-molecule translation (molecule captioning, M->L
`smiles2caption`, and caption-to-molecule generation, L->M `caption2smiles`) on the L+M-24 3k
unseen evaluation set, built by [lmolt-hub](https://github.com/lmolt-hub/lmolt-hub) from the
accepted submissions of the dataset repository [`{dataset}`]({dataset_url}).
**Verified** rows were re-scored by the lmolt-hub harness from the submitted outputs;
**reported** rows are numbers printed in a paper, with the citation.

## How to submit

```bash
pip install "lmolt-hub[eval]"
# 1. evaluate your Hub model with the harness (writes results_<ts>.json and samples_*.jsonl)
lmolt-hub eval --model my-org/my-model --output-dir results
# 2. open a pull request on {dataset} with the results file and its samples
lmolt-hub leaderboard submit --org {org} --results results/my-org__my-model/main/results_<ts>.json
# ...or ask the maintainers to evaluate a model for you
lmolt-hub leaderboard submit --org {org} --model my-org/my-model --revision main
# 3. follow it: pending, running, verified, or rejected with the reason
lmolt-hub leaderboard status --org {org}
```

The reviewer runs on a schedule: it validates each open pull request, recomputes every number
from the submitted outputs with the evaluation set's pinned metric configuration, regenerates a
few outputs with the submitted model (the spot check), comments with the reason, merges or closes
the pull request, and rebuilds this Space.

## Files

- `index.html`, `app.js`, `style.css`: the page (it reads `leaderboard.json`, nothing else);
- `leaderboard.json`: every row, with metrics, 95% bootstrap intervals, the aggregate and ranks;
- `figure*.png`: the hallucination analysis of the verified rows (the paper's Figures 1-2).
"""


def space_repo(org: str | None = None) -> str:
    """``<org>/lmolt-leaderboard`` (the Space; the dataset of submissions has the same id)."""
    return leaderboard_repo(org)


def space_card(space_id: str, dataset_repo: str | None = None) -> str:
    """The Space's README: ``sdk: static`` front matter and how to submit."""
    from huggingface_hub import constants

    org = space_id.split("/")[0]
    dataset = dataset_repo or leaderboard_repo(org)
    url = f"{constants.ENDPOINT}/datasets/{dataset}"
    front = yaml.safe_dump(SPACE_CARD, sort_keys=False, allow_unicode=True).strip()
    return f"---\n{front}\n---\n" + SPACE_BODY.format(org=org, dataset=dataset, dataset_url=url)


def push_space(site_dir: Path | str, space_id: str, dataset_repo: str | None = None) -> str:
    """Publish the built page in ``site_dir`` as the static Space ``space_id`` (one commit); returns its sha.

    The card is written into ``site_dir`` first, so the folder is exactly what the Space holds.
    """
    from lmolt_hub.hub.push import check_target, push_folder

    site_dir = Path(site_dir)
    if not (site_dir / "index.html").is_file() or not (site_dir / "leaderboard.json").is_file():
        raise FileNotFoundError(f"{site_dir} holds no built leaderboard (index.html, leaderboard.json)")
    check_target(space_id, who=f"publishing the leaderboard Space {space_id}")
    write_text(site_dir / CARD_FILE, space_card(space_id, dataset_repo))
    return push_folder(
        site_dir, space_id, repo_type="space", space_sdk=SPACE_SDK, message="Rebuild the leaderboard",
        only=page_files(site_dir), delete=["*"], check=False,
    )  # fmt: skip


def page_files(site_dir: Path) -> list[str]:
    """What a build wrote into ``site_dir`` (the page, ``leaderboard.json``, its figures) and the card:
    anything else in the folder (an earlier build's figure, a user's file) stays out of the Space."""
    from lmolt_hub.leaderboard.build import STATIC_DIR

    doc = json.loads((site_dir / "leaderboard.json").read_text(encoding="utf-8"))
    figures = {str(name) for name in (doc.get("plots") or {}).values()}
    names = {p.name for p in STATIC_DIR.iterdir() if p.is_file()} | figures | {"leaderboard.json", CARD_FILE}
    return sorted(n for n in names if Path(n).name == n and (site_dir / n).is_file())
