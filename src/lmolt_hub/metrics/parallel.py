"""One process pool for the metric families: text pairs, molecule descriptions and ChemNet batches
are cut into chunks, run on every core, and merged back in order.

Why processes: METEOR/ROUGE (Python) and RDKit hold the GIL, and ChemNet's LSTM is faster as one
single-threaded forward per core than as one forward over OpenMP threads (which also collapses when
the cores are shared: the threads spin-wait for each other).

The pool is created on first use and kept for the process (a harness or reviewer scores many
times). Its workers run torch on one thread each. It forks when the parent has not imported torch
(cheap: the workers inherit what is loaded); after torch (whose OpenMP runtime is not fork-safe) it
uses a fork server. One core, a daemonic process (a pool worker cannot have children) or
``LMOLT_METRICS_WORKERS=1``: everything runs in the calling process, the same code on the same
chunks, with the same values.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
ENV_WORKERS = "LMOLT_METRICS_WORKERS"
_POOL: ProcessPoolExecutor | None = None
_POOL_WORKERS = 0


def cores() -> int:
    """Cores this process may run on (``LMOLT_METRICS_WORKERS`` overrides, e.g. 1 for serial)."""
    env = os.environ.get(ENV_WORKERS, "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # before torch starts its thread pool in this worker
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


def pool() -> Executor | None:
    """The shared pool, or None where work should stay in this process."""
    global _POOL, _POOL_WORKERS
    import multiprocessing as mp

    n = cores()
    if n < 2 or mp.current_process().daemon:
        return None
    if _POOL is not None and _POOL_WORKERS == n:
        return _POOL
    shutdown()
    methods = mp.get_all_start_methods()
    if "fork" in methods and "torch" not in sys.modules:
        ctx = mp.get_context("fork")
    elif "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["lmolt_hub.metrics.parallel", "numpy", "rdkit.Chem", "torch"])
    else:
        ctx = mp.get_context("spawn")
    _POOL, _POOL_WORKERS = ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker), n
    for _ in range(n):  # start the workers now: their start-up overlaps the caller's own work
        _POOL.submit(int)
    return _POOL


def shutdown() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(wait=True, cancel_futures=True)
        _POOL = None


def chunks(items: Sequence[T], parts: int, min_size: int = 64) -> list[Sequence[T]]:
    """``items`` in order, cut into about ``parts`` pieces of at least ``min_size``."""
    size = max(min_size, -(-len(items) // max(1, parts)))
    return [items[k : k + size] for k in range(0, len(items), size)]


class Done(Future):
    """A future that ran in this process (no pool)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        super().__init__()
        self.set_result(fn(*args))


def submit_chunks(fn: Callable[..., T], items: Sequence[Any], *args: Any, min_parallel: int = 256,
                  per_core: int = 2) -> list[Future]:  # fmt: skip
    """``fn(chunk, *args)`` for chunks of ``items``, in the pool when it has work for every core
    (``min_parallel`` items or more), else here; futures in the order of the chunks."""
    ex = pool() if len(items) >= min_parallel else None
    if ex is None:
        return [Done(fn, items, *args)] if len(items) else []
    parts = chunks(items, cores() * per_core, min_size=max(16, min_parallel // (4 * cores())))
    try:
        return [ex.submit(fn, part, *args) for part in parts]
    except BrokenProcessPool:  # a worker died earlier (killed): start over once
        shutdown()
        ex = pool()
        assert ex is not None
        return [ex.submit(fn, part, *args) for part in parts]


def gather(futures: Iterable[Future]) -> list[Any]:
    """Results in order; a worker that died (RDKit crash, out of memory) is a clear error."""
    try:
        return [f.result() for f in futures]
    except BrokenProcessPool as exc:
        shutdown()
        raise RuntimeError(
            "a metric worker process died (out of memory, or a molecule that crashed RDKit); "
            f"rerun with {ENV_WORKERS}=1 to find the row"
        ) from exc
