"""use_local_hub points every already-imported Hub client of this process at the local Hub, and
restores them: also transformers 5's cached HfApi, which otherwise keeps the endpoint it first saw
(the in-process quickstart or study then lists a tokenizer's chat templates on the wrong Hub)."""

from __future__ import annotations

import os


def test_use_local_hub_repoints_and_restores_transformers_cached_api(tmp_path):
    from huggingface_hub import constants
    from transformers.utils import hub as tf_hub

    from lmolt_hub.localhub import use_local_hub

    before = tf_hub.hf_api().endpoint  # created now, with the suite's endpoint
    assert before == constants.ENDPOINT == os.environ["HF_ENDPOINT"]
    with use_local_hub(tmp_path / "hub") as hub:
        assert tf_hub.hf_api().endpoint == hub.url == constants.ENDPOINT != before
        info = tf_hub.hf_api().whoami()  # answered by the local Hub, with its own token
        assert info["name"]
    assert tf_hub.hf_api().endpoint == before == constants.ENDPOINT
