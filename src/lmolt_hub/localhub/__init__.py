"""A local Hugging Face Hub-compatible server for tests, the offline quickstart and air-gapped labs.

``start_in_thread(root, port=..., tokens=[...])`` runs one in-process; ``use_local_hub``
also points the Hub clients of this process (and its subprocesses) at it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator

from lmolt_hub.localhub.discussions import Discussions
from lmolt_hub.localhub.errors import HubError
from lmolt_hub.localhub.server import RunningHub, make_server, start_in_thread
from lmolt_hub.localhub.storage import Storage

__all__ = [
    "Discussions",
    "HubError",
    "RunningHub",
    "Storage",
    "make_server",
    "start_in_thread",
    "use_local_hub",
]

_ENV_KEYS = ("HF_ENDPOINT", "HF_HUB_DISABLE_XET", "HF_TOKEN", "HF_HUB_OFFLINE")


def _patch_clients(endpoint: str) -> dict[tuple[object, str], object]:
    """Point already-imported client modules at ``endpoint``; returns what to restore.

    The clients read HF_ENDPOINT once, at import time, into module constants (and
    huggingface_hub builds a module-level ``HfApi`` then), so setting the env var
    is not enough once they are imported.
    """
    from urllib.parse import urlsplit

    saved: dict[tuple[object, str], object] = {}

    def setattr_saved(obj: object, name: str, value: object) -> None:
        if hasattr(obj, name):
            saved[(obj, name)] = getattr(obj, name)
            setattr(obj, name, value)

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        setattr_saved(constants, "ENDPOINT", endpoint)
        setattr_saved(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        setattr_saved(constants, "HF_HUB_DISABLE_XET", True)
        setattr_saved(constants, "HF_HUB_OFFLINE", False)
        host = urlsplit(endpoint).hostname
        if host and hasattr(constants, "HF_URL_HOSTS"):
            setattr_saved(constants, "HF_URL_HOSTS", frozenset(constants.HF_URL_HOSTS | {host}))
    hf_api = sys.modules.get("huggingface_hub.hf_api")
    if hf_api is not None and hasattr(hf_api, "api"):
        setattr_saved(hf_api.api, "endpoint", endpoint)
    # transformers 5 caches one HfApi (utils.hub._hf_api) with the endpoint it saw when first used
    tf_hub = sys.modules.get("transformers.utils.hub")
    if tf_hub is not None and getattr(tf_hub, "_hf_api", None) is not None:
        setattr_saved(tf_hub._hf_api, "endpoint", endpoint)
    ds_config = sys.modules.get("datasets.config")
    if ds_config is not None:
        setattr_saved(ds_config, "HF_ENDPOINT", endpoint)
        setattr_saved(
            ds_config, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"
        )
        setattr_saved(ds_config, "HF_HUB_OFFLINE", False)
    ev_config = sys.modules.get("evaluate.config")
    if ev_config is not None:
        setattr_saved(ev_config, "HF_ENDPOINT", endpoint)
        setattr_saved(ev_config, "HF_LIST_ENDPOINT", endpoint + "/api/spaces?filter={type}")
        setattr_saved(ev_config, "HUB_EVALUATE_URL", endpoint + "/spaces/{path}/resolve/{revision}/{name}")
    return saved


@contextlib.contextmanager
def use_local_hub(root: str | os.PathLike, port: int = 0, token: str | None = None) -> Iterator[RunningHub]:
    """Run a local Hub in a thread and point this process's Hub clients at it.

    Sets HF_ENDPOINT, HF_HUB_DISABLE_XET=1 and HF_TOKEN (a fresh random token when
    ``token`` is None), patches already-imported client modules, and restores all
    of it on exit.
    """
    token = token or "hf_local_" + secrets.token_hex(16)
    hub = start_in_thread(root=root, port=port, tokens=[token])
    old_env = {k: os.environ.get(k) for k in _ENV_KEYS}
    os.environ.update({"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": token})
    os.environ.pop("HF_HUB_OFFLINE", None)
    saved = _patch_clients(hub.url)
    try:
        yield hub
    finally:
        for (obj, name), value in saved.items():
            setattr(obj, name, value)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        hub.stop()
