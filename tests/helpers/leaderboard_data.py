"""Builders of SYNTHETIC leaderboard inputs for the leaderboard, plot and browser tests.

Everything here is test data: random-but-seeded metric values, intervals and
per-sample hallucination values around the paper's numbers. It exercises the
build, aggregate, ranking, plots and page; it is never presented as a result.
The Hub end-to-end test (test_leaderboard_hub.py) scores real predictions instead.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

from lmolt_hub.formats.results import SCHEMA_VERSION, samples_filename
from lmolt_hub.leaderboard.records import higher_is_better, paper_table_metrics
from lmolt_hub.prompts import TEMPLATE_VERSION

EVAL_ID = "test-org/lmolt-eval-3k"
SYNTHETIC_BASELINE = "test-org/lmolt-sft"  # the aggregate's verified baseline in these roots
N_SAMPLES = 40


def _metric_keys() -> dict[str, list[str]]:
    return paper_table_metrics()


def synthetic_results(
    model_id: str, sha: str, quality: float, seed: int, metrics_version: str = "test"
) -> dict:
    """A schema-valid results document; ``quality`` in [0, 1] moves every metric towards its best."""
    rng = random.Random(seed)
    hib = higher_is_better()
    results: dict[str, dict[str, float]] = {}
    cis: dict[str, dict[str, list[float]]] = {}
    for direction, keys in _metric_keys().items():
        results[direction], cis[direction] = {}, {}
        for key in keys:
            good = quality + rng.uniform(-0.02, 0.02)
            value = (
                good if hib[key] else 50.0 * (1.05 - good)
            )  # lower-is-better metrics live on a wider scale
            half = 0.02 * (1 if hib[key] else 50)
            results[direction][key] = round(value, 6)
            cis[direction][key] = [round(value - half, 6), round(value + half, 6)]
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "model",
        "created_at": "2026-01-01T00:00:00+00:00",
        "model": {
            "id": model_id,
            "revision": "main",
            "sha": sha,
            "adapter_sha": None,
            "base_model": None,
            "base_sha": None,
            "dtype": "float32",
        },
        "eval_dataset": {"id": EVAL_ID, "revision": "0" * 40, "n_samples": N_SAMPLES},
        "template_version": TEMPLATE_VERSION,
        "generation": {"backend": "hf", "params": {"do_sample": False}},
        "metrics_version": metrics_version,
        "directions": sorted(results),
        "results": results,
        "confidence_intervals": cis,
        "hallucination": {d: {"win_rate": round(quality * 0.8, 4)} for d in results},
        "n_samples": {d: N_SAMPLES for d in results},
        "versions": {},
        "git_sha": None,
        "wall_time_s": 1.0,
        "samples": {d: samples_filename(d) for d in results},
    }


def synthetic_samples(direction: str, quality: float, seed: int) -> list[dict[str, Any]]:
    """Per-sample rows with hallucination values (dLen, chrF or NLI entailment, win) — test data."""
    rng = random.Random(seed)
    rows = []
    for i in range(N_SAMPLES):
        dlen = round(rng.gauss(0, 20 * (1.1 - quality)))
        metrics: dict[str, Any] = {"dlen": dlen}
        if direction == "caption2smiles":
            metrics["chrf"] = min(1.0, max(0.0, rng.gauss(quality, 0.15)))
            metrics["win"] = metrics["chrf"] > 0.3 and abs(dlen) < 5
        else:
            metrics["entailment"] = min(1.0, max(0.0, rng.gauss(quality, 0.2)))
            metrics["win"] = metrics["entailment"] > 0.5
        rows.append(
            {
                "id": str(i),
                "direction": direction,
                "source": f"source {i}",
                "reference": f"reference {i}",
                "raw_output": f"output {i}",
                "output": f"output {i}",
                "metrics": metrics,
            }
        )
    return rows


def write_verification(folder: Path, pr: int, reviewed_at: str | None = None) -> Path:
    """The reviewer's record binding ``folder/results.json`` by its sha256 (as ``review`` writes it)."""
    digest = hashlib.sha256((folder / "results.json").read_bytes()).hexdigest()
    verification = {"results_sha256": digest, "pr": pr, "checks": ["synthetic"],
                    "reviewed_at": reviewed_at or f"2026-01-01T00:00:{pr:02d}+00:00"}  # fmt: skip
    path = folder / "verification.json"
    path.write_text(json.dumps(verification, indent=1, sort_keys=True))
    return path


def write_submission(
    root: Path,
    model_id: str,
    sha: str,
    quality: float,
    seed: int,
    pr: int | None = None,
    folder_ns: str | None = None,
) -> Path:
    """An accepted-submission folder under ``root/submissions/<ns>/<id>/`` (results + samples +
    verification, accepted as PR ``pr``; ``pr=None``: unverified, as a direct write to main)."""
    ns, name = model_id.split("/", 1)
    folder = root / "submissions" / (folder_ns or ns) / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}-{sha[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    results = synthetic_results(model_id, sha, quality, seed)
    (folder / "results.json").write_text(json.dumps(results, indent=1))
    if pr is not None:
        write_verification(folder, pr)
    for direction, filename in results["samples"].items():
        rows = synthetic_samples(direction, quality, seed + direction.startswith("s"))
        (folder / filename).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


# Names chosen to exercise escaping: the page must show them as text and never run them.
INJECTED_NAME = 'evil/<script>window.__lmolt_pwned=1</script><img src=x onerror="window.__lmolt_pwned=2">'


def synthetic_leaderboard_root(root: Path) -> Path:
    """Four accepted synthetic submissions, one with an injected HTML/JS name."""
    write_submission(root, "test-org/lmolt-sft", "a" * 40, 0.40, 1, pr=1)
    write_submission(root, "test-org/lmolt-cpo", "b" * 40, 0.60, 2, pr=2)
    write_submission(root, "test-org/lmolt-slerp-cpo", "c" * 40, 0.62, 3, pr=3)
    write_submission(root, INJECTED_NAME, "d" * 40, 0.30, 4, pr=4)
    return root
