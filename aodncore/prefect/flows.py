"""Ready-made flows: ``ingest_file`` (one landing object) and ``ingest_landing`` (everything under a prefix).

Cost model (measured on 2 cores, see BENCHMARKS.md): a Prefect task run costs more than the whole classic
per-file pipeline, so the flows never run a task per step per file. ``ingest_landing`` lists the landing area,
drops what the ingest ledger says is already done, splits the rest into a few balanced batches (``workers`` on
Dask, up to twice ``workers`` with the process pool so that no worker idles at the end) and runs one
``ingest-batch`` task per batch. Per-file detail is in the logs and in the outcome table artifact.

Where the batches run: by default on a thread pool, the files themselves in a ``ProcessIngestPool`` of worker
processes (netCDF/HDF5 is not thread-safe); with ``dask_address`` on a Dask cluster through ``prefect-dask``, each
batch processing its files one after the other in its single-threaded Dask worker (see
:mod:`aodncore.prefect.daskrun`).

Parameters are plain strings and numbers so that the flows can be deployed and triggered from the UI, the CLI
or an S3 event.
"""

from __future__ import annotations

import heapq
import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from aodncore.ingest import progress
from aodncore.ingest.configure import build_settings
from aodncore.ingest.outcome import FAILED, IGNORED, QUARANTINED, SKIPPED, WAITING, FileOutcome
from aodncore.ingest.parallel import ProcessIngestPool
from aodncore.ingest.plan import TODO, PlanItem, plan_landing, resolve_settle_seconds
from aodncore.ingest.runner import IngestSettings, dispose_skipped, in_run_folder
from aodncore.ingest.scratch import run_scratch
from aodncore.ingest.sources import LandingObject
from aodncore.limits import LANDING_SETTLE_SECONDS
from aodncore.prefect.artifacts import create_failure_report, create_outcome_table
from aodncore.prefect.daskrun import LOCAL_CLUSTER, MAX_DASK_BATCHES, run_batches_on_dask
from aodncore.prefect.logbridge import forward_library_logs
from aodncore.prefect.tasks import ingest_batch_task

__all__ = ["MAX_FAILURE_REPORTS", "MAX_WORKERS", "ingest_file", "ingest_landing", "plan_batches"]

MAX_FAILURE_REPORTS = 20
"""At most this many markdown failure reports per run (the table lists every file)."""

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


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


def _publish_artifacts(outcomes: list[FileOutcome], key: str) -> None:
    if not outcomes:
        return
    create_outcome_table(outcomes, key=key)
    failures = [outcome for outcome in outcomes if outcome.status in (QUARANTINED, FAILED)]
    for outcome in failures[:MAX_FAILURE_REPORTS]:
        create_failure_report(outcome)


def _the_one_item(source: str, items: list[PlanItem]) -> list[PlanItem]:
    """The landing entry ``source`` names exactly; raises before anything is processed otherwise."""
    if source.startswith("s3://"):
        items = [item for item in items if item.uri == source]
    if len(items) != 1:
        raise ValueError(f"ingest_file expects exactly one landing object, found {len(items)} at {source!r}")
    return items


def _ingest(
    sources: Sequence[str],
    *,
    workers: int,
    skip_ingested: bool,
    artifact_key: str,
    settings_options: dict[str, Any],
    settle_seconds: float | None = None,
    settle_wait: bool = False,
    single: bool = False,
    dask_address: str | None = None,
) -> list[dict[str, Any]]:
    settings = build_settings(run_id=_flow_run_id(), **settings_options)
    try:
        with run_scratch(settings.work_dir or tempfile.gettempdir()) as scratch:
            settings = in_run_folder(settings, scratch.path)
            settle = resolve_settle_seconds(settings.config, settle_seconds, LANDING_SETTLE_SECONDS.default)
            items = plan_landing(sources, settle_seconds=settle, wait=settle_wait,
                                 ledger=settings.ledger if skip_ingested else None)
            if single:
                items = iter(_the_one_item(sources[0], list(items)))
            outcomes = _process(items, settings, workers=workers, dask_address=dask_address)
    finally:
        if settings.ledger is not None:
            settings.ledger.close()  # every outcome is recorded by now (in this process)
    _publish_artifacts(outcomes, artifact_key)
    counts = {status: sum(1 for o in outcomes if o.status == status) for status in {o.status for o in outcomes}}
    get_run_logger().info(
        "ingest finished: %s", ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do"
    )
    return [outcome.to_dict() for outcome in outcomes]


def _process(
    items: Iterable[PlanItem],
    settings: IngestSettings,
    *,
    workers: int,
    dask_address: str | None,
) -> list[FileOutcome]:
    """Act on the plan: skipped content leaves the landing area, the rest is processed here or on Dask."""
    todo: list[LandingObject] = []
    outcomes: list[FileOutcome] = []
    for item in items:
        if item.status == TODO:
            assert item.obj is not None
            todo.append(item.obj)
        elif item.status == SKIPPED:
            assert item.obj is not None
            outcomes.append(dispose_skipped(item.obj, settings))
        else:
            outcomes.append(item.outcome())
    counts = Counter(outcome.status for outcome in outcomes)
    get_run_logger().info(
        "%d landing object(s) found, %d already ingested, %d waiting, %d ignored, %d unreadable, %d to process "
        "with %d worker(s)%s (handler %s)",
        len(todo) + len(outcomes),
        counts[SKIPPED],
        counts[WAITING],
        counts[IGNORED],
        counts[FAILED],
        len(todo),
        workers,
        f" on Dask ({dask_address})" if dask_address else "",
        settings.handler_name,
    )
    progress.emit("planned", len(todo) + len(outcomes))
    for outcome in outcomes:
        progress.emit("done", outcome)
    if dask_address:
        outcomes.extend(run_batches_on_dask(plan_batches(todo, workers), settings, dask_address))
    else:
        outcomes.extend(_run_batches_here(todo, settings, workers))
    return outcomes


