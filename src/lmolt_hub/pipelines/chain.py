"""`lmolt-hub chain recipes/<model>/<fusion>-<method>/chain.yaml`: merge -> push -> train -> push.

A chain recipe is validated data (``CHAIN_SCHEMA``)::

    org: lmolt                          # namespace of everything pushed (--org overrides it)
    parents:                            # optional: train the merge inputs first (tiny chains)
      - {method: sft, config: ../sft/caption2smiles.yaml, overrides: [...]}
    merge:
      config: ../merges/slerp.yaml      # mergekit-schema recipe; paths are relative to chain.yaml
      name: lmolt-slerp                 # default: zoo_name(fusion=<merge_method>)
    train:
      method: cpo
      config: ../cpo/default.yaml
      name: lmolt-slerp-cpo             # default: zoo_name(method, fusion)
      overrides: []                     # extra `lmolt-hub train` flags

``${org}`` in overrides and in the merge recipe is replaced by the namespace. The train step's
model is the merge's Hub id pinned to the revision just pushed, so the trained adapter's card
names the merge (with revision) as its parent. Completed steps are recorded in
``<work_dir>/chain_state.json``; re-running the chain skips them (resume). A named parent that
already exists on the Hub is reused, so chains that share parents train them once.
"""

from __future__ import annotations

import argparse
import json
import shlex
import string
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from lmolt_hub.naming import FUSIONS, METHODS, repo_id, zoo_name
from lmolt_hub.pipelines.state import StepState

_STEP = {
    "type": "object",
    "additionalProperties": False,
    "required": ["method", "config"],
    "properties": {
        "method": {"enum": list(METHODS)},
        "config": {"type": "string"},
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
        "overrides": {"type": "array", "items": {"type": "string"}},
    },
}
CHAIN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["merge", "train"],
    "properties": {
        "org": {"type": "string"},
        "description": {"type": "string"},
        "parents": {"type": "array", "items": _STEP},
        "merge": {
            "type": "object",
            "additionalProperties": False,
            "required": ["config"],
            "properties": {
                "config": {"type": "string"},
                "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
                "check_generation": {"type": "boolean"},
            },
        },
        "train": _STEP,
    },
}


class ChainError(ValueError):
    """A chain recipe that cannot run; the message names the problem."""


