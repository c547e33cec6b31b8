"""Running a flow's batches in this process: ``ingest-batch`` tasks on the flow's thread pool, the files in a
:class:`~aodncore.ingest.parallel.ProcessIngestPool` (the other way, on Dask, is :mod:`aodncore.prefect.daskrun`),
and how a run's to-do list is split into batches (:func:`plan_batches`, for both)."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from functools import partial

from prefect.utilities.annotations import quote

from aodncore.ingest.outcome import FileOutcome
from aodncore.ingest.parallel import ProcessIngestPool
from aodncore.ingest.runner import IngestSettings
from aodncore.ingest.sources import LandingObject
from aodncore.prefect.tasks import ingest_batch_task

__all__ = ["MAX_WORKERS", "plan_batches", "run_batches_here"]

MAX_WORKERS = 16
"""At most this many batches (and worker processes) per run, except on an existing Dask cluster."""


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

    With a pool there are twice as many batches as worker processes, so a worker that finishes early takes the
    next file of another batch (the pool queues them) instead of idling at the end of the run. Without a pool
    (one worker or one file) there is exactly one batch: netCDF work must never run in two threads at once.
    The pool starts workers on demand (never more than files) and leaves them to the next run of this process
    (:mod:`aodncore.ingest.keptpools`), so it is sized by ``workers`` alone: runs of any size share it.
    """
    outcomes: list[FileOutcome] = []
    counts: Counter[str] = Counter()
    with ExitStack() as stack:
        pool = None
        batch_count = 1
        if len(todo) > 1 and workers > 1:
            pool = stack.enter_context(ProcessIngestPool(settings, workers=workers))
            batch_count = min(MAX_WORKERS, 2 * workers)
        # quote(): Prefect would otherwise walk every object of the batch and the settings (twice per task run)
        # looking for futures to wait for; there are none
        futures = [
            ingest_batch_task.submit(quote(batch), quote(settings), batch_label=str(index), pool=quote(pool),
                                     on_outcome=quote(partial(on_outcome, index)) if on_outcome else None)
            for index, batch in enumerate(plan_batches(todo, batch_count))
        ]
        for future in futures:
            returned = future.result(raise_on_failure=False)  # a Failed batch still returns its outcomes
            if isinstance(returned, BaseException):
                raise returned
            if on_outcome is None:
                outcomes.extend(returned)
            else:
                counts.update(returned)
    return outcomes if on_outcome is None else dict(counts)
