"""Running a step that touches a submitted model in a child process with limits.

A submitted model is untrusted input: its tokenizer can panic in Rust (``pyo3_runtime.PanicException``
is a BaseException, which ``except Exception`` misses), its chat template can loop or build a huge
string, its config can declare 70B parameters. So every such step (the spot check, ``--evaluate``,
the model check's loading) runs in a fresh child process (forked from a clean ``forkserver``) with

* a wall-clock timeout (the child is killed, its process group included);
* an address-space cap (``RLIMIT_AS``) where the device is the CPU (CUDA reserves far more address
  space than it uses, so on a GPU the parameter limit and the timeout guard it);
* a file-size cap (``RLIMIT_FSIZE``): no downloaded file may exceed the download cap.

Whatever happens in the child (an exception, a panic, MemoryError, a kill, a crash) comes back as
:class:`SandboxError` with a one-line reason naming the stage the child had reached; a
``SubmissionError`` raised in the child comes back as itself. The parent never sees a traceback.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

GIB = 1024**3


@dataclass(frozen=True)
class Limits:
    """``timeout_s``: wall clock for the whole step; ``memory_bytes``: address space (CPU only);
    ``file_bytes``: largest file the child may write (downloads); ``template_seconds``: rendering
    all prompts with a model's chat template."""

    timeout_s: float = 900.0
    memory_bytes: int | None = 16 * GIB
    file_bytes: int | None = 40 * GIB
    template_seconds: float = 20.0


class SandboxError(RuntimeError):
    """The child failed, was killed or ran out of time; ``str()`` is one line."""


_PIPE: Any = None  # the child's end of the pipe (set in the child only)


def stage(name: str) -> None:
    """Tell the parent what the child is doing now (named in a timeout or crash reason)."""
    if _PIPE is not None:
        _PIPE.send(("stage", name))


@contextmanager
def time_budget(seconds: float, what: str) -> Iterator[None]:
    """Interrupt Python code (e.g. a Jinja chat template) running longer than ``seconds`` with a
    ``TimeoutError`` (SIGALRM: main thread of a POSIX process only; elsewhere a no-op)."""
    usable = hasattr(signal, "setitimer") and _PIPE is not None

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what} took over {seconds:g} s")

    if usable:
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if usable:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def one_line(exc: BaseException) -> str:
    """``Type: first line`` of an exception, and of its root cause where it has one."""

    def line(e: BaseException) -> str:
        text = str(e).strip()
        first = text.splitlines()[0][:200] if text else ""
        return f"{type(e).__name__}: {first}" if first else type(e).__name__

    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    return line(exc) if root is exc else f"{line(exc)} (caused by {line(root)})"


def _set_limits(memory_bytes: int | None, file_bytes: int | None) -> None:
    import resource

    os.setpgrp()  # the parent kills the whole group (tokenizer or torch helper processes too)
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    if file_bytes:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))


def _adopt_environment(env: dict[str, str]) -> None:
    """The reviewer's environment now (the fork server kept the one it started with). The server
    preloads torch only, so the Hub clients, which read HF_ENDPOINT at import, see this one."""
    os.environ.clear()
    os.environ.update(env)


def _child(
    conn: Any, fn: Callable[..., Any], args: tuple, memory_bytes: int | None, file_bytes: int | None,
    env: dict[str, str],
) -> None:  # fmt: skip
    global _PIPE
    _PIPE = conn
    try:
        _adopt_environment(env)
        _set_limits(memory_bytes, file_bytes)
        result = ("ok", fn(*args))
    except BaseException as exc:  # noqa: BLE001 - a panic, MemoryError, SystemExit: all are reasons
        from lmolt_hub.leaderboard.validate.basic import ReviewerSetupError, SubmissionError

        if isinstance(exc, SubmissionError):
            result = ("submission", str(exc))
        elif isinstance(exc, ReviewerSetupError):
            result = ("setup", str(exc))
        elif isinstance(exc, MemoryError):
            result = ("error", f"out of memory (the cap is {memory_bytes / GIB:g} GiB)")
        else:
            result = ("error", one_line(exc))
    try:
        conn.send(result)
    except BaseException as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
        try:
            conn.send(("error", f"result could not be returned: {one_line(exc)}"))
        except OSError:  # the parent is gone (it gave up on this child)
            pass
    conn.close()


def _death(exitcode: int | None, memory_bytes: int | None) -> str:
    if exitcode is None or exitcode >= 0:
        return f"the child process exited with code {exitcode} without a result"
    sig = signal.Signals(-exitcode).name
    hint = {"SIGKILL": " (killed: out of memory?)", "SIGXFSZ": " (a file over the download cap)",
            "SIGSEGV": " (crashed)", "SIGABRT": " (aborted)"}.get(sig, "")  # fmt: skip
    return f"the child process died by {sig}{hint}"


def _kill(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.join(10)


# torch is most of the import time; transformers is imported fresh in each child (a child forked
# from a server that preloaded it once failed a lazy import after a tokenizer panic)
_PRELOAD = ["torch"]


def _context() -> Any:
    """``forkserver`` where there is one (POSIX): a server process imports torch and transformers
    once, and each child is a fresh fork of it (a fraction of a second instead of seconds of imports,
    and no state of the reviewer's process); ``spawn`` elsewhere."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def run_limited(fn: Callable[..., Any], *args: Any, limits: Limits, what: str) -> Any:
    """``fn(*args)`` in a fresh child under ``limits``; its result, or SandboxError (one line).

    ``fn`` and ``args`` must be picklable (module-level functions, plain data)."""
    from lmolt_hub.leaderboard.validate.basic import ReviewerSetupError, SubmissionError

    ctx = _context()
    parent, child_end = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child_end, fn, args, limits.memory_bytes, limits.file_bytes, dict(os.environ)),
                       daemon=True)  # fmt: skip
    proc.start()
    child_end.close()
    deadline, where, result = time.monotonic() + limits.timeout_s, "starting", None
    try:
        while result is None:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(proc)
                raise SandboxError(
                    f"{what}: no result within {limits.timeout_s:g} s (while {where}); stopped"
                )
            if not parent.poll(min(left, 0.5)):
                if not proc.is_alive() and not parent.poll():
                    break
                continue
            try:
                kind, payload = parent.recv()
            except (EOFError, OSError):
                break
            if kind == "stage":
                where = payload
            else:
                result = (kind, payload)
    finally:
        parent.close()
        if proc.is_alive():
            proc.join(5)
        if proc.is_alive():
            _kill(proc)
    if result is None:
        raise SandboxError(f"{what}: {_death(proc.exitcode, limits.memory_bytes)} (while {where})")
    kind, payload = result
    if kind == "ok":
        return payload
    if kind == "submission":
        raise SubmissionError(payload)
    if kind == "setup":
        raise ReviewerSetupError(payload)
    raise SandboxError(f"{what}: {payload} (while {where})")