def _run_batches_here(todo: list[LandingObject], settings: IngestSettings, workers: int) -> list[FileOutcome]:
    """``ingest-batch`` tasks on the flow's thread pool, the files themselves in a ``ProcessIngestPool``.

    With a pool there are twice as many batches as worker processes, so a worker that finishes early takes the
    next file of another batch (the pool queues them) instead of idling at the end of the run. Without a pool
    (one worker or one file) there is exactly one batch: netCDF work must never run in two threads at once.
    """
    outcomes: list[FileOutcome] = []
    with ExitStack() as stack:
        pool = None
        batch_count = 1
        if len(todo) > 1 and workers > 1:
            pool = stack.enter_context(ProcessIngestPool(settings, workers=min(workers, len(todo))))
            batch_count = min(MAX_WORKERS, 2 * workers)
        futures = [
            ingest_batch_task.submit(batch, settings, batch_label=str(index), pool=pool)
            for index, batch in enumerate(plan_batches(todo, batch_count))
        ]
        for future in futures:
            outcomes.extend(future.result())
    return outcomes


def _dask_address(value: str | None) -> str | None:
    address = (value or "").strip()
    return address or None


def _max_workers(dask_address: str | None) -> int:
    return MAX_DASK_BATCHES if dask_address not in (None, LOCAL_CLUSTER) else MAX_WORKERS


_SETTINGS_PARAMETERS = (
    "handler",
    "config_file",
    "base_dir",
    "upload_uri",
    "archive_uri",
    "error_uri",
    "checks",
    "handler_params",
    "delete_landing",
)


def _settings_options(parameters: dict[str, Any]) -> dict[str, Any]:
    """The flow parameters that describe the ingest settings (see ``build_settings``)."""
    return {name: parameters[name] for name in _SETTINGS_PARAMETERS}


@flow(name="ingest-landing", task_runner=ThreadPoolTaskRunner(max_workers=16), log_prints=False)
def ingest_landing(
    source: str | list[str],
    handler: str | None = None,
    config_file: str | None = None,
    base_dir: str | None = None,
    upload_uri: str | None = None,
    archive_uri: str | None = None,
    error_uri: str | None = None,
    checks: list[str] | None = None,
    handler_params: dict[str, Any] | None = None,
    workers: int = 4,
    delete_landing: bool = True,
    skip_ingested: bool = True,
    dask_address: str | None = None,
    settle_seconds: float | None = None,
    settle_wait: bool = False,
) -> list[dict[str, Any]]:
    """Ingest every file under a folder or ``s3://bucket/prefix`` (or several), with bounded concurrency.

    Each landing object is published, or quarantined in the error store with a reason sidecar, and only then
    removed from the landing area; objects hit by system errors stay for a retry. Objects whose exact content
    was already ingested are skipped (and removed from the landing area with ``delete_landing``). Returns one
    outcome dict per landing entry, also for ``waiting`` (local files still being written), ``ignored`` and
    unreadable ones (see :mod:`aodncore.ingest.plan`).

    ``settle_seconds``: how long a local file must be unchanged before it is taken (default: the config key
    ``limits.landing_settle_seconds``, else 30 s, :data:`aodncore.limits.LANDING_SETTLE_SECONDS`); with
    ``settle_wait`` the run waits (at most that long) for files still settling instead of leaving them to the next
    run.

    ``workers`` is the number of files processed in parallel, in as many worker processes (at most 16, or 256
    on an existing Dask cluster). ``dask_address`` runs the batches on Dask: ``"local"`` starts a local cluster
    of ``workers`` single-threaded worker processes for the run, anything else is the address of an existing
    scheduler (``tcp://host:8786``) whose workers must run one thread each and use this run's
    ``PREFECT_API_URL``.
    """
    settings_options = _settings_options(locals())
    sources = [source] if isinstance(source, str) else list(source)
    dask_address = _dask_address(dask_address)
    with forward_library_logs("aodncore", logging.INFO):
        return _ingest(
            sources,
            workers=max(1, min(int(workers), _max_workers(dask_address))),
            dask_address=dask_address,
            skip_ingested=skip_ingested,
            artifact_key="ingest-landing-outcomes",
            settings_options=settings_options,
            settle_seconds=settle_seconds,
            settle_wait=settle_wait,
        )


@flow(name="ingest-file", log_prints=False)
def ingest_file(
    source: str,
    handler: str | None = None,
    config_file: str | None = None,
    base_dir: str | None = None,
    upload_uri: str | None = None,
    archive_uri: str | None = None,
    error_uri: str | None = None,
    checks: list[str] | None = None,
    handler_params: dict[str, Any] | None = None,
    delete_landing: bool = True,
    skip_ingested: bool = True,
    settle_seconds: float | None = None,
) -> dict[str, Any]:
    """Ingest one landing object (a local path or ``s3://bucket/key``): published or quarantined, never lost.

    A local file still being written (see ``ingest_landing``'s ``settle_seconds``) is ``waiting``."""
    settings_options = _settings_options(locals())
    with forward_library_logs("aodncore", logging.INFO):
        outcomes = _ingest(
            [source],
            workers=1,
            skip_ingested=skip_ingested,
            artifact_key="ingest-file-outcome",
            single=True,
            settings_options=settings_options,
            settle_seconds=settle_seconds,
        )
    if len(outcomes) != 1:
        raise ValueError(f"ingest_file expects exactly one landing object, found {len(outcomes)} under {source!r}")
    return outcomes[0]
