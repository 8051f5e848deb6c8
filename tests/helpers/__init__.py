"""Helpers shared by test modules (test modules never import each other).

Imported as ``helpers.<module>``: ``tests/`` is on ``sys.path`` because ``tests/conftest.py`` lives
there (pytest's default ``prepend`` import mode); bench scripts that reuse the demo data add it.
"""
