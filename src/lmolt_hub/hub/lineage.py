"""`lmolt-hub lineage <hub-id>`: the tree of parents of a Hub model, read from the Hub itself.

Sources, in order of precedence, for each model:
- the card's ``lmolt`` block (``kind: merge`` with ``parents`` and their revisions; trained
  models' ``parent``/``parent_revision`` and ``dataset``/``dataset_revision``),
- ``adapter_config.json`` (``base_model_name_or_path``, ``revision``) for LoRA adapters,
- the Hub-standard card fields ``base_model`` (+ ``base_model_relation``) and ``datasets``.

Nothing is downloaded but cards and adapter configs. A parent that is not on the Hub (a local
path, or a repo this endpoint does not have) is a leaf marked as such, never an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lmolt_hub.hub.cards import AdapterMeta, MergeMeta, read_meta
from lmolt_hub.hub.ref import is_hub_id

MAX_DEPTH = 12


def _card_data(api, info, repo_id: str, sha: str | None) -> dict[str, Any]:
    card = getattr(info, "card_data", None)
    if card is not None:
        return card.to_dict() if hasattr(card, "to_dict") else dict(card)
    if any(s.rfilename == "README.md" for s in info.siblings or []):
        from huggingface_hub import hf_hub_download

        from lmolt_hub.hub.cards import parse_card

        path = hf_hub_download(repo_id, "README.md", revision=sha)
        return parse_card(Path(path).read_text(encoding="utf-8"))[0]
    return {}


def _adapter_config(repo_id: str, sha: str | None) -> dict[str, Any]:
    from huggingface_hub import hf_hub_download

    return json.loads(Path(hf_hub_download(repo_id, "adapter_config.json", revision=sha)).read_text())


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _split_rev(ref: str) -> tuple[str, str | None]:
    name, _, rev = ref.partition("@")
    return name, rev or None


def lineage(
    repo_id: str, revision: str | None = None, *, _seen: frozenset = frozenset(), _depth: int = 0
) -> dict[str, Any]:
    """The lineage tree of ``repo_id`` as nested dicts.

    Each node: ``id``, ``revision`` (commit sha when found), ``kind`` (merge, adapter, model,
    dataset, local, missing), optional ``method``/``detail``, ``parents`` (each with a
    ``relation``) and ``datasets``.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    node: dict[str, Any] = {
        "id": repo_id,
        "revision": revision,
        "kind": "model",
        "parents": [],
        "datasets": [],
    }
    if repo_id.startswith("tiny://"):
        return node | {"kind": "tiny", "detail": "built from config by lmolt_hub.tiny"}
    if not is_hub_id(repo_id):
        return node | {"kind": "local", "detail": "not a Hub id"}
    if (repo_id, revision) in _seen or _depth > MAX_DEPTH:
        return node | {"kind": "cycle", "detail": "already shown above"}
    api = HfApi()
    try:
        info = api.model_info(repo_id, revision=revision)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return node | {"kind": "missing", "detail": "not on this Hub"}
    except (HfHubHTTPError, OSError, Exception) as e:  # httpx connection errors are not OSErrors
        from lmolt_hub.hub.errors import hub_error_message

        return node | {
            "kind": "missing",
            "detail": f"unreachable ({hub_error_message(e) or f'Hub error: {e}'})",
        }
    node["revision"] = info.sha
    seen = _seen | {(repo_id, revision), (repo_id, info.sha)}
    data = _card_data(api, info, repo_id, info.sha)
    meta = read_meta(data)
    lm = meta if isinstance(meta, AdapterMeta) else AdapterMeta()  # what a trained model's card pins
    files = {s.rfilename for s in info.siblings or []}

    def child(ref: str, rev: str | None, relation: str) -> dict[str, Any]:
        name, inline_rev = _split_rev(ref)
        sub = lineage(name, rev or inline_rev, _seen=seen, _depth=_depth + 1)
        return {"relation": relation} | sub

    if isinstance(meta, MergeMeta):
        node |= {"kind": "merge", "method": meta.method, "detail": _ratio_text(meta.parameters)}
        for p in meta.parents if isinstance(meta.parents, list) else []:
            relation = f"merge {p.get('role', 'input')}"  # "merge base" / "merge input"
            if p.get("adapter"):
                node["parents"].append(child(p["adapter"]["id"], p["adapter"].get("revision"), relation))
            else:
                node["parents"].append(child(p["id"], p.get("revision"), relation))
    elif "adapter_config.json" in files:
        cfg = _adapter_config(repo_id, info.sha)
        # the card's pinned parent (portable) wins over adapter_config's path (machine-specific)
        base = lm.parent or cfg.get("base_model_name_or_path")
        base_rev = lm.parent_revision if lm.parent else cfg.get("revision")
        detail = ", ".join([cfg.get("peft_type") or "adapter", *(lm.directions or [])])
        node |= {"kind": "adapter", "method": lm.method, "detail": detail}
        if base:
            node["parents"].append(child(base, base_rev, "base"))
    else:
        if lm.method:
            node["method"] = lm.method
        relation = data.get("base_model_relation") or "base"
        if lm.parent:  # lmolt-trained full models (e.g. an adapter merged into its base)
            node["parents"].append(child(lm.parent, lm.parent_revision, relation))
        else:
            for base in _as_list(data.get("base_model")):
                node["parents"].append(child(base, None, relation))
    node["datasets"] = _datasets(data, lm)
    return node


