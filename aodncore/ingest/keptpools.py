"""Worker processes that outlive an ingest run: the next run of the same process takes them over.

Starting a run's worker processes (a fork from the fork server each, the pipeline's per-process set-up) and
stopping them again is part of every run's fixed cost. So a :class:`~aodncore.ingest.parallel.ProcessIngestPool`
takes its executor from here and gives it back when its run ends; the next run gets it if the workers were
started exactly as it would start them — same :class:`PoolShape`: worker count, log level, log combining, and the
caller's current ``os.environ``, working directory and ``sys.path`` (a worker must see what the caller sees now:
credentials, endpoints). Anything different, and the run gets a fresh executor.

Rules:

* at most one executor is kept idle per process; it is stopped after
  :data:`~aodncore.limits.WORKER_POOL_IDLE_SECONDS` without a run (``AODNCORE_WORKER_POOL_IDLE_SECONDS``, ``0``:
  never kept) and at interpreter exit;
* an executor that is in use is never handed to another run: two overlapping runs in one process each get their
  own (the second a fresh one), and the one given back last is kept;
* an executor whose worker crashed (``BrokenProcessPool``), one given back with work still pending or after an
  error, and one with a worker process gone, is stopped, never reused;
* a process forked from one holding a kept executor forgets it (the executor's threads do not exist there).

Where it applies: a long-lived process that calls the flows itself (a script, a notebook, a benchmark, the tests).
``aodncore ingest`` is one run per process, and the runs of ``aodncore serve`` (Prefect's runner) each start in a
process of their own, so neither keeps workers between runs.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from aodncore.limits import WORKER_POOL_IDLE_SECONDS

__all__ = ["IDLE_SECONDS_ENV", "KeptPool", "PoolShape", "acquire", "idle_seconds", "release", "stop_idle"]

logger = logging.getLogger(__name__)

IDLE_SECONDS_ENV = "AODNCORE_WORKER_POOL_IDLE_SECONDS"


@dataclass(frozen=True)
class PoolShape:
    """Everything the worker processes were started with: a kept executor is reused only for an equal shape."""

    workers: int
    log_level: int
    combine_logs: bool
    environ: tuple[tuple[str, str], ...]
    cwd: str
    path: tuple[str, ...]

    @classmethod
    def now(cls, workers: int, log_level: int, combine_logs: bool) -> PoolShape:
        """The shape a pool started now, in this process, would have."""
        return cls(workers, log_level, combine_logs, tuple(sorted(os.environ.items())), os.getcwd(),
                   tuple(sys.path))


@dataclass(eq=False)
class KeptPool:
    """An executor and the shape its workers were started with; ``runs``: how many runs have used it."""

    shape: PoolShape
    executor: ProcessPoolExecutor
    runs: int = 0
    _timer: threading.Timer | None = field(default=None, repr=False)

    @property
    def usable(self) -> bool:
        """Not broken, not shut down, nothing pending, every worker process alive."""
        executor = self.executor
        if getattr(executor, "_broken", False) or getattr(executor, "_shutdown_thread", False):
            return False
        if getattr(executor, "_pending_work_items", None):
            return False
        processes = getattr(executor, "_processes", None) or {}
        return all(process.is_alive() for process in list(processes.values()))

    def stop(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


_lock = threading.Lock()
_idle: KeptPool | None = None


def idle_seconds() -> float:
    """How long an idle executor is kept (the environment variable, else the default); 0: not kept."""
    value = os.environ.get(IDLE_SECONDS_ENV, "").strip()
    if not value:
        return WORKER_POOL_IDLE_SECONDS
    try:
        return max(0.0, float(value))
    except ValueError:
        logger.warning("%s=%r is not a number of seconds; using %s", IDLE_SECONDS_ENV, value,
                       WORKER_POOL_IDLE_SECONDS)
        return WORKER_POOL_IDLE_SECONDS


def acquire(shape: PoolShape, start: Callable[[], ProcessPoolExecutor]) -> KeptPool:
    """The idle executor if it has ``shape`` and is usable, else a new one from ``start()`` (the idle one, if
    any, is stopped). The caller owns the result until :func:`release`."""
    global _idle
    with _lock:
        kept, _idle = _idle, None
        if kept is not None and kept._timer is not None:
            kept._timer.cancel()
            kept._timer = None
    if kept is not None and (kept.shape != shape or not kept.usable):
        logger.debug("worker pool not reused (%s)", "unusable" if kept.shape == shape else "different shape")
        kept.stop()
        kept = None
    if kept is None:
        kept = KeptPool(shape, start())
    kept.runs += 1
    return kept


def release(kept: KeptPool, *, reusable: bool = True) -> None:
    """Give ``kept`` back at the end of its run: kept idle for the next run, or stopped (see the module doc)."""
    global _idle
    seconds = idle_seconds()
    if not reusable or seconds <= 0 or not kept.usable:
        kept.stop()
        return
    timer = threading.Timer(seconds, _expire, args=(kept,))
    timer.daemon = True
    with _lock:
        previous, _idle = _idle, kept
        kept._timer = timer
        timer.start()
    if previous is not None:
        if previous._timer is not None:
            previous._timer.cancel()
        previous.stop()


def _expire(kept: KeptPool) -> None:
    global _idle
    with _lock:
        if _idle is not kept:
            return  # taken by a run meanwhile
        _idle = None
    kept.stop()


def stop_idle() -> None:
    """Stop the idle executor now, if there is one (at interpreter exit; tests)."""
    global _idle
    with _lock:
        kept, _idle = _idle, None
    if kept is not None:
        if kept._timer is not None:
            kept._timer.cancel()
        kept.stop()


def _forget_in_child() -> None:
    global _idle, _lock
    _idle = None
    _lock = threading.Lock()


atexit.register(stop_idle)
os.register_at_fork(after_in_child=_forget_in_child)
