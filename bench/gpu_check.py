"""The prepared GPU check: one command, one JSON, nothing downloaded.

Builds a random Llama in Meditron-7B's shape (hidden 4096, 32 layers, intermediate 11008, vocab
32,017), saved in F32 as the LPM24 bases are, and measures on one GPU:

1. ``dtype``: weights memory of ``--dtype auto`` (the stored F32) vs the harness default (bf16);
2. ``train_cpo`` / ``train_dpo``: QLoRA steps through lmolt-hub's own training path with the
   Meditron recipes (4-bit NF4 + double quant, r=64 all-linear, length 1024, batch 1,
   gradient checkpointing): peak memory and seconds per step (first step excluded);
   ``train_sft_authors``: steps with ``recipes/meditron-7b/sft/authors.yaml`` (4-bit, DoRA, fp16, so
   the Trainer's GradScaler unscales the adapters' gradients: they must be float32);
3. ``merge``: the two adapters just trained merged into the base (peft weighted adapter, 19:1);
4. ``generate``: the harness's hf backend on 256 prompts, batched vs one prompt at a time
   (outputs compared on the first ``--sequential`` prompts), tokens/s;
5. ``vllm``: the harness's vLLM backend with the trained r=64 adapter, when vllm is importable.

Each section runs in its own process on a GPU (clean peak-memory counters; a failure or a
timeout is recorded and the next section runs); the JSON is rewritten after every section.
``--tiny`` runs everything in-process on a tiny model on CPU (CI covers the script this way).

    bash bench/gpu_check.sh                      # GPU: installs wheels brought along, then this
    python bench/gpu_check.py --tiny --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # runs from a checkout without installing lmolt-hub

SECTIONS = ("build", "dtype", "train_cpo", "train_dpo", "train_sft_authors", "merge", "generate", "vllm")
# Seconds each section may take on an H100/H200 (caps; our estimate of the sum: ~8 min; bench/README.md).
# They sum to more than TOTAL_BUDGET_S on purpose: a section gets its cap or what is left of the
# budget, whichever is smaller, so the run always ends (and writes its JSON) before gpu_check.sh's
# `timeout 590` kills it.
GPU_TIMEOUTS = {"build": 90, "dtype": 75, "train_cpo": 80, "train_dpo": 90, "train_sft_authors": 75,
                "merge": 45, "generate": 80, "vllm": 100}  # fmt: skip
TOTAL_BUDGET_S = 570  # under the wrapper's 590 s, with time to write the JSON
MEDITRON_7B = {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 11008,
               "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32017}  # fmt: skip


def settings(tiny: bool) -> dict[str, Any]:
    if tiny:
        return {"tiny": True, "device": "cpu", "max_length": 512, "steps": 2, "n_pairs": 4, "batch_size": 8,
                "sequential": 8, "max_new_tokens": 4, "recipes": "recipes/tiny"}  # fmt: skip
    return {"tiny": False, "device": "cuda", "max_length": 1024, "steps": 3, "n_pairs": 128, "batch_size": 64,
            "sequential": 32, "max_new_tokens": 32, "recipes": "recipes/meditron-7b"}  # fmt: skip


# ---------------------------------------------------------------- measurement helpers


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _reset_peak() -> None:
    import torch

    if _cuda():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak() -> dict[str, float | None]:
    import resource

    import torch

    out: dict[str, float | None] = {
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    }
    if _cuda():
        torch.cuda.synchronize()
        out["cuda_peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        out["cuda_peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    return out


def _weight_gib(model) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30


def _free(*objs) -> None:
    import gc

    import torch

    del objs
    gc.collect()
    if _cuda():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- sections


def build(ctx: dict[str, Any]) -> dict[str, Any]:
    """A random F32 Llama in Meditron-7B's shape (tiny: lmolt's tiny Llama) + tokenizer, on disk."""
    import torch

    from lmolt_hub.tiny import build_tiny_tokenizer

    base = Path(ctx["work"]) / "base-f32"
    t0 = time.perf_counter()
    if ctx["tiny"]:  # lmolt's tiny Llama (F32), built once into the lmolt cache
        from lmolt_hub.training.models import tiny_model_path

        ctx["base"] = str(tiny_model_path("tiny://llama"))
        return {"params": 0, "tokenizer": "tiny BPE (tiny://llama)", "checkpoint_dtype": "float32",
                "seconds": time.perf_counter() - t0}  # fmt: skip
    try:  # the real Llama-2 vocabulary + Meditron's 17 tokens, when its file is present
        from lmolt_hub.llama_vocab import meditron_tokenizer

        tok, vocab = meditron_tokenizer(), "meditron (llama-2 + 17)"
    except Exception:
        tok, vocab = build_tiny_tokenizer(8000), "BPE trained on ChEBI-20 (8000)"
    tok.model_max_length = 4096
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**MEDITRON_7B, max_position_embeddings=4096, tie_word_embeddings=False,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)  # fmt: skip
    torch.manual_seed(0)
    with torch.device("cuda"):  # random init on the GPU: seconds instead of minutes
        model = LlamaForCausalLM(config).float()
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(base, max_shard_size="5GB")
    tok.save_pretrained(base)
    ctx["base"] = str(base)
    return {"params": n_params, "tokenizer": vocab, "checkpoint_dtype": "float32",
            "checkpoint_gib": sum(f.stat().st_size for f in base.glob("*.safetensors")) / 2**30,
            "seconds": time.perf_counter() - t0}  # fmt: skip


def dtype(ctx: dict[str, Any]) -> dict[str, Any]:
    """Weights memory as the harness loads the F32 checkpoint: ``auto`` vs the default vs bf16."""
    from lmolt_hub.generation.loading import LoadOptions, load_model

    out: dict[str, Any] = {}
    for name in ("auto", "default", *(("bfloat16",) if ctx["tiny"] else ())):  # default = bf16 on a GPU
        _reset_peak()
        t0 = time.perf_counter()
        lm = load_model(ctx["base"], options=LoadOptions(dtype=name))
        out[name] = {"dtype_used": lm.info["dtype_used"], "weights_gib": _weight_gib(lm.model),
                     "load_seconds": time.perf_counter() - t0, **_peak()}  # fmt: skip
        _free(lm)
    return out


def _triples(ctx: dict[str, Any]) -> str:
    """Triples whose rows fill max_length: the demo triples with chosen/rejected repeated."""
    path = Path(ctx["work"]) / "triples"
    if (path / "dataset_dict.json").exists():
        return str(path)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the demo triples are test data
    from helpers.demo_triples import build_demo_triples

    dsd = build_demo_triples(8)
    chars = 6 * ctx["max_length"]  # > max_length tokens with any of the tokenizers here

    def stretch(row):
        return {k: (row[k] + " ") * (chars // max(1, len(row[k])) + 1) for k in ("chosen", "rejected")}

    dsd.map(stretch).save_to_disk(str(path))
    return str(path)


def _train(ctx: dict[str, Any], method: str, recipe: str | None = None) -> dict[str, Any]:
    """Steps of ``method`` with ``recipe`` (default: ``<recipes>/<method>/qlora.yaml``)."""
    from transformers import TrainerCallback

    from lmolt_hub.training import train

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.trainable: dict[str, int] = {}  # dtype -> trainable tensors when training starts

        def on_train_begin(self, args, state, control, model=None, **kw):
            for p in model.parameters() if model is not None else ():
                if p.requires_grad:
                    self.trainable[str(p.dtype)] = self.trainable.get(str(p.dtype), 0) + 1

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if _cuda():
                import torch

                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.t0)

    recipe = recipe or f"{ctx['recipes']}/{method}/qlora.yaml"
    name = Path(recipe).stem
    out_dir = Path(ctx["work"]) / (f"adapter-{method}" if name == "qlora" else f"adapter-{method}-{name}")
    overrides = ["--model_name_or_path", ctx["base"], "--dataset_name", _triples(ctx), "--output_dir", str(out_dir),
                 "--max_steps", str(ctx["steps"]), "--max_train_samples", str(ctx["steps"] * 2),
                 "--gradient_accumulation_steps", "1", "--max_length", str(ctx["max_length"]),
                 "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                 "--push_to_hub", "false", "--logging_steps", "1", "--report_to", "none"]  # fmt: skip
    overrides += ["--use_cpu", "true"] if ctx["device"] == "cpu" else []  # fp16/bf16 recipes on a CPU
    timer = Timer()
    _reset_peak()
    t0 = time.perf_counter()
    result = train(method, str(ROOT / recipe), overrides, callbacks=[timer])
    if name == "qlora":
        ctx[f"adapter_{method}"] = result["output_dir"]
    steady = timer.times[1:] or timer.times
    cfg = json.loads((out_dir / "adapter_config.json").read_text())
    return {"recipe": recipe, "steps": len(timer.times), "lora_r": cfg["r"], "use_dora": cfg.get("use_dora"),
            "trainable_dtypes": timer.trainable,
            "seconds_per_step": sum(steady) / len(steady), "step_seconds": timer.times,
            "max_length": ctx["max_length"], "wall_seconds": time.perf_counter() - t0, **_peak()}  # fmt: skip


def train_cpo(ctx: dict[str, Any]) -> dict[str, Any]:
    return _train(ctx, "cpo")


def train_dpo(ctx: dict[str, Any]) -> dict[str, Any]:
    return _train(ctx, "dpo")


def train_sft_authors(ctx: dict[str, Any]) -> dict[str, Any]:
    """The authors' SFT recipe as shipped (4-bit, DoRA, fp16): on CUDA the fp16 GradScaler must find
    float32 adapter gradients (trl casts them to bf16 for 4-bit models; lmolt-hub casts them back)."""
    return _train(ctx, "sft", "recipes/meditron-7b/sft/authors.yaml")


def merge(ctx: dict[str, Any]) -> dict[str, Any]:
    """CPO and DPO adapters combined 19:1 and merged into the base (bf16 on GPU, fp32 on CPU)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dt = torch.float32 if ctx["tiny"] else torch.bfloat16
    _reset_peak()
    t0 = time.perf_counter()
    base = AutoModelForCausalLM.from_pretrained(ctx["base"], dtype=dt, device_map={"": ctx["device"]})
    loaded = time.perf_counter()
    net = PeftModel.from_pretrained(base, ctx["adapter_cpo"], adapter_name="cpo")
    net.load_adapter(ctx["adapter_dpo"], adapter_name="dpo")
    net.add_weighted_adapter(["cpo", "dpo"], [0.95, 0.05], "mix", combination_type="linear")
    net.set_adapter("mix")
    net.eval()  # no LoRA dropout in the comparison
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]], device=ctx["device"])
    with torch.no_grad():
        want = net(ids).logits.float()
        merged = net.merge_and_unload()
        got = merged(ids).logits.float()
    return {"load_seconds": loaded - t0, "merge_seconds": time.perf_counter() - loaded,
            "max_abs_logit_diff_vs_unmerged": (want - got).abs().max().item(), **_peak()}  # fmt: skip


