"""Generation: post-processing, batched == one-at-a-time, the on-disk cache and resuming."""

from __future__ import annotations

import json

import pytest

from lmolt_hub.generation.backends import GenerationParams, HFBackend, choose_backend
from lmolt_hub.generation.cache import GenerationCache, prompt_hash
from lmolt_hub.generation.engine import generate_all
from lmolt_hub.generation.postprocess import postprocess
from lmolt_hub.prompts import build_prompt

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  CCO </s> junk", "CCO"),
        ("CCO<pad><pad>", "CCO"),
        ("The molecule is X.\n\nInstruction: You are", "The molecule is X."),
        ("CCO\n\nInput: Caption: more", "CCO"),
        ("CCO\nBelow is an instruction that", "CCO"),
        ("\n\n", ""),
        ("</s>", ""),
    ],
)
def test_postprocess_stops_at_eos_and_section_markers(raw, expected):
    assert postprocess(raw, "", ("</s>", "<pad>")) == expected


def test_postprocess_strips_an_echoed_prompt():
    prompt = build_prompt("caption2smiles", "The molecule is ethanol.")
    assert postprocess(prompt + "CCO</s>", prompt) == "CCO"
    assert postprocess("CCO", prompt) == "CCO"


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from lmolt_hub.generation.loading import load_model

    return load_model(str(tiny_llama_dir))


def _prompts(n: int) -> list[str]:
    from lmolt_hub.formats.eval_set import load_eval_set
    from lmolt_hub.prompts import build_tasks
    from lmolt_hub.resources import chebi20_split

    tasks = build_tasks(load_eval_set(str(chebi20_split("validation")), limit=n))
    return [p for t in tasks for p in t.prompts]


def test_batched_generation_equals_one_prompt_at_a_time(tiny):
    prompts = _prompts(6)  # 12 prompts of very different lengths
    params = GenerationParams(max_new_tokens=12)
    batched = HFBackend(tiny.model, tiny.tokenizer, batch_size=5).generate(prompts, params)
    single = HFBackend(tiny.model, tiny.tokenizer, batch_size=1)
    assert batched == [single.generate([p], params)[0] for p in prompts]
    assert all(b for b in batched)


class _Counting:
    """Wraps a backend, counting prompts, optionally dying after some batches (a killed run)."""

    name = "hf"

    def __init__(self, inner, die_after: int | None = None):
        self.inner, self.die_after, self.seen, self.batches = inner, die_after, 0, 0

    def stop_strings(self):
        return self.inner.stop_strings()

    def generate(self, prompts, params, on_batch=None):
        def hook(idx, raws):
            self.seen += len(idx)
            on_batch(idx, raws)
            self.batches += 1
            if self.die_after is not None and self.batches >= self.die_after:
                raise KeyboardInterrupt("killed")

        return self.inner.generate(prompts, params, on_batch=hook)


def test_cache_resumes_a_killed_run_and_a_rerun_generates_nothing(tiny, tmp_path):
    prompts = _prompts(5)
    params = GenerationParams(max_new_tokens=8)
    fields = {"model": "x", "generation": params.to_dict()}
    backend = HFBackend(tiny.model, tiny.tokenizer, batch_size=4)

    killed = _Counting(backend, die_after=2)
    with GenerationCache(tmp_path, fields) as cache, pytest.raises(KeyboardInterrupt):
        generate_all(killed, prompts, params, cache=cache, show_progress=False)
    assert killed.seen == 8
    with GenerationCache(tmp_path, fields) as cache:
        assert len(cache.load()) == 8  # both finished batches survived the crash

    resumed = _Counting(backend)
    with GenerationCache(tmp_path, fields) as cache:
        raws, n_new = generate_all(resumed, prompts, params, cache=cache, show_progress=False)
    assert (resumed.seen, n_new) == (2, 2)
    assert raws == backend.generate(prompts, params)

    again = _Counting(backend)
    with GenerationCache(tmp_path, fields) as cache:
        assert generate_all(again, prompts, params, cache=cache, show_progress=False) == (raws, 0)
    assert again.seen == 0

    other = GenerationCache(tmp_path, {**fields, "generation": {**params.to_dict(), "max_new_tokens": 9}})
    assert other.key != GenerationCache(tmp_path, fields).key and other.get(prompts) == {}


