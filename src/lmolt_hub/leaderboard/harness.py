"""Hooks that let the reviewer run the evaluation harness (``lmolt_hub.evaluation``).

* :func:`regenerator`: the spot check. Regenerates chosen pairs of a submission
  with the harness, with the submitted model at the sha the reviewer validated,
  its dtype, prompt format and greedy generation parameters (bounded), and
  returns the cleaned outputs to compare.
* :func:`evaluator`: serves an evaluation request by running the full harness
  with the eval set's pinned metric configuration.
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


def regenerator(device: str | None = "cpu") -> Regenerate:
    """The spot check's generation: the submitted model at its validated sha (``results.model.sha``,
    set by the reviewer), greedy, within the reviewer's bounds (``validate.spot_check_settings``),
    never with remote code or pickle weights, and with no scoring (no NLI model, no FCD)."""

    def regenerate(results: dict[str, Any], direction: str, rows: list[dict[str, Any]]) -> list[str]:
        from lmolt_hub.evaluation.loading import LoadOptions
        from lmolt_hub.evaluation.runner import EvalConfig, evaluate_model
        from lmolt_hub.leaderboard.validate import spot_check_settings
        from lmolt_hub.results import read_samples

        model = results["model"]
        settings = spot_check_settings(results)
        with tempfile.TemporaryDirectory(prefix="lmolt-spot-check-") as tmp:
            subset = Path(tmp) / "subset.jsonl"
            subset.write_text(
                "".join(json.dumps(_source_reference_to_row(direction, r)) + "\n" for r in rows)
            )
            cfg = EvalConfig(
                revision=model.get("sha") or model.get("revision"),
                eval_dataset=str(subset),
                directions=[direction],
                prompt_format=settings["prompt_format"],
                generation=_generation_params(settings["params"]),
                load=LoadOptions(
                    dtype=settings["dtype"],
                    load_in_4bit=settings["load_in_4bit"],
                    device=device,
                    trust_remote_code=False,
                    allow_pickle=False,
                ),
                use_cache=False,
                output_dir=str(Path(tmp) / "out"),
                metric_options={"fcd": False},  # only the outputs matter here
                hallucination=False,
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
    """(model_id, revision) -> folder with the harness's results file and samples.

    Scores with the eval set's pinned configuration (its NLI model and revision, conventions and
    bootstrap: the harness reads them from the eval set), so the results pass the reviewer's re-score.
    """

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