def _prompts(ctx: dict[str, Any]) -> list[str]:
    from lmolt_hub.formats.eval_set import load_eval_set
    from lmolt_hub.prompts import build_tasks
    from lmolt_hub.resources import chebi20_split

    tasks = build_tasks(load_eval_set(str(chebi20_split("validation")), limit=ctx["n_pairs"]))
    return [p for t in tasks for p in t.prompts]


def _tokens(tok, texts: list[str]) -> int:
    return sum(len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"])


def generate(ctx: dict[str, Any]) -> dict[str, Any]:
    """hf backend (harness default dtype): batched over all prompts vs one at a time on a prefix."""
    from lmolt_hub.generation.backends import GenerationParams, HFBackend
    from lmolt_hub.generation.loading import LoadOptions, load_model

    prompts = _prompts(ctx)
    params = GenerationParams(max_new_tokens=ctx["max_new_tokens"])
    lm = load_model(ctx["base"], options=LoadOptions())
    _reset_peak()
    t0 = time.perf_counter()
    batched = HFBackend(lm.model, lm.tokenizer, batch_size=ctx["batch_size"]).generate(prompts, params)
    t_batched = time.perf_counter() - t0
    n = ctx["sequential"]
    t0 = time.perf_counter()
    single = HFBackend(lm.model, lm.tokenizer, batch_size=1).generate(prompts[:n], params)
    t_single = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(batched[:n], single, strict=True))
    return {"dtype_used": lm.info["dtype_used"], "prompts": len(prompts), "batch_size": ctx["batch_size"],
            "max_new_tokens": params.max_new_tokens,
            "batched": {"seconds": t_batched, "tokens_per_s": _tokens(lm.tokenizer, batched) / t_batched},
            "one_at_a_time": {"prompts": n, "seconds": t_single,
                              "tokens_per_s": _tokens(lm.tokenizer, single) / t_single},
            "identical_outputs": f"{same}/{n}", "all_identical": same == n,
            "speedup_per_prompt": (t_single / n) / (t_batched / len(prompts)), **_peak()}  # fmt: skip


