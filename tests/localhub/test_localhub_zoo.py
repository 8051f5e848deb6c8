"""The zoo page's summaries: each repo's summary is its card's first sentence, complete.

The cards are lmolt-hub's own templates (hub_cards/*.md.j2), whose first sentences run over
several lines: the old summary took the first line only and cut them mid-sentence.
"""

from __future__ import annotations

import jinja2
import pytest

from lmolt_hub.localhub.zoo import MAX_SUMMARY, first_sentence
from lmolt_hub.resources import HUB_CARDS

# (template, words that sit on its first sentence's LAST line: present only if nothing was cut)
TEMPLATES = [
    ("model_adapter.md.j2", "(arXiv:2405.13984)."),
    ("model_merge.md.j2", "arXiv:2405.13984)."),
    ("dataset_triples.md.j2", "a weaker model's output as rejected."),
    ("dataset_eval.md.j2", "(compared by InChIKey)."),
]


def _render(template: str) -> str:
    """The template's head (title and first paragraph, up to its first section), rendered."""
    head = (HUB_CARDS / template).read_text(encoding="utf-8").split("\n## ")[0]
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    meta = {"method": "slerp", "parents": [{}, {}]}
    return env.from_string(head).render(method="cpo", repo_id="lmolt/x", name="lmolt/x", meta=meta)


@pytest.mark.parametrize(("template", "ending"), TEMPLATES)
def test_summary_is_the_complete_first_sentence_of_each_card(template, ending):
    sentence = first_sentence(_render(template))
    assert sentence.endswith(ending), sentence
    assert "\n" not in sentence and "**" not in sentence and "](" not in sentence  # plain text
    assert sentence.count(". ") == 0  # exactly one sentence


def test_nli_stand_in_card(tmp_path):
    from lmolt_hub.localhub.cardmeta import card_data, split_card
    from lmolt_hub.tiny import save_tiny_nli

    text = (save_tiny_nli(tmp_path / "nli") / "README.md").read_text()
    assert card_data(text)["license"] == "apache-2.0"
    sentence = first_sentence(split_card(text)[1])
    assert sentence.startswith("A tiny, randomly initialised DeBERTa-v2 NLI cross-encoder")
    assert sentence.endswith("runs offline in tests and in the lmolt-hub quickstart.")


def test_sentence_rules():
    assert (
        first_sentence("# T\n\nFirst, e.g. this, and v1.5 of\nit. Second one.\n")
        == "First, e.g. this, and v1.5 of it."
    )
    assert first_sentence("| a | b |\n\nNo full stop at all") == "No full stop at all"
    assert first_sentence("```\ncode. Here\n```\nProse. More.") == "Prose."
    long = first_sentence("word " * 1000)
    assert len(long) <= MAX_SUMMARY + 2 and long.endswith("\u2026")  # a hostile card stays bounded
