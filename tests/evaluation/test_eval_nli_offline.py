"""Evaluation with no extra flags, offline: the eval set names its own NLI model (issue 14, point 1).

- The harness takes the NLI model (and its revision) from the eval set's ``metric_config.json``,
  so the README's `python eval_harness/run.py --model <org>/<model>` works against a local Hub.
- It resolves the NLI model before generating; where it cannot be had, everything else is
  scored, the NLI metrics are "not computed: <reason>" in a schema-valid results file, the user
  is told the one flag that fixes it, and the exit code is 0.
- `--predictions F --direction smiles2caption` does not spend a minute in network retries.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmolt_hub.formats import results as R
from lmolt_hub.metrics.metric_config import config_document
from lmolt_hub.resources import chebi20_split

ORG = "nlioff"
N_ROWS = 4
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rows(n: int) -> list[dict]:
    with open(chebi20_split("validation"), encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            {"id": r["CID"], "molecule": r["SMILES"], "caption": r["description"]}
            for _, r in zip(range(n), reader, strict=False)
        ]


def _eval_set(api, tmp: Path, name: str, nli_model: str, nli_revision: str | None) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import CommitOperationAdd

    repo = f"{ORG}/{name}"
    pq.write_table(pa.Table.from_pylist(_rows(N_ROWS)), tmp / f"{name}.parquet")
    config = config_document(nli_model=nli_model, nli_revision=nli_revision, bootstrap_resamples=10)
    api.create_repo(repo, repo_type="dataset", exist_ok=True)
    ops = [
        CommitOperationAdd("data/test-00000-of-00001.parquet", str(tmp / f"{name}.parquet")),
        CommitOperationAdd("metric_config.json", json.dumps(config).encode()),
    ]
    api.create_commit(repo, ops, commit_message="eval set", repo_type="dataset")
    return repo


@pytest.fixture(scope="module")
def hub(local_hub, tiny_llama_dir, tmp_path_factory):
    from huggingface_hub import HfApi

    from lmolt_hub.tiny import save_tiny_nli

    tmp = tmp_path_factory.mktemp("nlioff")
    api = HfApi()
    api.create_repo(f"{ORG}/tiny-nli", exist_ok=True)
    nli_sha = api.upload_folder(repo_id=f"{ORG}/tiny-nli", folder_path=str(save_tiny_nli(tmp / "nli"))).oid
    api.create_repo(f"{ORG}/my-model", exist_ok=True)
    api.upload_folder(repo_id=f"{ORG}/my-model", folder_path=str(tiny_llama_dir))
    return {
        "tmp": tmp,
        "nli_sha": nli_sha,
        # the default eval set of namespace ORG names the local NLI stand-in, pinned
        "good": _eval_set(api, tmp, "lmolt-eval-3k", f"{ORG}/tiny-nli", nli_sha),
        "missing": _eval_set(api, tmp, "eval-missing-nli", f"{ORG}/no-such-nli", None),
    }


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "LMOLT_ORG": ORG, **extra})
    return env


def test_readme_command_with_no_extra_flags_uses_the_eval_sets_nli(hub):
    """`python eval_harness/run.py --model <org>/<model>` as the README says, on a local Hub: no
    scoring flags at all (only a short --max-new-tokens, so the tiny model's 512 tokens of noise
    do not cost a minute)."""
    out = hub["tmp"] / "readme-run"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "eval_harness" / "run.py"), "--model", f"{ORG}/my-model",
         "--max-new-tokens", "16"],
        cwd=out, capture_output=True, text=True, env=_env(), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = (out / "results").glob("*/*/results_*.json")
    doc = R.read_results(path)
    assert (
        doc["eval_dataset"]["id"] == f"{ORG}/lmolt-eval-3k" and doc["n_samples"]["smiles2caption"] == N_ROWS
    )
    options = doc["metric_options"]["by_direction"]["smiles2caption"]
    assert options["nli_model"] == f"{ORG}/tiny-nli" and options["nli_revision"] == hub["nli_sha"]
    assert 0 <= doc["hallucination"]["smiles2caption"]["win_rate"] <= 1
    assert "not_computed" not in doc
    assert doc["bootstrap"]["n_resamples"] == 10  # the eval set's pinned value


def test_missing_nli_model_is_found_before_generation_and_the_rest_is_scored(hub, monkeypatch, capsys):
    from lmolt_hub.evaluation import run as runner
    from lmolt_hub.generation.backends import GenerationParams

    events: list[str] = []
    real_resolve, real_generate = runner.resolve_nli, runner._generate
    monkeypatch.setattr(runner, "resolve_nli", lambda *a: events.append("nli") or real_resolve(*a))
    monkeypatch.setattr(runner, "_generate", lambda *a: events.append("generate") or real_generate(*a))
    started = time.monotonic()
    doc = runner.evaluate_model(
        f"{ORG}/my-model",
        eval_dataset=hub["missing"],
        output_dir=str(hub["tmp"] / "missing"),
        use_cache=False,
        generation=GenerationParams(max_new_tokens=8),
        show_progress=False,
    )
    assert events == ["nli", "generate", "generate"]  # resolved before any generation
    assert time.monotonic() - started < 120
    err = capsys.readouterr().err
    assert "--nli-model" in err and f"{ORG}/no-such-nli" in err
    R.validate_results(json.loads(Path(doc["results_path"]).read_text()))
    reasons = doc["not_computed"]["smiles2caption"]
    assert set(reasons) == {"win_rate", "mean_entailment"}
    assert all(r.startswith("not computed: ") and "--nli-model" in r for r in reasons.values())
    halluc = doc["hallucination"]["smiles2caption"]
    assert halluc["win_rate"] is None and halluc["mean_entailment"] is None
    assert halluc["mean_abs_dlen"] is not None  # dLen needs no NLI model
    assert set(doc["results"]["smiles2caption"]) >= {"bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor"}
    assert doc["hallucination"]["caption2smiles"]["win_rate"] is not None  # L->M needs no NLI model
    assert any("--nli-model" in w for w in doc["warnings"])
    samples = R.read_samples(Path(doc["results_path"]).parent / doc["samples"]["smiles2caption"])
    assert all("dlen" in s["metrics"] and "win" not in s["metrics"] for s in samples)
    # the leaderboard treats it as incomplete
    from lmolt_hub.leaderboard.records import verified_record

    assert verified_record(doc).not_computed == {"smiles2caption": reasons}


def _predictions_tsv(path: Path) -> Path:
    rows = _rows(N_ROWS)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("SMILES\tground truth\toutput\n")
        for r in rows:
            f.write(f"{r['molecule']}\t{r['caption']}\t{r['caption'][: len(r['caption']) // 2]}\n")
    return path


def test_predictions_offline_no_minute_of_retries(tmp_path):
    """No Hub at all (nothing listens at HF_ENDPOINT): scored in seconds, exit 0, the flag named."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    preds = _predictions_tsv(tmp_path / "preds.tsv")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "eval_harness" / "run.py"), "--predictions", str(preds),
         "--direction", "smiles2caption", "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, env=_env(HF_ENDPOINT=dead), timeout=300,
    )  # fmt: skip
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--nli-model" in proc.stderr
    assert "Traceback" not in proc.stderr
    (path,) = (tmp_path / "out").glob("*/*/results_*.json")
    doc = R.read_results(path)
    assert set(doc["not_computed"]["smiles2caption"]) == {"win_rate", "mean_entailment"}
    assert doc["results"]["smiles2caption"]["rouge1"] > 0
    assert wall < 45, f"{wall:.0f} s: network retries?"


def test_predictions_with_a_local_nli_folder(tmp_path):
    from lmolt_hub.evaluation import score_predictions_file
    from lmolt_hub.tiny import save_tiny_nli

    nli = save_tiny_nli(tmp_path / "nli")
    doc = score_predictions_file(
        _predictions_tsv(tmp_path / "preds.tsv"), "smiles2caption", output_dir=tmp_path / "out",
        nli_model=str(nli), bootstrap_resamples=10,
    )  # fmt: skip
    assert "not_computed" not in doc
    assert 0 <= doc["hallucination"]["smiles2caption"]["win_rate"] <= 1
    assert doc["metric_options"]["by_direction"]["smiles2caption"]["nli_model"] == str(nli)
