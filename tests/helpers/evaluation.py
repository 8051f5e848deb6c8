"""Harness configurations shared by the evaluation tests."""

from __future__ import annotations

from lmolt_hub.evaluation.run import EvalConfig
from lmolt_hub.generation.backends import GenerationParams
from lmolt_hub.resources import chebi20_split


def local_eval_config(tmp, **kw) -> EvalConfig:
    """A harness config on the bundled ChEBI-20 validation split: 3 rows, short generations, no FCD/NLI."""
    base = dict(
        eval_dataset=str(chebi20_split("validation")),
        limit=3,
        directions=["caption2smiles"],
        generation=GenerationParams(max_new_tokens=6),
        cache_dir=str(tmp / "cache"),
        output_dir=str(tmp / "results"),
        bootstrap_resamples=0,
        hallucination=False,
        metric_options={"fcd": False},
        show_progress=False,
    )
    return EvalConfig(**{**base, **kw})