def load_chain(path: str | Path, org: str | None = None) -> dict[str, Any]:
    """Read and validate a chain recipe; resolve paths, names and ``${org}``."""
    import jsonschema

    path = Path(path)
    if not path.is_file():
        raise ChainError(f"chain recipe not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ChainError(f"chain recipe {path} is not valid YAML: {e}") from None
    try:
        jsonschema.validate(data, CHAIN_SCHEMA)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ChainError(f"invalid chain recipe {path} at {where}: {e.message}") from None
    org = org or data.get("org")
    if not org:
        raise ChainError(f"chain recipe {path} has no org: set `org:` or pass --org")
    here = path.parent.resolve()
    merge_cfg = (here / data["merge"]["config"]).resolve()
    if not merge_cfg.is_file():
        raise ChainError(f"merge recipe {merge_cfg} (from {path}) does not exist")
    fusion = _fusion_of(merge_cfg)
    data["org"] = org
    data["merge"]["config"] = str(merge_cfg)
    data["merge"].setdefault("name", zoo_name(fusion=fusion) if fusion else None)
    if not data["merge"]["name"]:
        raise ChainError(f"merge method of {merge_cfg} is not one of {FUSIONS}: give merge.name explicitly")
    steps = [*data.get("parents", []), data["train"]]
    for step in steps:
        step["config"] = str((here / step["config"]).resolve())
        if not Path(step["config"]).is_file():
            raise ChainError(f"training recipe {step['config']} (from {path}) does not exist")
        step["overrides"] = [_subst(o, org) for o in step.get("overrides", [])]
    data["train"].setdefault("name", zoo_name(method=data["train"]["method"], fusion=fusion))
    return data


def _fusion_of(merge_cfg: Path) -> str | None:
    raw = yaml.safe_load(merge_cfg.read_text(encoding="utf-8")) or {}
    method = raw.get("merge_method") if isinstance(raw, dict) else None
    return method if method in FUSIONS else None


def _subst(text: str, org: str) -> str:
    try:
        return string.Template(text).substitute(org=org)
    except (KeyError, ValueError) as e:
        raise ChainError(f"bad placeholder in {text!r}: only ${{org}} is defined ({e})") from None


def _train(step: dict[str, Any], settings: Any, extra: list[str]) -> dict[str, Any]:
    """One training step: the recipe, the chain recipe's and the user's flags, then the chain's
    typed settings (``TrainSettings``)."""
    from lmolt_hub.training import train

    return train(step["method"], step["config"], [*step["overrides"], *extra], settings=settings)


def _existing_model(rid: str) -> dict[str, Any] | None:
    """{hub_model_id, hub_revision} when ``rid`` already holds a model (adapter or weights)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        info = HfApi().model_info(rid)
    except RepositoryNotFoundError:
        return None
    files = {s.rfilename for s in info.siblings or []}
    if not files & {"adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json"}:
        return None
    return {"hub_model_id": rid, "hub_revision": info.sha, "reused": True}


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("output_dir", "hub_model_id", "hub_revision", "method")
    return {k: result.get(k) for k in keys if k in result}


def run_chain(
    path: str | Path,
    org: str | None = None,
    work_dir: str | Path | None = None,
    fresh: bool = False,
    train_args: list[str] | None = None,
    log=print,
) -> dict[str, Any]:
    """Run (or resume) a chain; returns {parents, merge, train} step summaries.

    ``train_args`` are extra `lmolt-hub train` flags appended to every training step (e.g. a
    smoke test's ``--max_train_samples 4``).
    """
    from lmolt_hub.merging import merge_from_config
    from lmolt_hub.training import TrainSettings

    chain = load_chain(path, org)
    org = chain["org"]
    work = Path(work_dir or Path("outputs") / "chains" / chain["train"]["name"]).resolve()
    state = StepState(work / "chain_state.json", fresh)
    out: dict[str, Any] = {"org": org, "parents": []}
    for i, step in enumerate(chain.get("parents", [])):
        key = f"parent{i}"
        if (done := state.get(key)) is None and step.get("name"):
            done = _existing_model(repo_id(org, step["name"]))  # shared by several chains
            if done is not None:
                log(
                    f"[chain] parent {i + 1}: {done['hub_model_id']}@{done['hub_revision']} exists; reusing it"
                )
                state.put(key, done)
        if done is None:
            log(f"[chain] training parent {i + 1}: {step['method']} {step['config']}")
            settings = TrainSettings(
                output_dir=str(work / f"parent{i}"),
                push_to_hub=True,
                hub_model_id=repo_id(org, step["name"]) if step.get("name") else None,
            )
            done = _summary(_train(step, settings, list(train_args or [])))
            state.put(key, done)
        out["parents"].append(done)

    merge_id = repo_id(org, chain["merge"]["name"])
    if (merged := state.get("merge")) is None:
        log(f"[chain] merging {chain['merge']['config']} -> {merge_id}")
        t0 = time.perf_counter()
        result = merge_from_config(
            chain["merge"]["config"],
            work / "merge",
            push_to=merge_id,
            variables={"org": org},
            check_generation=chain["merge"].get("check_generation", True),
        )
        merged = _summary(result) | {"seconds": round(time.perf_counter() - t0, 2)}
        state.put("merge", merged)
    out["merge"] = merged

    train_id = repo_id(org, chain["train"]["name"])
    if (trained := state.get("train")) is None:
        log(f"[chain] {chain['train']['method']} on {merge_id}@{merged['hub_revision']} -> {train_id}")
        settings = TrainSettings(
            model_name_or_path=merge_id,
            model_revision=merged["hub_revision"],
            output_dir=str(work / "train"),
            push_to_hub=True,
            hub_model_id=train_id,
        )
        trained = _summary(_train(chain["train"], settings, list(train_args or [])))
        state.put("train", trained)
    out["train"] = trained
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="chain recipe, e.g. recipes/meditron-7b/slerp-cpo/chain.yaml")
    parser.add_argument(
        "--org", default=None, help="namespace of everything pushed (default: the recipe's org)"
    )
    parser.add_argument("--work-dir", default=None, help="where merges, checkpoints and chain_state.json go")
    parser.add_argument(
        "--fresh", action="store_true", help="ignore chain_state.json and run every step again"
    )
    parser.add_argument(
        "--train-args",
        default="",
        metavar="FLAGS",
        help='extra `lmolt-hub train` flags for every training step, e.g. "--max_train_samples 4"',
    )
    parser.add_argument("--dry-run", action="store_true", help="validate the chain and print the plan only")


def main(args: argparse.Namespace) -> int:
    from lmolt_hub.merging import MergeConfigError
    from lmolt_hub.training.config import RecipeError

    try:
        if args.dry_run:
            print(json.dumps(load_chain(args.config, args.org), indent=2))
            return 0
        result = run_chain(
            args.config,
            org=args.org,
            work_dir=args.work_dir,
            fresh=args.fresh,
            train_args=shlex.split(args.train_args),
        )
    except (ChainError, MergeConfigError, RecipeError) as e:
        print(f"lmolt-hub chain: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    return 0