def test_cache_skips_a_torn_last_line(tmp_path):
    cache = GenerationCache(tmp_path, {"k": 1})
    cache.append([("p1", "out1")])
    cache.close()
    files = list(cache.dir.glob("gen-*.jsonl"))
    with open(files[0], "a") as f:
        f.write('{"h": "' + prompt_hash("p2") + '", "raw": "trunc')  # killed mid-write
    assert GenerationCache(tmp_path, {"k": 1}).get(["p1", "p2"]) == {"p1": "out1"}
    assert json.loads((cache.dir / "key.json").read_text()) == {"k": 1}


def test_params_and_backend_choice_are_checked():
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationParams(max_new_tokens=0)
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend("tgi")
    assert choose_backend("hf") == "hf"


def test_vllm_backend_matches_hf(tiny, tiny_llama_dir):
    from lmolt_hub.generation.backends import VLLMBackend, vllm_available, vllm_engine_args

    if not vllm_available():
        pytest.skip("needs a GPU and vllm")
    assert choose_backend("auto") == "vllm"
    prompts = _prompts(4)
    params = GenerationParams(max_new_tokens=8)
    args = vllm_engine_args(tiny_llama_dir, max_prompt_tokens=512, max_new_tokens=8, dtype="float32")
    vllm_out = VLLMBackend(args, tiny.tokenizer).generate(prompts, params)
    hf_out = HFBackend(tiny.model, tiny.tokenizer, batch_size=4).generate(prompts, params)
    stops = tiny.tokenizer.eos_token, tiny.tokenizer.pad_token
    assert [postprocess(o, p, stops) for o, p in zip(vllm_out, prompts, strict=True)] == [
        postprocess(o, p, stops) for o, p in zip(hf_out, prompts, strict=True)
    ]


@pytest.mark.slow
def test_two_processes_shard_generation_and_match_one(tiny_llama_dir, tmp_path):
    """``torchrun``/``accelerate launch`` with 2 processes: same outputs, one shared cache key."""
    import os
    import shutil
    import subprocess
    import sys

    from lmolt_hub.formats import results as R
    from lmolt_hub.resources import chebi20_split

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("needs torchrun (torch)")
    common = [
        "eval_harness/run.py",
        "--model",
        str(tiny_llama_dir),
        "--eval-dataset",
        str(chebi20_split("validation")),
        "--limit",
        "5",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "2",
        "--bootstrap-resamples",
        "0",
        "--no-hallucination",
        "--metric-option",
        "fcd=false",
        "--quiet",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run(
        [torchrun, "--nproc_per_node", "2", *common, "--output-dir", str(tmp_path / "two")],
        check=True,
        cwd=root,
        env=env,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, *common, "--output-dir", str(tmp_path / "one")],
        check=True,
        cwd=root,
        env=env,
        capture_output=True,
    )
    docs = {}
    for name in ("two", "one"):
        (path,) = R.run_dir(tmp_path / name, str(tiny_llama_dir), None).glob("results_*.json")
        docs[name] = R.read_results(path)
    assert docs["two"]["generation"]["num_processes"] == 2
    assert docs["two"]["generation"]["generated"] == {"smiles2caption": 5, "caption2smiles": 5}
    assert docs["one"]["generation"]["generated"] == {"smiles2caption": 0, "caption2smiles": 0}
    assert docs["one"]["results"] == docs["two"]["results"]
    (key_dir,) = [p for p in (tmp_path / "cache").glob("*/*") if p.is_dir()]
    assert len(list(key_dir.glob("gen-*.jsonl"))) == 2  # one file per writer, nothing interleaved
