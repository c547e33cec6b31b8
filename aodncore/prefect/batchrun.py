"""Running a flow's batches in this process: ``ingest-batch`` tasks on the flow's thread pool, the files in a
:class:`~aodncore.ingest.parallel.ProcessIngestPool` (the other way, on Dask, is :mod:`aodncore.prefect.daskrun`),
and how a run's to-do list is split into batches (:func:`plan_batches`, for both).

A task run costs more than most files (measured on the local server: ~55 ms of wall time and ~0.1 s of CPU,
mostly the server's, for the task run's three state events; BENCHMARKS.md, issue 9 target 2, seventh pass), so with
a pool the run's files are planned into twice as many batches as workers, as before, but run by one ``ingest-batch``
task run per worker, each taking the next file of the planned batches from one shared queue (:class:`SharedFiles`)
whenever its worker is free: no worker idles while files are left, and the outcomes join the result in exactly
the planned batches' order, whichever task ran them. ``SHARED_FILES = False``: one task run per planned batch.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from functools import partial
from typing import Any

from prefect.utilities.annotations import quote

from aodncore.ingest.outcome import FileOutcome
from aodncore.ingest.parallel import ProcessIngestPool
from aodncore.ingest.runner import IngestSettings
from aodncore.ingest.sources import LandingObject
from aodncore.prefect.tasks import ingest_batch_task

__all__ = ["MAX_WORKERS", "SHARED_FILES", "SharedFiles", "plan_batches", "run_batches_here"]

MAX_WORKERS = 16
"""At most this many batches (and worker processes) per run, except on an existing Dask cluster."""

SHARED_FILES = True
"""With a pool: one ``ingest-batch`` task run per worker, taking the planned batches' files from a shared queue
(:class:`SharedFiles`); False: one task run per planned batch (twice as many as workers)."""


def plan_batches(objects: Sequence[LandingObject], batches: int) -> list[list[LandingObject]]:
    """Split objects into at most ``batches`` lists of similar total size (largest first, to the lightest)."""
    batches = max(1, min(batches, len(objects)))
    heap: list[tuple[int, int]] = [(0, index) for index in range(batches)]
    planned: list[list[LandingObject]] = [[] for _ in range(batches)]
    for obj in sorted(objects, key=lambda o: o.size, reverse=True):
        load, index = heapq.heappop(heap)
        planned[index].append(obj)
        heapq.heappush(heap, (load + max(obj.size, 1), index))
    return [sorted(batch, key=lambda o: o.uri) for batch in planned if batch]


class SharedFiles:
    """The files of a run's planned batches, handed one at a time to whichever ``ingest-batch`` task asks next.

    Each task gets a :meth:`share` to iterate (the next file of the queue, in batch order) and that share's
    :meth:`Share.done` as its ``on_outcome``; ``on_outcome(batch index, outcome)`` then receives each outcome in its
    planned batch's own order, whatever task ran it (an outcome that finished before one planned ahead of it in its
    batch waits for it: at most one per task at a time). Thread-safe.
    """

    def __init__(self, batches: Sequence[Sequence[LandingObject]],
                 on_outcome: Callable[[int, FileOutcome], None]) -> None:
        self._queue = deque((index, position, obj) for index, batch in enumerate(batches)
                            for position, obj in enumerate(batch))
        self._on_outcome = on_outcome
        self._lock = threading.Lock()
        self._next = [0] * len(batches)
        self._held: dict[tuple[int, int], FileOutcome] = {}

    def share(self) -> Share:
        """A view for one task: iterating it takes files from the queue."""
        return Share(self)

    def _take(self) -> tuple[int, int, LandingObject] | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _done(self, index: int, position: int, outcome: FileOutcome) -> None:
        with self._lock:
            self._held[(index, position)] = outcome
            while (ready := self._held.pop((index, self._next[index]), None)) is not None:
                self._on_outcome(index, ready)
                self._next[index] += 1

    @property
    def pending(self) -> int:
        """Files not yet taken plus outcomes not yet passed on (0 once every file was run)."""
        with self._lock:
            return len(self._queue) + len(self._held)


class Share:
    """One task's view of a :class:`SharedFiles` (iterated by one thread)."""

    def __init__(self, files: SharedFiles) -> None:
        self._files = files
        self._current: tuple[int, int] | None = None

    def __iter__(self) -> Iterator[LandingObject]:
        while (taken := self._files._take()) is not None:
            index, position, obj = taken
            self._current = (index, position)
            yield obj

    def done(self, outcome: FileOutcome) -> None:
        """The outcome of the file this share handed out last."""
        assert self._current is not None, "an outcome before any file"
        current, self._current = self._current, None
        self._files._done(*current, outcome)


def run_batches_here(
    todo: list[LandingObject],
    settings: IngestSettings,
    workers: int,
    *,
    on_outcome: Callable[[int, FileOutcome], None] | None = None,
) -> list[FileOutcome] | dict[str, int]:
    """``ingest-batch`` tasks on the flow's thread pool, the files themselves in a ``ProcessIngestPool``.

    Returns the outcomes in batch order; with ``on_outcome`` each is handed to it instead, as ``(batch index,
    outcome)`` when its file finishes (in batch order within a batch), and the count per status is returned.

    With a pool the files are planned into twice as many batches as worker processes and, with
    :data:`SHARED_FILES`, run by one task run per worker taking the next file from a shared queue (so a worker
    that finishes early takes a file of another batch instead of idling at the end of the run); otherwise one
    task run per batch (the pool queues their files). Without a pool (one worker or one file) there is exactly one
    batch: netCDF work must never run in two threads at once. The pool starts workers on demand (never more than
    files) and leaves them to the next run of this process (:mod:`aodncore.ingest.keptpools`), so it is sized by
    ``workers`` alone: runs of any size share it.
    """
    outcomes: list[FileOutcome] = []
    counts: Counter[str] = Counter()
    with ExitStack() as stack:
        pool = None
        batch_count = 1
        if len(todo) > 1 and workers > 1:
            pool = stack.enter_context(ProcessIngestPool(settings, workers=workers))
            batch_count = min(MAX_WORKERS, 2 * workers)
        batches = plan_batches(todo, batch_count)
        shared = None
        if pool is not None and SHARED_FILES:
            per_batch: list[list[FileOutcome]] = [[] for _ in batches]
            shared = SharedFiles(batches, on_outcome or (lambda index, outcome: per_batch[index].append(outcome)))
            shares = [shared.share() for _ in range(min(workers, len(todo)))]
            # quote(): Prefect would otherwise walk every object of the batch and the settings (twice per task run)
            # looking for futures to wait for; there are none
            calls: list[tuple[Any, Any]] = [(quote(share), quote(share.done)) for share in shares]
        else:
            calls = [(quote(batch), quote(partial(on_outcome, index)) if on_outcome else None)
                     for index, batch in enumerate(batches)]
        futures = [
            ingest_batch_task.submit(objects, quote(settings), batch_label=str(index), pool=quote(pool),
                                     on_outcome=hook)
            for index, (objects, hook) in enumerate(calls)
        ]
        for future in futures:
            returned = future.result(raise_on_failure=False)  # a Failed batch still returns its outcomes
            if isinstance(returned, BaseException):
                raise returned
            if shared is not None or on_outcome is not None:
                counts.update(returned)
            else:
                outcomes.extend(returned)
        if shared is not None:
            assert not shared.pending, "files left in the shared queue"
            if on_outcome is None:
                outcomes = [outcome for batch in per_batch for outcome in batch]
    return outcomes if on_outcome is None else dict(counts)