def _datasets(data: dict[str, Any], lm: AdapterMeta) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(lm.dataset, str):  # lmolt training cards pin the dataset revision
        out.append(
            {
                "id": lm.dataset,
                "revision": lm.dataset_revision,
                "kind": "dataset",
                "detail": lm.dataset_config,
            }
        )
    for d in _as_list(lm.datasets):
        if isinstance(d, dict) and d.get("id"):
            out.append({"id": d["id"], "revision": d.get("revision") or d.get("sha"), "kind": "dataset"})
        elif isinstance(d, str):
            out.append({"id": d, "revision": None, "kind": "dataset"})
    known = {d["id"] for d in out}
    for d in _as_list(data.get("datasets")):
        if isinstance(d, str) and d not in known:
            out.append({"id": d, "revision": None, "kind": "dataset"})
    return out


def _ratio_text(parameters: Any) -> str | None:
    if not isinstance(parameters, dict) or not parameters:
        return None
    parts = []
    for where, params in parameters.items():
        values = ", ".join(f"{k}={v}" for k, v in params.items())
        parts.append(values if where == "parameters" else f"{_short_where(where)}: {values}")
    return "; ".join(parts)


def _short_where(where: str) -> str:
    # "models[1] (org/x)" -> "org/x"
    return where.split("(", 1)[1].rstrip(")") if "(" in where else where


def _label(node: dict[str, Any]) -> str:
    rev = f" @ {node['revision'][:10]}" if node.get("revision") else ""
    kind = node.get("kind", "model")
    extra = ", ".join(str(x) for x in (node.get("method"), node.get("detail")) if x)
    return f"{node['id']}{rev} [{kind}{': ' + extra if extra else ''}]"


def format_tree(node: dict[str, Any]) -> str:
    lines = [_label(node)]

    def walk(n: dict[str, Any], prefix: str) -> None:
        items = [(p.get("relation", "parent"), p) for p in n.get("parents", [])]
        items += [("dataset", d) for d in n.get("datasets", [])]
        for i, (relation, sub) in enumerate(items):
            last = i == len(items) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{relation}: {_label(sub)}")
            walk(sub, prefix + ("    " if last else "│   "))

    walk(node, "")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo_id", help="Hub model id, optionally org/name@revision")
    parser.add_argument("--revision", default=None, help="branch, tag or commit (default main)")
    parser.add_argument("--json", action="store_true", help="print the tree as JSON")


def main(args: argparse.Namespace) -> int:
    name, inline_rev = _split_rev(args.repo_id)
    tree = lineage(name, args.revision or inline_rev)
    if tree["kind"] == "missing":
        print(f"lmolt-hub lineage: error: {name} {tree.get('detail')}", file=sys.stderr)
        return 1
    print(json.dumps(tree, indent=2) if args.json else format_tree(tree))
    return 0
