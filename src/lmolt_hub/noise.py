"""Silence third-party warnings that are not ours to fix and tell the user nothing actionable.

Each filter matches one exact message, so every other warning (including new ones from the same
libraries) still shows. Installed when lmolt_hub is imported, before those libraries load.
"""

from __future__ import annotations

import logging
import warnings

# (logger name, message substring): logged on import or every run, with nothing for a user to do.
LOG_NOISE = (
    # bitsandbytes on CPUs with AVX512-BF16: an optional faster kernel package is not installed.
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
    # mergekit 0.1.5 writes config.torch_dtype; transformers 5 renamed it to dtype.
    ("transformers.configuration_utils", "`torch_dtype` is deprecated! Use `dtype` instead!"),
)
# (category, message regex) of warnings.warn calls.
WARNING_NOISE = (
    # trl's configs default gradient_checkpointing=True and peft/trl read model.is_gradient_checkpointing;
    # transformers 5 renamed both (to activation_checkpointing).
    (FutureWarning, r"`(is_)?gradient_checkpointing(_kwargs)?` is deprecated and will be removed in v6"),
)


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_third_party_noise() -> None:
    """Install the filters above (idempotent)."""
    for name, text in LOG_NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.text == text for f in logger.filters):
            logger.addFilter(_DropMessage(text))
    for category, pattern in WARNING_NOISE:
        warnings.filterwarnings("ignore", message=pattern, category=category)


def disable_progress_bars() -> None:
    """``--quiet``: no progress bars from huggingface_hub, datasets, transformers or plain tqdm.

    Each library reads its switch when first imported, so set the variables for the ones still
    to come and flip the switch of those already loaded.
    """
    import os
    import sys

    for var in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TQDM_DISABLE"):
        os.environ[var] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars as hub_off

        hub_off()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
