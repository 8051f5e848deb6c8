"""Benchmark: scoring through the metric modules (the harness's path) vs calling the metrics directly.

Both directions of the 3,300-row MolT5-large files, every Table 1/2 metric plus the caption2smiles
hallucination measures (M->L hallucination needs an NLI model; left out of every variant):

- ``direct``: ``lmolt_hub.metrics.score`` (what the harness called before the modules);
- ``modules``: ``metrics.scoring.score_direction`` with the bundled modules (module scripts loaded by
  ``metrics.modules``: ``score``/``add_to`` on the module objects), bootstrap off as in ``direct``;
- ``evaluate``: ``evaluate.load(<local path>)`` + ``compute()``, the user's path (imports evaluate,
  goes through its Arrow table), for reference.

Every measurement is a fresh process (imports count), with the per-eval-set reference caches filled
by a first untimed run, as when many models are scored on one eval set; variants run interleaved and
the fastest of ``--repeat`` runs counts. Prints wall and CPU time (the process and its workers; on a
shared machine the CPU time is the comparable figure). Checks that the variants give identical values.
Usage: python bench/metric_modules.py [--repeat N] [--skip-evaluate]
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
    from lmolt_hub.formats.predictions import read_predictions
    from lmolt_hub.resources import molt5_predictions

    return read_predictions(molt5_predictions("large", direction), direction)


def module_load_cpu() -> float:
    """CPU seconds to import the module machinery and resolve and load the three bundled modules
    (the fixed cost of the modules path per process)."""
    import lmolt_hub.metrics  # noqa: F401 - the metrics themselves: every variant imports them

    t = time.process_time()
    from lmolt_hub.metrics.modules import run_modules  # imported inside the timed span

    modules = run_modules()
    modules.table("caption2smiles"), modules.table("smiles2caption"), modules.hallucination()
    return time.process_time() - t


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


def _time(variant: str, cache: str) -> tuple[float, float, dict]:
    """(wall s, CPU s of the process and its workers, values) of one fresh process. CPU time is
    the figure to compare on a shared machine: other jobs stretch the wall time, not the CPU time."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--_variant", variant],
        capture_output=True,
        text=True,
        env={**os.environ, "LMOLT_CACHE": cache},
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the fastest counts")
    parser.add_argument("--skip-evaluate", action="store_true", help="leave out the evaluate.load variant")
    parser.add_argument("--_variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._variant == "load":
        print(json.dumps({"load": module_load_cpu()}))
        return 0
    if args._variant:
        print(json.dumps(run(args._variant)))
        return 0
    print("MolT5-large, both directions (3,300 rows each), reference caches filled; fresh processes")
    variants = ["direct", "modules"] + ([] if args.skip_evaluate else ["evaluate"])
    best: dict[str, list[float]] = {v: [float("inf"), float("inf")] for v in variants}
    values: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as cache:
        _time("direct", cache)  # fills the per-eval-set caches (not timed)
        for _ in range(args.repeat):  # interleaved, so a burst of load elsewhere hits every variant
            for variant in variants:
                wall, cpu, values[variant] = _time(variant, cache)
                best[variant] = [min(best[variant][0], wall), min(best[variant][1], cpu)]
        load = _time("load", cache)[2]["load"]
    for variant in variants:
        print(f"  {variant:<9s} wall {best[variant][0]:6.1f} s   CPU {best[variant][1]:6.1f} s")
    print(f"  loading the three modules (the modules path's fixed cost): {load * 1000:.0f} ms CPU")
    ok = True
    for variant in variants[1:]:
        same = values[variant] == values["direct"]
        ok &= same
        wall, cpu = (100 * (best[variant][i] - best["direct"][i]) / best["direct"][i] for i in (0, 1))
        print(
            f"{variant} vs direct: wall {wall:+.1f}%, CPU {cpu:+.1f}%; values {'identical' if same else 'DIFFERENT'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
