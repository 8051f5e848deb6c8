"""The study's jobs: one training run, chain or evaluation each, run in-process or as worker processes
(``python -m lmolt_hub.pipelines.study.jobs --worker SPEC OUT``); each finished job is recorded at
once, so an interrupted stage redoes only unfinished jobs. Also the process-tree memory sampler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmolt_hub.io import write_json
from lmolt_hub.pipelines.state import StepState

# -- memory: the whole process tree, sampled (workers run concurrently, so the sum is the peak) --


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(k) for k in kids]
    return out + [g for k in out for g in _children(k)]


class MemorySampler:
    """Peak resident memory of this process plus its descendants, sampled every ``every`` s."""

    def __init__(self, every: float = 1.0):
        self.peak_kib, self.every = 0, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            total = sum(_rss_kib(p) for p in [me, *_children(me)])
            self.peak_kib = max(self.peak_kib, total)
            self._stop.wait(self.every)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kib / 1024, 1)


# -- jobs: one training run, chain or evaluation; in-process or as a worker process ------------


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one job described by JSON-able ``spec`` and return its JSON-able result."""
    kind = spec["kind"]
    if kind == "train":
        from lmolt_hub.pipelines.chain import _summary
        from lmolt_hub.training import train

        return _summary(train(spec["method"], spec["config"], spec["overrides"])) | _run_info(spec)
    if kind == "chain":
        from lmolt_hub.pipelines.chain import run_chain

        return run_chain(spec["config"], org=spec["org"], work_dir=spec["work_dir"],
                         train_args=spec["train_args"])  # fmt: skip
    if kind == "eval":
        from lmolt_hub.evaluation import evaluate_model
        from lmolt_hub.generation.backends import GenerationParams

        kwargs = dict(spec["kwargs"])
        kwargs["generation"] = GenerationParams(**kwargs["generation"])
        doc = evaluate_model(spec["model"], **kwargs)
        return {"model": spec["model"], "results": doc["results_path"]}
    raise ValueError(f"unknown job kind {kind!r}")


def _run_info(spec: dict[str, Any]) -> dict[str, Any]:
    """The best-epoch choice and validation curve of a finished run (from its run_info.json)."""
    path = Path(spec["output_dir"]) / "run_info.json"
    if not path.is_file():
        return {}
    info = json.loads(path.read_text(encoding="utf-8"))
    evals = [
        {"epoch": h.get("epoch"), "eval_loss": h["eval_loss"]}
        for h in info.get("log_history", [])
        if "eval_loss" in h
    ]
    return {"selection": info.get("checkpoint_selection"), "eval_curve": evals}


def run_jobs(
    jobs: dict[str, dict[str, Any]],
    state: StepState,
    stage: str,
    workers: int,
    logs: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Run every job not yet recorded under ``stage/<name>``; ``workers`` > 1 runs them as processes."""
    done = {name: state.get(f"{stage}/{name}") for name in jobs}
    todo = [name for name, result in done.items() if result is None]
    for name in set(jobs) - set(todo):
        log(f"[study] {stage}/{name}: done in a previous run, reusing it")
    if workers <= 1:
        for name in todo:
            t0 = time.perf_counter()
            log(f"[study] {stage}/{name} ...")
            done[name] = run_job(jobs[name]) | {"seconds": round(time.perf_counter() - t0, 1)}
            state.put(f"{stage}/{name}", done[name])
        return done
    logs.mkdir(parents=True, exist_ok=True)
    running: dict[str, tuple[subprocess.Popen, float, Path]] = {}
    failed: list[str] = []
    while todo or running:
        while todo and len(running) < workers:
            name = todo.pop(0)
            spec_path, out_path = logs / f"{stage}-{name}.json", logs / f"{stage}-{name}.out.json"
            spec_path.write_text(json.dumps(jobs[name]), encoding="utf-8")
            out_path.unlink(missing_ok=True)
            # each worker gets its share of the cores: more threads than cores only thrash
            env = os.environ | {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
            with open(logs / f"{stage}-{name}.log", "w", encoding="utf-8") as f:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "lmolt_hub.pipelines.study.jobs", "--worker", str(spec_path), str(out_path)],
                    stdout=f, stderr=subprocess.STDOUT, env=env,
                )  # fmt: skip
            running[name] = (proc, time.perf_counter(), out_path)
            log(f"[study] {stage}/{name} started (pid {proc.pid}, log {logs / f'{stage}-{name}.log'})")
        time.sleep(1.0)
        for name, (proc, t0, out_path) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            seconds = round(time.perf_counter() - t0, 1)
            if proc.returncode != 0 or not out_path.is_file():
                failed.append(name)
                log(f"[study] {stage}/{name} FAILED (exit {proc.returncode}); see its log")
                continue
            done[name] = json.loads(out_path.read_text(encoding="utf-8")) | {"seconds": seconds}
            state.put(f"{stage}/{name}", done[name])
            log(f"[study] {stage}/{name}: {seconds:.1f} s")
    if failed:
        raise SystemExit(
            f"lmolt-hub study: {stage} jobs failed: {', '.join(failed)} (logs in {logs}); rerun to resume"
        )
    return done


def worker_main(spec_path: str, out_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    result = run_job(spec)
    write_json(out_path, result, newline=False, default=str)
    return 0


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--worker":
    sys.exit(worker_main(sys.argv[2], sys.argv[3]))
