"""Moved to :mod:`lmolt_hub.formats.results`; this old name stays importable as the same module object
(so ``lmolt_hub.results.X`` and ``lmolt_hub.formats.results.X`` are one thing, monkeypatching included)."""

import sys

from lmolt_hub.formats import results as _results

sys.modules[__name__] = _results
