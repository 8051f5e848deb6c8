"""The eval set pins its metric configuration (``lmolt_hub.metrics.metric_config``).

The reviewer and the harness read the scoring options from the eval-set repo at a commit sha:
``metric_config.json`` first (written by the data stage), then the card, then the paper's
defaults. A bad configuration is a one-line MetricConfigError, never a silent default.
"""

from __future__ import annotations

import json

import pytest

from lmolt_hub.metrics.metric_config import (
    DEFAULT_NLI_MODEL,
    METRIC_CONFIG_FILE,
    MetricConfigError,
    load_metric_config,
)

pytestmark = pytest.mark.adversarial

ORG = "mcfg"


def _dataset(api, name: str, files: dict[str, bytes]) -> str:
    from huggingface_hub import CommitOperationAdd

    repo = f"{ORG}/{name}"
    api.create_repo(repo, repo_type="dataset", exist_ok=True)
    ops = [CommitOperationAdd(p, data) for p, data in files.items()]
    return api.create_commit(repo, ops, commit_message="set", repo_type="dataset").oid


def test_config_file_card_default_and_pinning(local_hub):
    from huggingface_hub import HfApi

    api = HfApi()
    doc = {"format": 1, "nli_model": f"{ORG}/tiny-nli", "nli_revision": "a" * 40, "bootstrap_resamples": 50}
    sha1 = _dataset(api, "with-file", {METRIC_CONFIG_FILE: json.dumps(doc).encode()})
    # main moves on to another NLI model: a result pinned to sha1 keeps sha1's configuration
    doc2 = {**doc, "nli_model": f"{ORG}/other-nli"}
    sha2 = _dataset(api, "with-file", {METRIC_CONFIG_FILE: json.dumps(doc2).encode()})
    cfg = load_metric_config(f"{ORG}/with-file", sha1, api=api)
    assert (cfg.nli_model, cfg.nli_revision, cfg.bootstrap_resamples) == (f"{ORG}/tiny-nli", "a" * 40, 50)
    assert cfg.eval_revision == sha1 and cfg.source == METRIC_CONFIG_FILE
    assert cfg.score_options("smiles2caption") == {"nli_model": f"{ORG}/tiny-nli", "nli_revision": "a" * 40}
    latest = load_metric_config(f"{ORG}/with-file", "main", api=api)
    assert latest.nli_model == f"{ORG}/other-nli" and latest.eval_revision == sha2

    card = b"---\nlmolt:\n  recipe:\n    fcd_convention: fcd_1.2\n    metrics:\n      nli_model: x/nli\n---\n"
    _dataset(api, "with-card", {"README.md": card})
    cfg = load_metric_config(f"{ORG}/with-card", api=api)
    assert (cfg.nli_model, cfg.fcd_convention, cfg.source) == ("x/nli", "fcd_1.2", "card")

    _dataset(api, "bare", {"data/test.jsonl": b'{"id": "1"}\n'})
    cfg = load_metric_config(f"{ORG}/bare", api=api)
    assert (cfg.nli_model, cfg.fcd_convention, cfg.hallucination, cfg.source) == (
        DEFAULT_NLI_MODEL,
        "fcd_1.1",
        True,
        "default",
    )


@pytest.mark.parametrize(
    "content, words",
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({"fcd_convention": "fcd_9"}).encode(), "fcd_convention"),
        (json.dumps({"reference_cache_dir": "/tmp/x"}).encode(), "unknown key"),
        (json.dumps({"hallucination": "no"}).encode(), "true/false"),
        (json.dumps({"fcd_stats_file": "fcd_stats/missing.npz"}).encode(), "not in the repo"),
    ],
)
def test_bad_configurations_are_one_line_errors(local_hub, content, words):
    from huggingface_hub import HfApi

    api = HfApi()
    name = f"bad-{abs(hash(content)) % 10**8}"
    _dataset(api, name, {METRIC_CONFIG_FILE: content})
    with pytest.raises(MetricConfigError, match=words) as err:
        load_metric_config(f"{ORG}/{name}", api=api)
    assert "\n" not in str(err.value)


def test_data_stage_writes_the_recipe_metrics():
    from lmolt_hub.data.config import EvalRecipe, SourceConfig, from_dict
    from lmolt_hub.data.eval_set import metric_config_bytes
    from lmolt_hub.metrics.metric_config import parse_metric_config

    recipe = from_dict(
        EvalRecipe,
        {"kind": "eval", "source": {"type": "chebi20", "split": "test"},
         "metrics": {"nli_model": "lab/tiny-nli-deberta", "nli_revision": "b" * 40}},
    )  # fmt: skip
    assert isinstance(recipe.source, SourceConfig)
    cfg = parse_metric_config(json.loads(metric_config_bytes(recipe, "fcd_stats/x.npz")))
    assert (cfg.nli_model, cfg.nli_revision, cfg.fcd_stats_file) == (
        "lab/tiny-nli-deberta",
        "b" * 40,
        "fcd_stats/x.npz",
    )
