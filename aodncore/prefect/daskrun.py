"""Run the ``ingest-batch`` tasks of a flow on a Dask cluster through ``prefect-dask``.

Used by ``ingest_landing(..., dask_address=...)``: ``"local"`` starts a ``distributed.LocalCluster`` of worker
processes for the run, any other value is the address of an existing scheduler (``tcp://host:8786``).

* **One thread per worker.** netCDF-C/HDF5 is not thread-safe, so each batch processes its files one after the
  other inside its Dask worker process and no worker may run two batches at once: the local cluster has
  ``threads_per_worker=1``, and an existing cluster whose workers have more than one thread, or share a process
  (``processes=False``), is refused.
* **One Prefect server.** A Dask worker that has no ``PREFECT_API_URL`` starts its own temporary Prefect server
  and its logs never reach the run. The local cluster's workers get the run's API URL in their environment (also
  when the run uses Prefect's ephemeral server, whose URL is a local ``http`` address); an existing cluster is
  refused unless ``PREFECT_API_URL`` is configured for the run and set on every worker.
* **Parent-side bookkeeping.** Workers get the settings without the ingest ledger; the flow records each outcome
  in the ledger and emits the ``done`` progress events when a batch's result comes back, so the ledger stays on
  the flow's machine and progress bars keep working. A batch lost with its worker (e.g. a crash in a C library)
  becomes ``failed`` outcomes: what was not processed stays in the landing area for a retry.
* **Logs.** The batch task forwards ``aodncore`` records to the run's logs from whatever process it runs in; the
  local workers' Prefect log and event queues are flushed before the cluster stops.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from aodncore.ingest.outcome import FAILED, FileOutcome
from aodncore.ingest.runner import IngestSettings, record_outcome
from aodncore.ingest.sources import LandingObject

__all__ = [
    "LOCAL_CLUSTER",
    "MAX_DASK_BATCHES",
    "DaskConfigurationError",
    "resolve_worker_api_url",
    "run_batches_on_dask",
]

logger = logging.getLogger(__name__)

LOCAL_CLUSTER = "local"
"""``dask_address`` value that starts a ``LocalCluster`` of worker processes for the run."""

MAX_DASK_BATCHES = 256
"""At most this many batches (``workers``) on an existing Dask cluster."""

_FLUSH_TIMEOUT = 30.0


class DaskConfigurationError(ValueError):
    """Dask cannot be used as configured (no reachable Prefect server, multi-threaded workers, no workers).

    This module imports neither Prefect nor Dask at import time, so the CLI can name this class cheaply."""


def resolve_worker_api_url(configured: str | None, client_url: str | None, *, existing_cluster: bool) -> str:
    """The Prefect API URL the Dask workers must use; :class:`DaskConfigurationError` says why Dask cannot be used.

    :param configured: ``PREFECT_API_URL`` as the run sees it (None on Prefect's ephemeral server)
    :param client_url: the URL of the run's API client (the ephemeral server's address when not configured)
    :param existing_cluster: the workers belong to a cluster started elsewhere
    """
    if existing_cluster and not configured:
        raise DaskConfigurationError(
            "a Dask cluster started elsewhere needs a Prefect server it can reach: set PREFECT_API_URL for this "
            "run and on every Dask worker (Prefect's ephemeral server would make each worker start its own)"
        )
    url = (configured or client_url or "").rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.hostname == "ephemeral-prefect":
        raise DaskConfigurationError(
            "Dask workers need a Prefect API server reachable over HTTP, and this run has none "
            f"({url or 'no API URL'}): set PREFECT_API_URL or run through the aodncore CLI"
        )
    return url


def _run_api_url(existing_cluster: bool) -> str:
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL

    context = FlowRunContext.get()
    client = getattr(context, "client", None)
    client_url = str(client.api_url) if client is not None else None
    return resolve_worker_api_url(PREFECT_API_URL.value(), client_url, existing_cluster=existing_cluster)


def _worker_facts() -> tuple[str, int, str | None]:
    """Runs on each worker of an existing cluster: its host, process id and the Prefect API URL it would use."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return socket.gethostname(), os.getpid(), str(url) if url else None


