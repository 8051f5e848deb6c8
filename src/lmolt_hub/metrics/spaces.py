"""``lmolt-hub metrics push --org ORG``: publish the metric modules as Hub Spaces, as ``evaluate``
expects them (``evaluate.load("<org>/<name>")`` fetches ``<name>.py`` from the Space
``<org>/<name>``).

Each Space holds the module script (byte for byte the bundled one, so a local load and a Hub load
run the same file), a README card (description, inputs, outputs, citation), ``requirements.txt``
naming a compatible lmolt-hub, and ``app.py`` (evaluate's Gradio widget, as ``evaluate-cli create``
makes it). One commit per Space; pushing unchanged files makes no commit, so the revision stays.
"""

from __future__ import annotations

import argparse
from typing import Any

from lmolt_hub.metrics import METRIC_INFO, METRICS_VERSION, TABLE_METRICS
from lmolt_hub.metrics.hf_evaluate import (
    CITATION,
    DESCRIPTIONS,
    INPUTS,
    MODULE_NAMES,
    TABLE_MODULES,
    higher_is_better,
)
from lmolt_hub.metrics.modules import bundled

TITLES = {
    "lmolt_caption": "lmolt caption metrics",
    "lmolt_molecule": "lmolt molecule metrics",
    "lmolt_hallucination": "lmolt hallucination",
}
USAGE = {
    "lmolt_caption": 'predictions=["The molecule is an acid."], references=["The molecule is a base."]',
    "lmolt_molecule": 'predictions=["CCO"], references=["OCC"]',
    "lmolt_hallucination": 'predictions=["CCO"], references=["OCC"], direction="caption2smiles"',
}
OPTIONS = {
    "lmolt_caption": "none needed; `details=True` adds `per_sample` (METEOR and ROUGE per row).",
    "lmolt_molecule": "`fingerprint_convention` (`lpm24` default, or `molt5`), `fcd_convention` "
    "(`fcd_1.1` default, or `fcd_1.2`), `fcd=False` to skip FCD, `fcd_reference_stats` (an .npz of the "
    "eval set); `details=True` adds `per_sample`.",
    "lmolt_hallucination": "`direction` (required: `smiles2caption` or `caption2smiles`); for captions "
    "`nli_model` (default `cross-encoder/nli-deberta-v3-base`), `nli_revision`, `nli_batch_size`, "
    "`nli_device`; `details=True` adds `per_sample` (dLen, chrF or entailment, win).",
}


def requirement() -> str:
    """A compatible lmolt-hub: this release up to the next minor (0.x), as pyproject's ranges."""
    from lmolt_hub import __version__

    major, minor = (int(x) for x in __version__.split(".")[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"lmolt-hub[eval]>={__version__},<{upper}"


def _outputs(name: str) -> str:
    keys = TABLE_METRICS[TABLE_MODULES[name]] if name in TABLE_MODULES else sorted(higher_is_better(name))
    rows = []
    for k, better in ((k, higher_is_better(name)[k]) for k in keys):
        info = METRIC_INFO[k]
        only = (
            f", {info['direction']} only" if name not in TABLE_MODULES and info["direction"] != "both" else ""
        )
        rows.append(f"- `{k}`: {info['label']} ({'higher' if better else 'lower'} is better{only})")
    return "\n".join(rows)


def readme(name: str, org: str) -> str:
    description = DESCRIPTIONS[name]
    return f"""---
title: {TITLES[name]}
emoji: 🧪
colorFrom: blue
colorTo: green
sdk: gradio
sdk_version: 3.19.1
app_file: app.py
pinned: false
tags:
- evaluate
- metric
- chemistry
- lmolt-hub
description: >-
  {description}
---

# Metric card for {name}

## Metric description

{description} It is the metric code of [lmolt-hub](https://github.com/lmolt-hub/lmolt-hub)
(`lmolt_hub.metrics`, metric definitions {METRICS_VERSION}), which reproduces the official MolT5 /
L+M-24 evaluation scripts value for value; this Space's script refuses to run under other metric
definitions, so a pinned revision always computes the same numbers.

## How to use

```python
import evaluate

module = evaluate.load("{org}/{name}")                      # pin with revision="<commit sha>"
module.compute({USAGE[name]})
```

Requirements: `pip install "{requirement()}"` (see `requirements.txt`).

### Inputs

{INPUTS}

Options: {OPTIONS[name]}

### Output values

A dictionary:

{_outputs(name)}

## Citation

```bibtex
{CITATION.rstrip()}
```

## Further references

- MolT5 evaluation scripts: https://github.com/blender-nlp/MolT5
- L+M-24 evaluation scripts: https://github.com/language-plus-molecules/LPM-24-Dataset
"""


APP = """import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load("{org}/{name}")
launch_gradio_widget(module)
"""


def space_files(name: str, org: str) -> dict[str, bytes]:
    """The files of the Space ``<org>/<name>``."""
    script = bundled(name).path
    with open(script, "rb") as f:
        code = f.read()
    return {
        f"{name}.py": code,
        "README.md": readme(name, org).encode(),
        "requirements.txt": (requirement() + "\n").encode(),
        "app.py": APP.format(org=org, name=name).encode(),
    }


def _git_blob_id(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _head_if_unchanged(api, repo: str, files: dict[str, bytes]) -> str | None:
    """The Space's head commit when it already holds exactly ``files``' contents, else None."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        info = api.space_info(repo)
    except RepositoryNotFoundError:
        return None
    remote = {
        e.path: e.blob_id for e in api.get_paths_info(repo, list(files), repo_type="space", revision=info.sha)
    }
    same = all(remote.get(path) == _git_blob_id(data) for path, data in files.items())
    return info.sha if same else None


def push_modules(
    org: str, names: tuple[str, ...] = MODULE_NAMES, private: bool = False
) -> dict[str, dict[str, Any]]:
    """Push each module's Space (one commit each, none when nothing changed); name -> {id, revision}."""
    from huggingface_hub import CommitOperationAdd, HfApi

    from lmolt_hub.hub.push import check_target

    api = HfApi()
    out = {}
    for name in names:
        repo = f"{org}/{name}"
        check_target(repo)
        files = space_files(name, org)
        sha = _head_if_unchanged(api, repo, files)
        if sha is None:
            api.create_repo(repo, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
            ops = [CommitOperationAdd(path, data) for path, data in files.items()]
            message = f"{name}: lmolt-hub metrics {METRICS_VERSION}"
            sha = api.create_commit(repo, ops, repo_type="space", commit_message=message).oid
        out[name] = {"id": repo, "revision": sha}
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("push", help="publish the metric modules as Hub Spaces <org>/<name>")
    p.add_argument("--org", default=None, help="Hub namespace of the Spaces (default $LMOLT_ORG or lmolt)")
    p.add_argument("--private", action="store_true", help="create the Spaces private")


def main(args: argparse.Namespace) -> int:
    from lmolt_hub.hub.errors import ensure_hub_reachable
    from lmolt_hub.hub.push import PushError
    from lmolt_hub.naming import default_org

    org = args.org or default_org()
    ensure_hub_reachable("lmolt-hub metrics push")
    try:
        pushed = push_modules(org, private=args.private)
    except PushError as exc:
        raise SystemExit(f"lmolt-hub metrics push: error: {exc}") from None
    for pin in pushed.values():
        print(f"{pin['id']}@{pin['revision']}")
    overrides = " ".join(f"metrics.modules.{n}={p['id']}@{p['revision']}" for n, p in pushed.items())
    print(f"pin them in an eval set: lmolt-hub data build --config <eval recipe> {overrides}")
    return 0
