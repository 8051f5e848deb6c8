"""``--predictions FILE``: score an existing predictions file, no model needed.

The file is an official MolT5 / L+M-24 TSV (``SMILES|description, ground
truth, output``) or JSONL, read by ``lmolt_hub.formats.predictions.read_predictions``.
The results document has ``kind: "predictions"``, the file's sha256 and row
count, and the same metric blocks as a model run, so the leaderboard treats
both alike.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from lmolt_hub.formats import results as R
from lmolt_hub.formats.direction import Direction
from lmolt_hub.metrics.scoring import metrics_version, score_direction
from lmolt_hub.prompts import check_direction
from lmolt_hub.provenance import file_sha256


def score_predictions_file(
    path: str | Path,
    direction: str,
    *,
    output_dir: str | Path = "results",
    model_name: str | None = None,
    revision: str | None = None,
    nli_model: str | None = None,
    metric_options: dict[str, Any] | None = None,
    hallucination: bool = True,
    bootstrap_resamples: int | None = None,
    seed: int = 0,
    push_results: bool = False,
    results_repo: str | None = None,
    eval_dataset: str | None = None,
    eval_revision: str | None = None,
    metric_modules: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Score ``path`` for ``direction`` and write ``results_<ts>.json`` + samples + TSV; return the document.

    Written under ``<output_dir>/<model_name as org__name>/<revision or file sha[:12]>/`` (model
    name defaults to ``predictions__<file stem>``). Scoring options (NLI model, conventions,
    bootstrap) are those of ``eval_dataset`` (default: ``<org>/lmolt-eval-3k`` if it can be read,
    else the paper's); ``nli_model``, ``metric_options`` and ``bootstrap_resamples`` override them.
    Without the NLI model, the M->L NLI metrics are "not computed" and the rest is scored.
    The metric modules are the eval set's pinned ones; ``metric_modules`` (name -> local path or
    ``org/name[@revision]``) overrides them.
    """
    from lmolt_hub.formats.predictions import read_predictions
    from lmolt_hub.metrics.scoring import predictions_metric_config, resolve_nli
    from lmolt_hub.provenance import command_line, git_sha, library_versions

    started = time.monotonic()
    direction = check_direction(direction)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} does not exist")
    preds = read_predictions(path, direction)
    sources, refs, outputs = preds.sources, preds.references, preds.predictions
    ids = preds.ids or [str(i) for i in range(len(refs))]
    digest = preds.sha256 or file_sha256(path)
    mcfg = predictions_metric_config(eval_dataset, eval_revision)
    bootstrap_resamples = mcfg.bootstrap_resamples if bootstrap_resamples is None else bootstrap_resamples
    options = {**mcfg.score_options(direction), **(metric_options or {})}
    modules = mcfg.run_modules(metric_modules)
    nli = None
    if hallucination and direction == Direction.SMILES2CAPTION:
        nli = resolve_nli(nli_model or mcfg.nli_model, None if nli_model else mcfg.nli_revision)
        if nli.error:
            print(f"warning: {nli.hint()}", file=sys.stderr)
    scores = score_direction(
        direction,
        outputs,
        refs,
        options=options,
        hallucination=hallucination,
        bootstrap_resamples=bootstrap_resamples,
        seed=seed,
        nli=nli,
        modules=modules,
    )
    name = model_name or f"predictions__{R._safe(path.stem)}"
    out_dir = R.run_dir(output_dir, name, revision or digest[:12])
    doc: dict[str, Any] = {
        "schema_version": R.SCHEMA_VERSION,
        "kind": "predictions",
        "created_at": R.utc_now_iso(),
        "model": {
            "id": model_name,
            "revision": revision,
            "sha": None,
            "adapter_sha": None,
            "base_model": None,
            "base_sha": None,
            "dtype": None,
        },
        "eval_dataset": {"id": None, "revision": None, "n_samples": len(refs)},
        "predictions_file": {"path": path.name, "sha256": digest, "n_rows": len(refs)},
        "template_version": None,
        "prompt_format": None,
        "generation": None,
        "metrics_version": metrics_version(),
        "metric_modules": modules.recorded([direction], hallucination),
        "metric_options": {"hallucination": hallucination, "by_direction": {direction: scores.options}},
        **R.not_computed_block({direction: scores.not_computed}),
        "directions": [direction],
        "results": {direction: scores.corpus},
        "confidence_intervals": {direction: scores.confidence_intervals},
        "bootstrap": {"n_resamples": bootstrap_resamples, "seed": seed, "confidence": 0.95},
        "hallucination": {direction: scores.hallucination} if scores.hallucination else {},
        "n_samples": {direction: len(refs)},
        "versions": library_versions(),
        "git_sha": git_sha(),
        "command": command_line(),
        "wall_time_s": 0.0,
        "samples": {direction: R.samples_filename(direction)},
        "tsv": {direction: R.tsv_filename(direction)},
    }
    rows = [
        {
            "id": i,
            "direction": direction,
            "source": s,
            "reference": r,
            "prompt": None,
            "raw_output": None,
            "output": o,
            "metrics": scores.per_sample[n] if n < len(scores.per_sample) else {},
        }
        for n, (i, s, r, o) in enumerate(zip(ids, sources, refs, outputs, strict=True))
    ]
    doc["wall_time_s"] = round(time.monotonic() - started, 3)
    R.validate_results(R.to_jsonable(doc))
    R.write_samples(rows, out_dir / R.samples_filename(direction))
    R.write_official_tsv(direction, sources, refs, outputs, out_dir / R.tsv_filename(direction))
    results_path = R.write_results(doc, out_dir)
    written = R.read_results(results_path)
    if push_results:
        from lmolt_hub.evaluation.publish import push_results as push

        written["push"] = push(results_path, repo=results_repo, update_card=False)
    written["results_path"] = str(results_path)
    return written
