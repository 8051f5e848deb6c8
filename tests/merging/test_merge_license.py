"""Every published card carries the licence of its parents: the merge card too (issue 14, point 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("mergekit")

from lmolt_hub.hub.cards import parse_card  # noqa: E402
from lmolt_hub.merging import merge_from_config  # noqa: E402
from lmolt_hub.merging.publish import license_fields  # noqa: E402


def test_license_fields_of_parents():
    assert license_fields(["llama2", "llama2"]) == {"license": "llama2"}
    assert license_fields(["llama2", None]) == {"license": "llama2"}
    assert license_fields(["mit", "apache-2.0"]) == {"license": "other", "license_name": "apache-2.0-and-mit"}
    assert license_fields([None, None]) == {}


def _parent(path: Path, tokenizer, seed: int, license_: str) -> Path:
    from lmolt_hub.tiny import build_tiny_llama

    build_tiny_llama(tokenizer, seed=seed).save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "README.md").write_text(f"---\nlicense: {license_}\ntags: [lmolt]\n---\n# parent\n")
    return path


def test_merge_card_carries_the_parents_licence(tmp_path, one_torch_thread):
    from lmolt_hub.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    a, b = (_parent(tmp_path / n, tok, s, "llama2") for n, s in (("a", 1), ("b", 2)))
    recipe = {"merge_method": "slerp", "base_model": str(a), "models": [{"model": str(a)}, {"model": str(b)}],
              "parameters": {"t": 0.05}, "dtype": "float32"}  # fmt: skip
    (tmp_path / "slerp.yaml").write_text(yaml.safe_dump(recipe))
    meta = merge_from_config(tmp_path / "slerp.yaml", tmp_path / "out", check_generation=False)
    assert meta["parent_licenses"] == ["llama2", "llama2"]
    data, _ = parse_card((tmp_path / "out" / "README.md").read_text())
    assert data["license"] == "llama2"
