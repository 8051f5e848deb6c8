"""Hooks that let the reviewer run the evaluation harness (``lmolt_hub.evaluation``).

* :func:`regenerator`: the spot check. Regenerates chosen pairs of a submission
  with the harness, with the submission's model revision, dtype, prompt format
  and generation parameters, and returns the cleaned outputs to compare.
* :func:`evaluator`: serves an evaluation request by running the full harness.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

from lmolt_hub.leaderboard.validate import Regenerate


def _source_reference_to_row(direction: str, row: dict[str, Any]) -> dict[str, str]:
    molecule, caption = (row["source"], row["reference"])
    if direction == "caption2smiles":
        molecule, caption = caption, molecule
    return {"id": str(row["id"]), "molecule": molecule, "caption": caption}


def _generation_params(params: dict[str, Any]):
    from lmolt_hub.evaluation.generation import GenerationParams

    known = {f.name for f in dataclasses.fields(GenerationParams)}
    return GenerationParams(**{k: v for k, v in params.items() if k in known})


def _nli_model(results: dict[str, Any]) -> str | None:
    """The NLI model the submission was scored with (the harness needs one for its hallucination block)."""
    from lmolt_hub.leaderboard.validate import _score_options

    return _score_options(results, "smiles2caption")[0].get("nli_model")


def regenerator(device: str | None = "cpu") -> Regenerate:
    def regenerate(results: dict[str, Any], direction: str, rows: list[dict[str, Any]]) -> list[str]:
        from lmolt_hub.evaluation.loading import LoadOptions
        from lmolt_hub.evaluation.runner import EvalConfig, evaluate_model
        from lmolt_hub.results import read_samples

        model = results["model"]
        with tempfile.TemporaryDirectory(prefix="lmolt-spot-check-") as tmp:
            subset = Path(tmp) / "subset.jsonl"
            subset.write_text(
                "".join(json.dumps(_source_reference_to_row(direction, r)) + "\n" for r in rows)
            )
            cfg = EvalConfig(
                revision=model.get("sha") or model.get("revision"),
                eval_dataset=str(subset),
                directions=[direction],
                prompt_format=results.get("prompt_format") or "auto",
                generation=_generation_params((results.get("generation") or {}).get("params") or {}),
                load=LoadOptions(
                    dtype=model.get("dtype") or "auto",
                    load_in_4bit=bool(model.get("load_in_4bit")),
                    device=device,
                ),
                use_cache=False,
                output_dir=str(Path(tmp) / "out"),
                metric_options={"fcd": False},  # only the outputs matter here
                nli_model=_nli_model(results),
                bootstrap_resamples=0,
                show_progress=False,
            )
            doc = evaluate_model(model["id"], cfg)
            samples = read_samples(Path(doc["results_path"]).parent / doc["samples"][direction])
        by_id = {str(r["id"]): r["output"] for r in samples}
        return [by_id[str(r["id"])] for r in rows]

    return regenerate


def evaluator(
    org: str | None = None, device: str | None = "cpu", output_dir: str | Path | None = None, **options: Any
):
    """(model_id, revision) -> folder with the harness's results file and samples."""

    def evaluate(model_id: str, revision: str) -> Path:
        from lmolt_hub.evaluation.loading import LoadOptions
        from lmolt_hub.evaluation.runner import EvalConfig, evaluate_model
        from lmolt_hub.evaluation.tasks import default_eval_dataset

        eval_dataset = f"{org}/lmolt-eval-3k" if org else default_eval_dataset()
        out = Path(output_dir or tempfile.mkdtemp(prefix="lmolt-request-"))
        cfg = EvalConfig(
            revision=revision,
            eval_dataset=eval_dataset,
            load=LoadOptions(device=device),
            output_dir=str(out),
            **options,
        )
        doc = evaluate_model(model_id, cfg)
        return Path(doc["results_path"]).parent

    return evaluate
