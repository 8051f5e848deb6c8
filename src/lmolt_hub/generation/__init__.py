"""One generation engine for every stage that generates (harness, negatives, spot check).

Modules: ``loading`` (resolve and load a checkpoint: Hub sha or local content hash, adapters,
dtype, pickle refusal), ``backends`` (hf, vLLM + its engine args), ``cache`` (raw generations on
disk, resumable), ``postprocess`` (the one cleaning step), ``engine`` (``Engine``: all of them
together; ``generate_all``: the cached, sharded loop).
"""

from __future__ import annotations

from lmolt_hub.generation.backends import BACKENDS, GenerationParams, HFBackend, VLLMUnsupported
from lmolt_hub.generation.engine import Engine, Generations, generate_all
from lmolt_hub.generation.loading import LoadOptions, ModelLoadError, ModelRef
from lmolt_hub.generation.postprocess import postprocess

__all__ = [
    "BACKENDS",
    "Engine",
    "GenerationParams",
    "Generations",
    "HFBackend",
    "LoadOptions",
    "ModelLoadError",
    "ModelRef",
    "VLLMUnsupported",
    "generate_all",
    "postprocess",
]
