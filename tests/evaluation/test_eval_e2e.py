"""End to end on the local Hub: a tiny model evaluated from its Hub id, cached, adapter == merged.

The evaluation set is a slice of the bundled ChEBI-20 validation split pushed
as a Hub dataset (with FCD reference statistics under ``fcd_stats/``); the M->L
hallucination metric uses a tiny DeBERTa-v2 NLI classifier served by the Hub.
"""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from lmolt_hub.evaluation import evaluate_model, score_predictions_file
from lmolt_hub.evaluation.run import EvalConfig
from lmolt_hub.formats import results as R
from lmolt_hub.generation.backends import GenerationParams
from lmolt_hub.resources import chebi20_split

from helpers.evaluation import local_eval_config

N_ROWS = 6
EVAL_REPO = "evalorg/lmolt-eval-mini"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rows(n: int) -> list[dict]:
    with open(chebi20_split("validation"), encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [
            {"id": r["CID"], "molecule": r["SMILES"], "caption": r["description"], "inchikey": ""}
            for _, r in zip(range(n), reader, strict=False)
        ]


@pytest.fixture(scope="module")
def hub(local_hub, tiny_llama_dir, tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from huggingface_hub import HfApi

    from lmolt_hub.metrics.fcd import reference_stats, save_stats, stats_filename
    from lmolt_hub.tiny import save_tiny_nli

    from helpers.models import make_tiny_adapter

    tmp = tmp_path_factory.mktemp("e2e")
    api = HfApi()
    rows = _rows(N_ROWS)
    pq.write_table(pa.Table.from_pylist(rows), tmp / "test.parquet")
    api.create_repo(EVAL_REPO, repo_type="dataset", exist_ok=True)
    api.upload_file(
        path_or_fileobj=str(tmp / "test.parquet"),
        path_in_repo="data/test-00000-of-00001.parquet",
        repo_id=EVAL_REPO,
        repo_type="dataset",
    )
    # Statistics deliberately *not* those of the references (a shifted mean), so the test can tell
    # that the harness used the repository's file instead of computing its own.
    refs = [r["molecule"] for r in rows]
    real = reference_stats(refs, "fcd_1.1", cache_dir=False)
    fake = dataclasses.replace(real, mu=real.mu + 1.0)
    save_stats(fake, tmp / "stats.npz")
    api.upload_file(
        path_or_fileobj=str(tmp / "stats.npz"),
        path_in_repo=f"fcd_stats/{stats_filename(refs)}",
        repo_id=EVAL_REPO,
        repo_type="dataset",
    )

    api.create_repo("evalorg/tiny-nli", exist_ok=True)
    api.upload_folder(repo_id="evalorg/tiny-nli", folder_path=str(save_tiny_nli(tmp / "nli")))
    api.create_repo("evalorg/e2e-base", exist_ok=True)
    api.upload_folder(repo_id="evalorg/e2e-base", folder_path=str(tiny_llama_dir))
    adapter_dir, _, merged_dir = make_tiny_adapter(tiny_llama_dir, tmp / "lora")
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "evalorg/e2e-base"
    (adapter_dir / "adapter_config.json").write_text(json.dumps(cfg))
    for name, folder in (("evalorg/e2e-adapter", adapter_dir), ("evalorg/e2e-merged", merged_dir)):
        api.create_repo(name, exist_ok=True)
        api.upload_folder(repo_id=name, folder_path=str(folder))
    return {"real_stats": real, "tmp": tmp}


def _config(tmp, **kw) -> EvalConfig:
    base = dict(
        eval_dataset=EVAL_REPO,
        limit=N_ROWS,
        batch_size=4,
        generation=GenerationParams(max_new_tokens=10),
        cache_dir=str(tmp / "cache"),
        output_dir=str(tmp / "results"),
        nli_model="evalorg/tiny-nli",
        bootstrap_resamples=20,
        show_progress=False,
    )
    return EvalConfig(**{**base, **kw})


def test_hub_model_end_to_end_then_fully_cached(hub):
    tmp = hub["tmp"]
    doc = evaluate_model("evalorg/e2e-base", _config(tmp))
    path = doc.pop("results_path")
    assert path.endswith(".json") and "evalorg__e2e-base/main/results_" in path
    on_disk = R.read_results(path)
    assert on_disk == doc
    assert doc["model"]["sha"] and doc["eval_dataset"]["sha"] and doc["eval_dataset"]["n_samples"] == N_ROWS
    assert doc["generation"]["generated"] == {"smiles2caption": N_ROWS, "caption2smiles": N_ROWS}
    assert set(doc["results"]["smiles2caption"]) >= {"bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor"}
    assert set(doc["results"]["caption2smiles"]) >= {"bleu", "exact_match", "validity", "morgan_fts", "fcd"}
    assert 0 <= doc["hallucination"]["smiles2caption"]["win_rate"] <= 1
    assert "mean_entailment" in doc["hallucination"]["smiles2caption"]
    lo, hi = doc["confidence_intervals"]["smiles2caption"]["rougeL"]
    assert lo <= doc["results"]["smiles2caption"]["rougeL"] <= hi
    run = R.run_dir(tmp / "results", "evalorg/e2e-base", None)
    for direction in ("smiles2caption", "caption2smiles"):
        samples = R.read_samples(run / doc["samples"][direction])
        assert [s["id"] for s in samples] == [r["id"] for r in _rows(N_ROWS)]
        assert all(s["raw_output"] is not None for s in samples)
        tsv_direction, rows = R.read_official_tsv(run / doc["tsv"][direction])
        assert tsv_direction == direction and [r[2] for r in rows] == [s["output"] for s in samples]
    # the eval repo's FCD statistics were used (they are shifted, so FCD differs from the true one)
    from lmolt_hub.metrics.fcd import fcd_score

    outputs = [s["output"] for s in R.read_samples(run / doc["samples"]["caption2smiles"])]
    true_fcd = fcd_score(outputs, [r["molecule"] for r in _rows(N_ROWS)], reference_stats_=hub["real_stats"])
    assert doc["results"]["caption2smiles"]["fcd"] != pytest.approx(true_fcd, rel=1e-3)

    again = evaluate_model("evalorg/e2e-base", _config(tmp, batch_size=3))
    assert again["generation"]["generated"] == {"smiles2caption": 0, "caption2smiles": 0}
    assert again["results"] == doc["results"]


def test_a_fully_cached_rescore_loads_no_weights(hub, tiny_llama_dir, monkeypatch):
    """Re-scoring from the generation cache reads no weights (nor the tokenizer, nor accelerate's
    probe): with the model's safetensors file corrupted after the first run, the cached run still
    scores, with the same results and model block; a run that must generate fails on that file."""
    from huggingface_hub import HfApi
    from safetensors.torch import load_file

    from lmolt_hub.generation.loading import resolve

    tmp, repo = hub["tmp"], "evalorg/e2e-corruptible"
    HfApi().create_repo(repo, exist_ok=True)
    HfApi().upload_folder(repo_id=repo, folder_path=str(tiny_llama_dir))
    cfg = _config(tmp, directions=["caption2smiles"], bootstrap_resamples=0, cache_dir=str(tmp / "rescore"))
    first = evaluate_model(repo, cfg)
    assert first["generation"]["generated"] == {"caption2smiles": N_ROWS}
    weights = resolve(repo).path / "model.safetensors"
    assert first["model"]["parameters"] == sum(t.numel() for t in load_file(str(weights)).values())
    assert (first["model"]["architecture"], first["model"]["dtype_used"]) == ("LlamaForCausalLM", "float32")
    data = weights.read_bytes()  # keep the header, drop the tensors: loading the weights now fails
    weights.resolve().write_bytes(data[: 8 + int.from_bytes(data[:8], "little") + 16])

    def no_probe(*args, **kwargs):
        raise AssertionError("a cached single-process re-score loaded the tokenizer or probed accelerate")

    monkeypatch.setattr("accelerate.PartialState", no_probe)
    monkeypatch.setattr("lmolt_hub.generation.engine.load_tokenizer", no_probe)  # stop strings: cached
    again = evaluate_model(repo, cfg)
    assert again["generation"]["generated"] == {"caption2smiles": 0}
    assert (again["results"], again["model"]) == (first["results"], first["model"])
    with pytest.raises(Exception):  # noqa: B017 - the corruption is real: generating needs the weights
        evaluate_model(repo, _config(tmp, directions=["caption2smiles"], bootstrap_resamples=0,
                                     cache_dir=str(tmp / "rescore-fresh")))  # fmt: skip


def test_eval_set_shards_read_without_datasets_equal_datasets(hub, monkeypatch):
    from lmolt_hub.formats import eval_set as eval_tasks

    fast = eval_tasks.load_eval_set(EVAL_REPO)
    monkeypatch.setattr(eval_tasks, "_parquet_shards", lambda *args: None)  # force `datasets`
    slow = eval_tasks.load_eval_set(EVAL_REPO)
    assert fast.rows == slow.rows and len(fast.rows) == N_ROWS and fast.sha == slow.sha
    card = "---\nconfigs:\n- config_name: default\n  default: true\n  data_files:\n"
    assert eval_tasks._card_maps_split_to_data_dir(
        card + "  - split: test\n    path: data/test-*\n---\n", "test"
    )
    assert not eval_tasks._card_maps_split_to_data_dir(
        card + "  - split: test\n    path: other/*\n---\n", "test"
    )


def test_adapter_evaluates_the_same_as_its_merged_model(hub):
    tmp = hub["tmp"]
    cfg = dict(directions=["caption2smiles"], bootstrap_resamples=0, metric_options={"fcd": False})
    adapter = evaluate_model("evalorg/e2e-adapter", _config(tmp, **cfg))
    merged = evaluate_model("evalorg/e2e-merged", _config(tmp, **cfg))
    assert adapter["model"]["is_adapter"] and adapter["model"]["base_model"] == "evalorg/e2e-base"
    assert adapter["model"]["base_sha"] and adapter["model"]["adapter_sha"] == adapter["model"]["sha"]
    outs = {}
    for name, doc in (("adapter", adapter), ("merged", merged)):
        run = R.run_dir(tmp / "results", doc["model"]["id"], None)
        outs[name] = [s["raw_output"] for s in R.read_samples(run / doc["samples"]["caption2smiles"])]
    assert outs["adapter"] == outs["merged"]
    assert adapter["results"] == merged["results"]


def test_bad_input_is_reported_clearly(hub, tmp_path, capsys):
    from lmolt_hub.evaluation.cli import add_arguments, main

    def run(*argv):
        import argparse

        p = argparse.ArgumentParser()
        add_arguments(p)
        return main(p.parse_args(list(argv)))

    assert (
        run("--model", "evalorg/no-such-model", "--eval-dataset", EVAL_REPO, "--output-dir", str(tmp_path))
        == 2
    )
    assert "neither a local directory nor a model on the Hub" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "molecule": "CCO"}) + "\n")
    assert run("--model", "evalorg/e2e-base", "--eval-dataset", str(bad)) == 2
    assert "missing column 'caption'" in capsys.readouterr().err
    assert run("--model", "evalorg/e2e-base", "--revision", "v9", "--eval-dataset", EVAL_REPO) == 2
    assert "revision 'v9' not found" in capsys.readouterr().err
    assert run("--model", "evalorg/e2e-base", "--eval-dataset", EVAL_REPO, "--eval-revision", "v0") == 2
    assert "evaluation dataset evalorg/lmolt-eval-mini: revision 'v0' not found" in capsys.readouterr().err
    assert run("--model", "evalorg/e2e-base", "--eval-dataset", "evalorg/no-eval-set") == 2
    assert "'evalorg/no-eval-set' not found on the Hub" in capsys.readouterr().err


