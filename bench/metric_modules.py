"""Benchmark: scoring through the metric modules (the harness's path) vs calling the metrics directly.

Both directions of the 3,300-row MolT5-large files, every Table 1/2 metric plus the caption2smiles
hallucination measures (M->L hallucination needs an NLI model; left out of every variant):

- ``direct``: ``lmolt_hub.metrics.score`` (what the harness called before the modules);
- ``modules``: ``metrics.scoring.score_direction`` with the bundled modules (module scripts loaded by
  ``metrics.modules``: ``score``/``add_to`` on the module objects), bootstrap off as in ``direct``;
- ``evaluate``: ``evaluate.load(<local path>)`` + ``compute()``, the user's path (imports evaluate,
  goes through its Arrow table), for reference.

Every measurement is a fresh process (imports count), with the per-eval-set reference caches filled
by a first untimed run, as when many models are scored on one eval set; the fastest of ``--repeat``
runs counts (shared machines). Checks that the three give identical values.
Usage: python bench/metric_modules.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

DIRECTIONS = ("smiles2caption", "caption2smiles")
MODULES = {"smiles2caption": "lmolt_caption", "caption2smiles": "lmolt_molecule"}


def _rows(direction: str):
    from lmolt_hub.metrics.io import read_predictions
    from lmolt_hub.resources import molt5_predictions

    return read_predictions(molt5_predictions("large", direction), direction)


def run(variant: str) -> dict:
    values = {}
    for direction in DIRECTIONS:
        rows = _rows(direction)
        hallucination = direction == "caption2smiles"
        if variant == "direct":
            from lmolt_hub.metrics import score

            s = score(direction, rows.predictions, rows.references, hallucination=hallucination)
            values[direction] = {**s.corpus, **(s.hallucination or {})}
        elif variant == "modules":
            from lmolt_hub.metrics.scoring import score_direction

            s = score_direction(
                direction,
                rows.predictions,
                rows.references,
                hallucination=hallucination,
                bootstrap_resamples=0,
            )
            values[direction] = {**s.corpus, **s.hallucination}
        else:
            import evaluate

            from lmolt_hub.resources import METRIC_MODULES

            module = evaluate.load(str(METRIC_MODULES / MODULES[direction]))
            values[direction] = module.compute(predictions=rows.predictions, references=rows.references)
            if hallucination:
                hal = evaluate.load(str(METRIC_MODULES / "lmolt_hallucination"))
                values[direction].update(
                    hal.compute(predictions=rows.predictions, references=rows.references, direction=direction)
                )
    return values


def _time(variant: str, cache: str, repeat: int) -> tuple[float, dict]:
    best, out = float("inf"), {}
    for _ in range(repeat):
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--_variant", variant],
            capture_output=True,
            text=True,
            env={**os.environ, "LMOLT_CACHE": cache},
        )
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
        if wall < best:
            best, out = wall, json.loads(proc.stdout.strip().splitlines()[-1])
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the fastest counts")
    parser.add_argument("--_variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._variant:
        print(json.dumps(run(args._variant)))
        return 0
    print("MolT5-large, both directions (3,300 rows each), reference caches filled; fresh processes")
    with tempfile.TemporaryDirectory() as cache:
        _time("direct", cache, 1)  # fills the per-eval-set caches (not timed)
        results = {}
        for variant in ("direct", "modules", "evaluate"):  # interleaving would not help: the minimum counts
            results[variant] = _time(variant, cache, args.repeat)
            print(f"  {variant:<9s} {results[variant][0]:6.1f} s")
    base = results["direct"][0]
    for variant in ("modules", "evaluate"):
        wall, values = results[variant]
        same = values == results["direct"][1]
        print(
            f"{variant} vs direct: {100 * (wall - base) / base:+.1f}%  values {'identical' if same else 'DIFFERENT'}"
        )
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
