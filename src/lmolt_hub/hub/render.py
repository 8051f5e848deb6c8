"""Model and dataset cards rendered from the Jinja templates in ``hub_cards/``.

Front matter (``card_data``) is YAML the Hub parses into ``cardData``; the body
is the template. Every card embeds what is needed to rebuild the artefact.
"""

from __future__ import annotations

from typing import Any

import jinja2
import yaml

from lmolt_hub.hub.cards import parse_card
from lmolt_hub.resources import HUB_CARDS

__all__ = ["parse_card", "render_card"]


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HUB_CARDS)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_card(template: str, card_data: dict[str, Any], **context: Any) -> str:
    """README.md text: YAML front matter from ``card_data`` + the rendered ``template``."""
    body = _env().get_template(template).render(card_data=card_data, **context)
    front = yaml.safe_dump(card_data, sort_keys=False, allow_unicode=True).strip()
    return f"---\n{front}\n---\n\n{body}"
