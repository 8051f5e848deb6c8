"""The contracts stages hand each other: directions, results documents, triples/KTO and eval-set columns.

Each module is light (standard library, plus ``hub.ref`` for results): import the one you need.
"""

from lmolt_hub.formats.direction import DIRECTION_NAMES, Direction, is_direction

__all__ = ["DIRECTION_NAMES", "Direction", "is_direction"]
