"""Review time of one tiny-model leaderboard PR on a local Hub (issue 21: before/after the spot check).

Sets up, in a temporary local Hub: a tiny random Llama (with a licence), an eval set of the first
``--pairs`` ChEBI-20 test pairs with the tiny NLI model pinned, and the leaderboard repo. The real
harness evaluates the model once; its results are opened as a PR; then ``review()`` runs as a
maintainer runs it (default policy: spot check on) and the wall time of that one review is printed.

    python bench/review.py [--pairs 100] [--max-new-tokens 16]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

ORG = "bench"


def _eval_rows(n: int) -> list[dict[str, str]]:
    from lmolt_hub.resources import chebi20_split

    with open(chebi20_split("test"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    return [{"id": r["CID"], "molecule": r["SMILES"], "caption": r["description"]} for r in rows]


def _setup(api, tmp: Path, pairs: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import lmolt_hub.leaderboard as S
    from lmolt_hub.naming import EVAL_DATASET
    from lmolt_hub.tiny import save_tiny_llama, save_tiny_nli

    model = save_tiny_llama(tmp / "model")
    (model / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n")
    api.create_repo(f"{ORG}/lmolt-sft")
    api.upload_folder(folder_path=model, repo_id=f"{ORG}/lmolt-sft")
    eval_repo = f"{ORG}/{EVAL_DATASET}"
    pq.write_table(pa.Table.from_pylist(_eval_rows(pairs)), tmp / "test.parquet")
    api.create_repo(eval_repo, repo_type="dataset")
    api.upload_file(path_or_fileobj=tmp / "test.parquet", path_in_repo="data/test-00000-of-00001.parquet",
                    repo_id=eval_repo, repo_type="dataset")  # fmt: skip
    config = {"nli_model": f"{ORG}/tiny-nli", "bootstrap_resamples": 20}
    api.upload_file(path_or_fileobj=json.dumps(config).encode(), path_in_repo="metric_config.json",
                    repo_id=eval_repo, repo_type="dataset")  # fmt: skip
    api.create_repo(f"{ORG}/tiny-nli")
    api.upload_folder(folder_path=save_tiny_nli(tmp / "nli"), repo_id=f"{ORG}/tiny-nli")
    S.create_leaderboard_repo(f"{ORG}/lmolt-leaderboard", api=api)
    return eval_repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="eval-set pairs (per direction)")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lmolt-bench-review-") as tmp_:
        tmp = Path(tmp_)
        os.environ.update(HF_HOME=str(tmp / "hf"), LMOLT_CACHE=str(tmp / "cache"), HF_HUB_DISABLE_XET="1",
                          HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false")  # fmt: skip
        from huggingface_hub import HfApi

        import lmolt_hub.leaderboard as S
        from lmolt_hub.evaluation import evaluate_model
        from lmolt_hub.generation.backends import GenerationParams
        from lmolt_hub.localhub import use_local_hub

        with use_local_hub(tmp / "hub", token="hf_bench_admin"):
            api = HfApi()
            eval_repo = _setup(api, tmp, args.pairs)
            doc = evaluate_model(f"{ORG}/lmolt-sft", eval_dataset=eval_repo, output_dir=str(tmp / "results"),
                                 generation=GenerationParams(max_new_tokens=args.max_new_tokens),
                                 show_progress=False, use_cache=False)  # fmt: skip
            S.submit_results(Path(doc["results_path"]), repo_id=f"{ORG}/lmolt-leaderboard")
            spot = _timed_regenerator()
            start = time.perf_counter()
            (outcome,) = S.review(f"{ORG}/lmolt-leaderboard", org=ORG, api=api, regenerate=spot)
            wall = time.perf_counter() - start
    said = outcome.reason.split("spot check")[-1].strip() if "spot check" in outcome.reason else "off"
    print(f"review of one tiny-model PR ({args.pairs} pairs per direction, max_new_tokens "
          f"{args.max_new_tokens}): {outcome.state} in {wall:.1f} s wall, of which the spot check "
          f"{sum(spot.seconds):.1f} s ({said})")  # fmt: skip


def _timed_regenerator():
    """The reviewer's default regenerator, timed (old main: one call per direction; now: one)."""
    import inspect

    try:
        from lmolt_hub.leaderboard.validate import regenerator
    except ImportError:  # before issue 21 (the baseline): leaderboard/harness.py
        from lmolt_hub.leaderboard.harness import regenerator

    real = regenerator(device="cpu")

    def regenerate(*args):
        start = time.perf_counter()
        try:
            return real(*args)
        finally:
            regenerate.seconds.append(time.perf_counter() - start)

    regenerate.seconds = []
    regenerate.__signature__ = inspect.signature(real)
    return regenerate


if __name__ == "__main__":
    main()