def test_predictions_file_is_scored_with_the_leaderboard_fields(tmp_path):
    from lmolt_hub.resources import molt5_predictions

    src = molt5_predictions("large", "caption2smiles")
    lines = src.read_text(encoding="utf-8").splitlines()[:9]
    path = tmp_path / "preds.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = score_predictions_file(
        path,
        "caption2smiles",
        output_dir=tmp_path / "out",
        model_name="someone/molt5",
        bootstrap_resamples=10,
        metric_options={"fcd": False},
    )
    assert doc["kind"] == "predictions" and doc["predictions_file"]["n_rows"] == 8
    assert doc["model"]["id"] == "someone/molt5" and doc["generation"] is None
    assert 0 <= doc["results"]["caption2smiles"]["validity"] <= 1
    assert R.read_results(doc.pop("results_path")) == doc
    with pytest.raises(ValueError, match="unknown metric option"):
        score_predictions_file(path, "caption2smiles", output_dir=tmp_path / "out", metric_options={"fdc": 1})


def test_push_results_uploads_files_and_writes_model_index(hub, tiny_llama_dir):
    from huggingface_hub import HfApi, ModelCard

    api = HfApi()
    api.create_repo("lmolt-user/e2e-owned", exist_ok=True)  # the test token's user owns this one
    api.upload_folder(repo_id="lmolt-user/e2e-owned", folder_path=str(tiny_llama_dir))
    cfg = dict(
        directions=["caption2smiles"],
        bootstrap_resamples=0,
        metric_options={"fcd": False},
        push_results=True,
        results_repo="lmolt-user/lmolt-results",
    )
    owned = evaluate_model("lmolt-user/e2e-owned", _config(hub["tmp"], **cfg))
    other = evaluate_model("evalorg/e2e-base", _config(hub["tmp"], **cfg))

    assert owned["push"]["card_pr"] is False and other["push"]["card_pr"] is True
    files = set(api.list_repo_files("lmolt-user/lmolt-results", repo_type="dataset"))
    for doc in (owned, other):
        folder = doc["push"]["path_in_repo"]
        name = doc["results_path"].rsplit("/", 1)[-1]
        assert {
            f"{folder}/{name}",
            f"{folder}/samples_caption2smiles.jsonl",
            f"{folder}/predictions_caption2smiles.txt",
        } <= files
    card = ModelCard.load("lmolt-user/e2e-owned")
    (result,) = card.data.eval_results and [r for r in card.data.eval_results if r.metric_name == "validity"]
    assert result.metric_value == owned["results"]["caption2smiles"]["validity"]
    assert result.dataset_type == EVAL_REPO
    # not our repository: main is untouched, the card change waits in a pull request
    assert "README.md" not in api.list_repo_files("evalorg/e2e-base")
    prs = [d for d in api.get_repo_discussions("evalorg/e2e-base") if d.is_pull_request]
    assert prs and "evaluation results" in prs[-1].title
    assert other["push"]["card_pr_num"] == prs[-1].num  # what --push-results prints
    assert other["push"]["card_url"].endswith(f"/discussions/{prs[-1].num}")