def vllm(ctx: dict[str, Any]) -> dict[str, Any]:
    """The harness's vLLM backend with the trained r=64 CPO adapter (engine sized by vllm_engine_args)."""
    if importlib.util.find_spec("vllm") is None:
        return {"skipped": "vllm is not importable"}
    if not _cuda():
        return {"skipped": "no CUDA GPU"}
    from transformers import AutoTokenizer

    from lmolt_hub.generation.backends import GenerationParams, VLLMBackend, vllm_engine_args

    prompts = _prompts(ctx)
    tok = AutoTokenizer.from_pretrained(ctx["base"])
    params = GenerationParams(max_new_tokens=ctx["max_new_tokens"])
    longest = max(len(ids) for ids in tok(prompts)["input_ids"])
    args = vllm_engine_args(ctx["base"], ctx["adapter_cpo"], max_prompt_tokens=longest,
                            max_new_tokens=params.max_new_tokens, dtype="bfloat16")  # fmt: skip
    args |= {"enforce_eager": True, "gpu_memory_utilization": 0.85}  # no CUDA-graph capture: faster start
    t0 = time.perf_counter()
    backend = VLLMBackend(args, tok, adapter_path=ctx["adapter_cpo"])
    started = time.perf_counter()
    outs = backend.generate(prompts, params)
    seconds = time.perf_counter() - started
    return {"engine_args": {k: v for k, v in args.items() if k not in ("model", "tokenizer")},
            "startup_seconds": started - t0, "prompts": len(prompts), "seconds": seconds,
            "tokens_per_s": _tokens(tok, outs) / seconds}  # fmt: skip