async def _flush_prefect_queues(timeout: float) -> None:
    """Runs on each worker: send the queued log records and events of finished task runs to the API now.

    Worker processes can be stopped without running exit hooks, which would drop the last records.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    await APILogWorker.drain_all(timeout=timeout)
    await EventsWorker.drain_all(timeout=timeout)


def _mirror_library_logging(client: Any) -> None:
    from aodncore.prefect._daskplugin import LibraryLoggingPlugin

    library_logger = logging.getLogger("aodncore")
    client.register_plugin(LibraryLoggingPlugin(library_logger.level, library_logger.propagate))


def _check_existing_workers(client: Any, address: str) -> None:
    nthreads = client.nthreads()
    if not nthreads:
        raise DaskConfigurationError(f"the Dask cluster at {address} has no workers")
    threaded = sorted(worker for worker, count in nthreads.items() if count != 1)
    if threaded:
        raise DaskConfigurationError(
            f"the Dask workers at {address} must run one thread each (netCDF/HDF5 is not thread-safe); "
            f"{len(threaded)} of {len(nthreads)} have more (start them with --nthreads 1)"
        )
    facts = client.run(_worker_facts)
    processes = [(host, pid) for host, pid, _ in facts.values()]
    if len(set(processes)) != len(processes) or (socket.gethostname(), os.getpid()) in processes:
        raise DaskConfigurationError(
            f"the Dask workers at {address} must each have a process of their own (netCDF/HDF5 is not "
            "thread-safe): some share one, or run in this process"
        )
    missing = sorted(worker for worker, (_, _, url) in facts.items() if not url)
    if missing:
        raise DaskConfigurationError(
            f"{len(missing)} Dask worker(s) at {address} have no PREFECT_API_URL: they would start their own "
            "temporary Prefect server and their logs would not reach this run"
        )


def _task_runner(address: str, batches: int, api_url: str) -> Any:
    from prefect_dask import DaskTaskRunner

    if address == LOCAL_CLUSTER:
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": batches,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
                # set in each worker process before it starts (also for workers the nanny restarts)
                "env": {"PREFECT_API_URL": api_url},
            },
        )
    return DaskTaskRunner(address=address)


def _lost_batch(batch: Sequence[LandingObject], error: BaseException) -> list[FileOutcome]:
    reason = f"Dask batch failed: {type(error).__name__}: {error}"
    return [FileOutcome(source=obj.uri, name=obj.name, status=FAILED, error=reason) for obj in batch]


def _record(settings: IngestSettings, batch: Sequence[LandingObject], outcomes: Sequence[FileOutcome]) -> None:
    for obj, outcome in zip(batch, outcomes, strict=True):
        record_outcome(settings, obj, outcome)


def run_batches_on_dask(
    batches: Sequence[Sequence[LandingObject]],
    settings: IngestSettings,
    address: str,
    *,
    on_outcome: Callable[[int, FileOutcome], None] | None = None,
) -> list[FileOutcome] | dict[str, int]:
    """Run one ``ingest-batch`` task per batch on the Dask cluster ``address`` (or ``"local"``) and return the
    outcomes in batch order. Must be called inside a flow run.

    With ``on_outcome`` each outcome is handed to it instead, as ``(batch index, outcome)`` when its batch comes
    back (in batch order within a batch; batches in the order they finish), and the count per status is returned:
    no batch's outcomes are held once recorded."""
    from distributed import as_completed

    from aodncore.prefect.tasks import ingest_batch_task

    if not batches:
        return [] if on_outcome is None else {}
    existing_cluster = address != LOCAL_CLUSTER
    api_url = _run_api_url(existing_cluster)
    worker_settings = settings.for_worker()
    results: dict[int, list[FileOutcome]] = {}
    counts: Counter[str] = Counter()
    with _task_runner(address, len(batches), api_url) as runner:
        client = runner.client  # connects, or starts the local cluster
        if existing_cluster:
            _check_existing_workers(client, address)
        else:
            _mirror_library_logging(client)
        futures = [
            runner.submit(
                ingest_batch_task,
                parameters={"objects": list(batch), "settings": worker_settings, "batch_label": str(index)},
            )
            for index, batch in enumerate(batches)
        ]
        index_of = {future.wrapped_future.key: index for index, future in enumerate(futures)}
        try:
            for done in as_completed([future.wrapped_future for future in futures], loop=client.loop):
                index = index_of[done.key]
                try:
                    # a batch holding a failed file ends Failed but still carries every outcome
                    result = futures[index].result(raise_on_failure=False)
                    if isinstance(result, BaseException):
                        raise result
                    outcomes = list(result)
                except Exception as error:  # noqa: BLE001 - e.g. KilledWorker: report the batch, lose nothing
                    logger.error("batch %d (%d object(s)) failed on Dask: %s: %s",
                                 index, len(batches[index]), type(error).__name__, error)
                    outcomes = _lost_batch(batches[index], error)
                _record(settings, batches[index], outcomes)
                if on_outcome is None:
                    results[index] = outcomes
                    continue
                for outcome in outcomes:
                    counts[outcome.status] += 1
                    on_outcome(index, outcome)
        finally:
            if not existing_cluster:  # the local workers stop with the cluster; long-lived ones flush on their own
                try:
                    client.run(_flush_prefect_queues, _FLUSH_TIMEOUT)
                except Exception as error:  # noqa: BLE001 - only log delivery is at stake
                    logger.warning("could not flush the Prefect logs of the Dask workers: %s", error)
    if on_outcome is not None:
        return dict(counts)
    return [outcome for index in sorted(results) for outcome in results[index]]