def test_a_model_that_emits_nothing_is_reported_not_crashed(tiny_llama_dir, tmp_path, capsys):
    import shutil

    from transformers import GenerationConfig

    mute = tmp_path / "mute"
    shutil.copytree(tiny_llama_dir, mute)
    gc = GenerationConfig.from_pretrained(mute)
    gc.eos_token_id = list(range(1024))  # every token ends the answer: nothing is ever emitted
    gc.save_pretrained(mute)
    doc = evaluate_model(str(mute), local_eval_config(tmp_path))
    assert any("produced no output for any of the 3 prompts" in w for w in doc["warnings"])
    assert "produced no output" in capsys.readouterr().err
    run = R.run_dir(tmp_path / "results", str(mute), None)
    samples = R.read_samples(run / doc["samples"]["caption2smiles"])
    assert [(s["raw_output"], s["output"]) for s in samples] == [("</s>", "")] * 3


def test_seq2seq_model_uses_the_bare_source(tmp_path):
    from lmolt_hub.tiny import save_tiny_t5

    path = save_tiny_t5(tmp_path / "t5", d_model=32)
    doc = evaluate_model(str(path), local_eval_config(tmp_path))
    assert doc["prompt_format"] == "raw" and doc["template_version"] is None
    assert doc["model"]["architecture"] == "T5ForConditionalGeneration"
    run = R.run_dir(tmp_path / "results", str(path), None)
    samples = R.read_samples(run / doc["samples"]["caption2smiles"])
    assert [s["prompt"] for s in samples] == [s["source"] for s in samples]