# ---------------------------------------------------------------- orchestration


def environment() -> dict[str, Any]:
    from lmolt_hub.provenance import git_sha, library_versions

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "git_sha": git_sha(),
        "versions": library_versions(),
    }
    import torch

    env["torch"] = torch.__version__
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env["gpu"] = {"name": p.name, "memory_gib": p.total_memory / 2**30, "count": torch.cuda.device_count(),
                      "bf16": torch.cuda.is_bf16_supported()}  # fmt: skip
    for name in ("vllm", "bitsandbytes"):
        if importlib.util.find_spec(name):
            from importlib.metadata import version

            env.setdefault("extra", {})[name] = version(name)
    return env


def _run_in_subprocess(name: str, ctx: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One section in a fresh process (its own peak-memory counters); ctx goes in and comes back."""
    with tempfile.TemporaryDirectory() as tmp:
        io = Path(tmp) / "io.json"
        io.write_text(json.dumps(ctx))
        cmd = [sys.executable, __file__, "--section", name, "--io", str(io)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if proc.returncode != 0 or not io.exists():
            return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}"}
        back = json.loads(io.read_text())
        ctx.update(back["ctx"])
        return back["result"]


def section_timeout(name: str, elapsed: float, budget: float = TOTAL_BUDGET_S) -> float:
    """Seconds ``name`` may run: its cap, or what is left of the whole run's budget if less."""
    return max(0.0, min(GPU_TIMEOUTS[name], budget - elapsed))


def _section(name: str, ctx: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        result = globals()[name](ctx)
    except Exception as exc:  # recorded; the other sections still run
        result = {"error": f"{type(exc).__name__}: {str(exc)[:1500]}"}
    result.setdefault("section_seconds", time.perf_counter() - t0)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny model on CPU, in-process (CI)")
    p.add_argument("--out", help="JSON to write (default bench/results/gpu_check-<UTC time>.json)")
    p.add_argument("--workdir", help="where the checkpoint and adapters go (default: a temp dir, removed)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections (build always runs)")
    p.add_argument("--section", help=argparse.SUPPRESS)
    p.add_argument("--io", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.section:  # child process of a GPU run
        io = json.loads(Path(args.io).read_text())
        result = _section(args.section, io)
        Path(args.io).write_text(json.dumps({"ctx": io, "result": result}))
        return 0

    if not args.tiny and not _cuda():
        print("error: no CUDA GPU visible; run with --tiny for the CPU version", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = Path(args.out or ROOT / "bench" / "results" / f"gpu_check-{stamp}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="lmolt-gpu-check-")
    ctx: dict[str, Any] = {**settings(args.tiny), "work": args.workdir or tmp.name}
    Path(ctx["work"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # downloads nothing: a missing file is an error
    doc: dict[str, Any] = {"kind": "lmolt-hub gpu_check", "created_at": stamp, "tiny": args.tiny,
                           "settings": {k: v for k, v in ctx.items() if k != "work"},
                           "environment": environment(), "sections": {}}  # fmt: skip
    started = time.perf_counter()
    wanted = [s for s in SECTIONS if s == "build" or not args.only or s in args.only]
    try:
        for name in wanted:
            if args.tiny:
                result = _section(name, ctx)
            else:
                left = section_timeout(name, time.perf_counter() - started)
                result = (_run_in_subprocess(name, ctx, left) if left >= 5
                          else {"skipped": f"no time left of the {TOTAL_BUDGET_S} s budget"})  # fmt: skip
            doc["sections"][name] = result
            doc["total_seconds"] = time.perf_counter() - started
            out.write_text(json.dumps(doc, indent=2))  # after every section: a kill keeps what ran
            status = "error" if "error" in result else "skipped" if "skipped" in result else "ok"
            print(f"{name:<10} {status:<8} {result.get('section_seconds', 0):7.1f} s", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    failed = [n for n, r in doc["sections"].items() if "error" in r]
    print(f"wrote {out} ({doc['total_seconds']:.0f} s){'; failed: ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
