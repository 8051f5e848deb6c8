"""The results schema and its writers."""

from __future__ import annotations

import copy
import json

import pytest

from lmolt_hub.formats import results as R


def _doc() -> dict:
    return {
        "schema_version": R.SCHEMA_VERSION,
        "kind": "model",
        "created_at": R.utc_now_iso(),
        "model": {
            "id": "org/lmolt-cpo",
            "revision": "main",
            "sha": "a" * 40,
            "adapter_sha": "a" * 40,
            "base_model": "org/base",
            "base_sha": "b" * 40,
            "dtype": "bfloat16",
        },
        "eval_dataset": {"id": "org/lmolt-eval-3k", "revision": "main", "n_samples": 3},
        "template_version": "v1",
        "generation": {"backend": "hf", "params": {"max_new_tokens": 8, "do_sample": False}},
        "metrics_version": "1",
        "directions": ["smiles2caption"],
        "results": {"smiles2caption": {"bleu2": 0.5, "meteor": float("nan")}},
        "confidence_intervals": {"smiles2caption": {"bleu2": [0.4, 0.6]}},
        "hallucination": {"smiles2caption": {"win_rate": 0.25}},
        "n_samples": {"smiles2caption": 3},
        "versions": {"torch": "2.13.0", "vllm": None},
        "git_sha": None,
        "wall_time_s": 1.5,
        "samples": {"smiles2caption": "samples_smiles2caption.jsonl"},
    }


def test_write_read_roundtrip_turns_nan_into_null(tmp_path):
    path = R.write_results(_doc(), tmp_path, ts="2026-01-01T00-00-00.000000")
    assert path.name == "results_2026-01-01T00-00-00.000000.json"
    back = R.read_results(path)
    assert back["results"]["smiles2caption"] == {"bleu2": 0.5, "meteor": None}
    json.loads(path.read_text())  # strict JSON (no NaN literal)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("model"), "'model' is a required property"),
        (lambda d: d["results"].update({"sideways": {}}), "sideways"),
        (lambda d: d["confidence_intervals"]["smiles2caption"].update({"x": [1.0]}), "confidence_intervals"),
        (lambda d: d["hallucination"]["smiles2caption"].pop("win_rate"), "win_rate"),
        (lambda d: d.update({"kind": "guess"}), "kind"),
    ],
)
def test_invalid_documents_are_refused_with_the_path(tmp_path, mutate, needle):
    doc = copy.deepcopy(_doc())
    mutate(doc)
    with pytest.raises(R.ResultsValidationError, match=needle):
        R.write_results(doc, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_official_tsv_roundtrip_sanitises_tabs_and_newlines(tmp_path):
    path = R.write_official_tsv(
        "caption2smiles", ["a\tcaption", "b"], ["CCO", "C"], ["CC\nO", ""], tmp_path / "p.txt"
    )
    assert path.read_text().splitlines()[0] == "description\tground truth\toutput"
    direction, rows = R.read_official_tsv(path)
    assert direction == "caption2smiles"
    assert rows == [("a caption", "CCO", "CC O"), ("b", "C", "")]
    with pytest.raises(ValueError, match="row-count mismatch"):
        R.write_official_tsv("caption2smiles", ["a"], [], [], tmp_path / "q.txt")


def test_samples_roundtrip_and_validation(tmp_path):
    row = {
        "id": "1",
        "direction": "caption2smiles",
        "source": "s",
        "reference": "CCO",
        "raw_output": "CCO\n",
        "output": "CCO",
        "metrics": {"levenshtein": 0, "fts": float("inf")},
    }
    path = R.write_samples([row], tmp_path / R.samples_filename("caption2smiles"))
    assert R.read_samples(path)[0]["metrics"] == {"levenshtein": 0, "fts": None}
    with pytest.raises(R.ResultsValidationError, match="output"):
        R.write_samples([{k: v for k, v in row.items() if k != "output"}], tmp_path / "bad.jsonl")


def test_run_dir_layout(tmp_path):
    assert R.run_dir("results", "org/lmolt-cpo", None).as_posix() == "results/org__lmolt-cpo/main"
    assert R.run_dir(tmp_path, str(tmp_path / "my model"), "abc").name == "abc"
    assert R.run_dir(tmp_path, str(tmp_path / "my model"), "abc").parent.name == "local__my-model"
