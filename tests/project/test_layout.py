"""The checkout's layout: one copy of each shipped file, working top-level links, no path into the checkout.

- ``hub_cards/`` (top level) is a link to the package's card templates; the package renders them.
- ``src/lmolt_hub/resources/recipes`` is a link to the top-level ``recipes/``; the wheel build
  follows it, so the quickstart finds its recipes in an installed wheel (tests/project/test_wheel_quickstart.py).
- No module reaches out of the package through ``Path(__file__).parents[...]``.
- Relative links in README.md and docs/*.md point at files that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmolt_hub import resources

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "lmolt_hub"


def test_top_level_hub_cards_opens_the_package_templates():
    template = ROOT / "hub_cards" / "model_merge.md.j2"
    text = template.read_text(encoding="utf-8")  # fails on a dangling link
    assert "merge method: `{{ meta.method }}`" in text
    assert template.samefile(resources.HUB_CARDS / "model_merge.md.j2")  # a link, not a copy
    assert sorted(p.name for p in (ROOT / "hub_cards").iterdir()) == sorted(
        p.name for p in resources.HUB_CARDS.iterdir()
    )


def test_recipes_are_package_data_with_one_copy():
    assert resources.RECIPES.samefile(ROOT / "recipes")
    chain = resources.recipe("tiny/slerp-cpo/chain.yaml")
    assert chain.samefile(ROOT / "recipes" / "tiny" / "slerp-cpo" / "chain.yaml")
    for needed in ("data/default/triples.yaml", "data/default/eval.yaml", "cpu-study/slerp-cpo/chain.yaml"):
        assert resources.recipe(needed).is_file()


def test_missing_recipe_names_it_and_the_fix():
    with pytest.raises(FileNotFoundError, match=r"recipes/tiny/nope\.yaml.*reinstall lmolt-hub"):
        resources.recipe("tiny/nope.yaml")


def test_no_module_finds_files_through_the_checkout_layout():
    offenders = [
        str(p.relative_to(ROOT))
        for p in SRC.rglob("*.py")
        if "resources/recipes" not in p.as_posix()
        and re.search(r"__file__\)(\.resolve\(\))?\.parents\[", p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def _relative_links(md: Path) -> list[str]:
    links = re.findall(r"\]\(([^)\s]+)\)", md.read_text(encoding="utf-8"))
    return [t.split("#")[0] for t in links if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_doc_links_resolve():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = [
        f"{md.relative_to(ROOT)}: {t}"
        for md in docs
        for t in _relative_links(md)
        if not (md.parent / t).exists()
    ]
    assert broken == []
    assert "../hub_cards/model_merge.md.j2" in _relative_links(ROOT / "docs" / "merges.md")
