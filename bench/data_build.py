"""Data-building figures on this machine: validation throughput, default builds, negatives generation.

    python bench/data_build.py [--skip-eval]

Prints: RDKit validation rate (pairs/s) and the extrapolated time for L+M-24's ~160k pairs; wall
time of the default triples and eval builds (the eval one includes FCD reference statistics);
tiny-model rejected-output generation rate (rows/s), uncached and from the cache.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from lmolt_hub.data import build_from_config
from lmolt_hub.data.chem import inchikey
from lmolt_hub.data.cleaning import clean_pairs
from lmolt_hub.data.config import GenerationConfig, RejectedConfig, SourceConfig
from lmolt_hub.data.negatives import ModelRejecter
from lmolt_hub.data.sources import load_pairs

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "data" / "default"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-eval", action="store_true", help="skip the full default eval build (FCD stats)"
    )
    args = parser.parse_args()
    # cold caches: FCD statistics and negatives are otherwise reused from $LMOLT_CACHE
    os.environ["LMOLT_CACHE"] = tempfile.mkdtemp(prefix="lmolt-bench-")
    pairs = [
        p
        for split in ("test", "validation")
        for p in load_pairs(SourceConfig(type="chebi20", split=split))[0]
    ]
    inchikey.cache_clear()
    t = time.perf_counter()
    clean_pairs(pairs)
    rate = len(pairs) / (time.perf_counter() - t)
    print(
        f"validation (RDKit parse + InChIKey + dedup): {rate:,.0f} pairs/s; L+M-24 160k pairs ~ {160_000 / rate:.0f} s"
    )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        out = build_from_config(RECIPES / "triples.yaml", output_dir=tmp / "triples", quiet=True)
        rows = {
            s: sum(d["rows"] for d in v["directions"].values()) for s, v in out["summary"]["splits"].items()
        }
        print(f"default triples build: {time.perf_counter() - t:.1f} s ({rows})")
        if not args.skip_eval:
            t = time.perf_counter()
            out = build_from_config(RECIPES / "eval.yaml", output_dir=tmp / "eval", quiet=True)
            n = out["summary"]["splits"]["test"]["selected"]
            print(f"default eval build incl. FCD stats: {time.perf_counter() - t:.1f} s ({n} pairs)")

        from lmolt_hub.tiny import save_tiny_llama

        model = save_tiny_llama(tmp / "tiny")
        sources = [p.molecule for p in pairs[:64]]
        gen = GenerationConfig(batch_size=16, max_new_tokens=32, cache_dir=str(tmp / "cache"))
        for label in ("generated", "from cache"):
            rej = ModelRejecter("smiles2caption", RejectedConfig(model=str(model)), gen, tmp)
            t = time.perf_counter()
            rej.outputs(sources)
            dt = time.perf_counter() - t
            print(
                f"tiny causal negatives, {label}: {len(sources) / dt:,.0f} rows/s (batch 16, 32 new tokens)"
            )


if __name__ == "__main__":
    main()
