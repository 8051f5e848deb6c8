"""Benchmark: wall time and peak memory of SLERP and TIES merges (mergekit, lazy loading on).

    python bench/merge.py [--sizes tiny mid] [--eager] [--keep DIR]

Builds random Llamas that share the tiny tokenizer: "tiny" (the test model, ~0.2M parameters)
and "mid" (~105M parameters, float32), three per size (a common base for TIES and two parents).
Each merge runs through ``lmolt_hub.merging.merge_from_config`` (pre-checks, mergekit
``run_merge``, NaN/inf check; the generation check is off) in its own subprocess, so the peak
RSS printed is that merge's alone. ``--eager`` adds the same merges with lazy loading off.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {  # name -> build_tiny_llama kwargs
    "tiny": {"hidden_size": 64, "num_layers": 2},
    "mid": {"hidden_size": 1024, "num_layers": 10},
}

CHILD = r"""
import json, sys, time
from lmolt_hub.merging import merge_from_config

def hwm_kb():  # VmHWM is per address space: unlike ru_maxrss it does not inherit the parent's peak
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

import mergekit.merge, torch, transformers  # noqa: E401,F401  baseline: the libraries, no model yet
rss0 = hwm_kb()
t0 = time.perf_counter()
meta = merge_from_config(sys.argv[1], sys.argv[2], check_generation=False, lazy=sys.argv[3] == "lazy")
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_kb": hwm_kb(),
                  "rss_after_imports_kb": rss0, "merge_seconds": meta["merge_seconds"]}))
"""


def build_models(root: Path, size: str) -> tuple[dict[str, Path], int]:
    from lmolt_hub.tiny import build_tiny_llama, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    paths, n_params = {}, 0
    for name, seed in (("base", 0), ("a", 1), ("b", 2)):
        path = root / f"{size}-{name}"
        model = build_tiny_llama(tok, seed=seed, **SIZES[size])
        n_params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(path)
        tok.save_pretrained(path)
        paths[name] = path
        del model
    return paths, n_params


def recipes(models: dict[str, Path]) -> dict[str, dict]:
    a, b, base = (str(models[k]) for k in ("a", "b", "base"))
    return {
        "slerp": {
            "merge_method": "slerp",
            "base_model": a,
            "models": [{"model": a}, {"model": b}],
            "parameters": {"t": 0.05},
            "dtype": "float32",
        },
        "ties": {
            "merge_method": "ties",
            "base_model": base,
            "dtype": "float32",
            "parameters": {"normalize": True},
            "models": [
                {"model": a, "parameters": {"weight": 0.95, "density": 0.5}},
                {"model": b, "parameters": {"weight": 0.05, "density": 0.5}},
            ],
        },
    }


def run_one(recipe: dict, work: Path, tag: str, lazy: bool) -> dict:
    import yaml

    cfg = work / f"{tag}.yaml"
    cfg.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    out = work / f"out-{tag}"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(cfg), str(out), "lazy" if lazy else "eager"],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"merge {tag} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - start
    res["output_mb"] = sum(p.stat().st_size for p in out.glob("*.safetensors")) / 2**20
    return res


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--eager", action="store_true", help="also run with mergekit's lazy loading off")
    parser.add_argument("--keep", default=None, help="work directory to keep (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="lmolt-bench-merge-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        models, n_params = build_models(work, size)
        input_mb = sum(p.stat().st_size for p in models["a"].glob("*.safetensors")) / 2**20
        for method, recipe in recipes(models).items():
            for lazy in (True, False) if args.eager else (True,):
                r = run_one(recipe, work, f"{size}-{method}-{'lazy' if lazy else 'eager'}", lazy)
                rows.append(
                    {
                        "size": size,
                        "params_m": n_params / 1e6,
                        "input_mb": input_mb,
                        "method": method,
                        "lazy": lazy,
                        **r,
                    }
                )
    head = (
        f"{'size':5} {'params':>8} {'file MB':>8} {'method':6} {'lazy':5} {'merge s':>8} {'call s':>7} "
        f"{'proc s':>7} {'peak RSS MB':>11} {'RSS after imports MB':>20}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['size']:5} {r['params_m']:7.1f}M {r['input_mb']:8.1f} {r['method']:6} {str(r['lazy']):5} "
            f"{r['merge_seconds']:8.2f} {r['seconds']:7.2f} {r['process_seconds']:7.2f} "
            f"{r['peak_rss_kb'] / 1024:11.0f} {r['rss_after_imports_kb'] / 1024:20.0f}"
        )
    print(
        "merge s: mergekit run_merge + NaN/inf check; call s: merge_from_config incl. pre-checks; "
        "proc s: whole subprocess incl. imports"
    )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
