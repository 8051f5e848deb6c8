"""`lmolt-hub study cpu`: the method at laptop scale on ChEBI-20 (``run``: stages; ``jobs``: worker
processes; ``cli``: arguments; ``model``: the small Llama; ``report``: docs/cpu-study.md)."""

from lmolt_hub.pipelines.study.cli import add_arguments, main

__all__ = ["add_arguments", "main"]