def test_cli_scores_a_predictions_file(tmp_path, capsys):
    import argparse

    from lmolt_hub.evaluation.cli import add_arguments, main
    from lmolt_hub.resources import molt5_predictions

    def run(*argv):
        p = argparse.ArgumentParser()
        add_arguments(p)
        return main(p.parse_args(list(argv)))

    lines = molt5_predictions("base", "smiles2caption").read_text(encoding="utf-8").splitlines()[:6]
    path = tmp_path / "preds.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run("--predictions", str(path)) == 2
    assert "--predictions needs --direction" in capsys.readouterr().err
    out = tmp_path / "out"
    args = (
        "--predictions",
        str(path),
        "--direction",
        "smiles2caption",
        "--output-dir",
        str(out),
        "--no-hallucination",
        "--bootstrap-resamples",
        "5",
    )
    assert run(*args) == 0
    printed = capsys.readouterr().out
    assert "bleu4" in printed and "results:" in printed
    (results,) = out.glob("predictions__preds/*/results_*.json")
    doc = R.read_results(results)
    assert (
        doc["predictions_file"]["sha256"] == results.parent.name[:12] + doc["predictions_file"]["sha256"][12:]
    )
    assert doc["hallucination"] == {} and doc["n_samples"] == {"smiles2caption": 5}
