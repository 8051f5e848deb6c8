"""Throughput and peak memory of the tiny CPO recipe: lmolt-hub's layer vs a plain trl script.

Each variant runs in its own process (so peak RSS is its own), alternating, ``--repeats`` times:

- ``lmolt``: ``lmolt_hub.training.train("cpo", recipes/tiny/cpo/qlora.yaml, ...)`` (parse, data
  checks, 4-bit load with the CPU trap fixed, trainer, card, run info; no push);
- ``plain``: the same model, LoRA, data and CPOConfig written directly against trl/peft.

Prints training-loop steps per wall second and per process-CPU second (the latter is what to
compare on a shared machine), end-to-end wall time and peak RSS, and the layer's throughput
overhead (goal < 5%).

    python bench/train.py [--steps 60] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/tiny/cpo/qlora.yaml"


def _overrides(dataset: str, out: str, steps: int) -> list[str]:
    return ["--dataset_name", dataset, "--output_dir", out, "--max_steps", str(steps),
            "--max_train_samples", str(2 * steps), "--gradient_accumulation_steps", "1",
            "--max_length", "512", "--save_strategy", "no", "--logging_steps", "5"]  # fmt: skip


class LoopTimer:
    """Wall and process-CPU time of the training loop only (CPU time is robust on a shared machine)."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def on_train_end(self, args, state, control, **kw):
                self.steps = state.global_step
                self.wall = time.perf_counter() - self.t0
                self.cpu = time.process_time() - self.c0

        return _Timer()


def run_lmolt(dataset: str, out: str, steps: int, timer) -> None:
    from lmolt_hub.training import train

    train("cpo", str(RECIPE), _overrides(dataset, out, steps), callbacks=[timer])


def run_plain(dataset: str, out: str, steps: int, timer) -> None:
    """What a user would write with trl alone (same hyper-parameters as the tiny recipe)."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    from lmolt_hub.training.models import tiny_model_path

    path = tiny_model_path("tiny://llama")
    ds = datasets.load_from_disk(dataset)["train"].select(range(2 * steps))
    ds = ds.select_columns(["prompt", "chosen", "rejected"])
    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.bfloat16)  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=bnb, dtype=torch.bfloat16)
    tok = AutoTokenizer.from_pretrained(path)
    args = CPOConfig(output_dir=out, use_cpu=True, bf16=True, max_steps=steps, num_train_epochs=1,
                     per_device_train_batch_size=2, gradient_accumulation_steps=1, learning_rate=1e-3,
                     lr_scheduler_type="cosine", warmup_steps=0.1, max_grad_norm=0.3, optim="adamw_torch",
                     gradient_checkpointing=False, max_length=512, seed=42, logging_steps=5, save_strategy="no",
                     report_to="none", beta=0.1, loss_type="sigmoid", cpo_alpha=1.0)  # fmt: skip
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules="all-linear", bias="none",
                      task_type="CAUSAL_LM")  # fmt: skip
    torch.manual_seed(42)
    trainer = CPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=lora,
                         callbacks=[timer])  # fmt: skip
    trainer.train()
    trainer.save_model(out)


def child(variant: str, dataset: str, steps: int) -> None:
    t0 = time.perf_counter()
    timer = LoopTimer()
    with tempfile.TemporaryDirectory() as out:
        (run_lmolt if variant == "lmolt" else run_plain)(dataset, out, steps, timer)
    r = {
        "variant": variant,
        "steps_per_s": timer.steps / timer.wall,
        "steps_per_cpu_s": timer.steps / timer.cpu,
        "wall_s": time.perf_counter() - t0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print("RESULT " + json.dumps(r))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads per run (1: stable on a shared machine)"
    )
    ap.add_argument("--child", choices=["lmolt", "plain"], help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        import torch

        torch.set_num_threads(a.threads)
        child(a.child, a.dataset, a.steps)
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the demo triples are test data
    from lmolt_hub.training.models import tiny_model_path

    from helpers.demo_triples import save_demo_triples

    with tempfile.TemporaryDirectory() as tmp:
        dataset, _ = save_demo_triples(Path(tmp) / "demo", n_per_direction=(5 * a.steps) // 4 + 4)
        tiny_model_path("tiny://llama")  # built once, outside the timings
        results: dict[str, list[dict]] = {"lmolt": [], "plain": []}
        for i in range(a.repeats):
            for variant in ("plain", "lmolt") if i % 2 else ("lmolt", "plain"):
                proc = subprocess.run([sys.executable, __file__, "--child", variant, "--dataset", dataset,
                                       "--steps", str(a.steps), "--threads", str(a.threads)], capture_output=True, text=True)  # fmt: skip
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if proc.returncode or line is None:
                    print(proc.stderr[-3000:], file=sys.stderr)
                    return 1
                r = json.loads(line[7:])
                results[variant].append(r)
                print(f"  {variant:5s} run {i + 1}: {r['steps_per_s']:.3f} steps/s, "
                      f"{r['steps_per_cpu_s']:.3f} steps/CPU-s, wall {r['wall_s']:.1f} s, "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)  # fmt: skip
    keys = ("steps_per_s", "steps_per_cpu_s", "wall_s", "peak_rss_mb")
    med = {v: {k: statistics.median(r[k] for r in rs) for k in keys}
           for v, rs in results.items()}  # fmt: skip
    print(f"\ntiny CPO recipe, {a.steps} steps, {a.threads} torch thread(s), median of {a.repeats}:")
    print(f"{'':8s}{'steps/s':>10s}{'steps/CPU-s':>13s}{'wall s':>10s}{'peak RSS MB':>14s}")
    for v in ("plain", "lmolt"):
        m = med[v]
        print(
            f"{v:8s}{m['steps_per_s']:>10.3f}{m['steps_per_cpu_s']:>13.3f}{m['wall_s']:>10.1f}{m['peak_rss_mb']:>14.0f}"
        )
    for key, label in (("steps_per_s", "wall-clock"), ("steps_per_cpu_s", "CPU-time")):
        overhead = 1 - med["lmolt"][key] / med["plain"][key]
        print(f"throughput overhead of the lmolt-hub layer ({label}): {overhead:+.1%} (goal < 5%)")
    print(f"end-to-end wall overhead: {med['lmolt']['wall_s'] - med['plain']['wall_s']:+.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
