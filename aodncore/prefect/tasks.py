"""Prefect tasks: one per pipeline step, plus the batch task the ready-made flows fan out over.

The step tasks call exactly the same code as ``HandlerBase`` (:mod:`aodncore.pipeline.phases` and the step
runners) so a flow can compose ``resolve → check → publish`` in any order, skip a step, or insert its own task.
Tasks that touch storage retry on transient storage errors; data errors (failed checks, bad files) never retry.

Result caching is off for every task: inputs are live objects (collections, configs), and idempotency is
provided by the ingest record rather than Prefect's cache. Every step task is safe to retry (a flow retry, or the
same flow run twice): ``resolve_task`` resolves into ``<output_dir>/<input name>.resolved/``, cleared first, and
``publish_task`` does not store a file twice. Each logs one INFO line summarising what it did.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from aodncore.ingest.logbatch import LogBatch, append_line
from aodncore.ingest.outcome import PUBLISHED, FileOutcome
from aodncore.ingest.runner import IngestSettings, ingest_object
from aodncore.ingest.sources import LandingObject, list_landing
from aodncore.pipeline import phases
from aodncore.pipeline.common import PipelineFilePublishType
from aodncore.pipeline.exceptions import PipelineProcessingError, StorageBrokerError
from aodncore.pipeline.files import PipelineFileCollection
from aodncore.pipeline.log import get_pipeline_logger
from aodncore.prefect.logbridge import forward_library_logs
from aodncore.prefect.states import final_state

__all__ = [
    "check_task",
    "ingest_batch_task",
    "list_landing_task",
    "notify_task",
    "publish_task",
    "resolve_task",
    "retry_on_transient_storage_error",
]

_TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


def retry_on_transient_storage_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition: storage and connection problems yes, data errors no."""
    try:
        state.result()
    except PipelineProcessingError:
        return False
    except (StorageBrokerError, ConnectionError, TimeoutError, OSError):
        return True
    except Exception as error:  # noqa: BLE001 - botocore errors are classified by module
        return type(error).__module__.startswith(("botocore", "urllib3"))
    return False


def _logger() -> Any:
    return get_pipeline_logger(None, logger_function=lambda _name: get_run_logger())


@task(name="resolve", **_TASK_OPTIONS)
def resolve_task(
    input_file: str,
    output_dir: str,
    config: Any,
    resolve_params: Mapping[str, Any] | None = None,
    include_regexes: Sequence[Any] | None = None,
    exclude_regexes: Sequence[Any] | None = None,
    addition_type: PipelineFilePublishType = PipelineFilePublishType.HARVEST_UPLOAD,
    deletion_type: PipelineFilePublishType = PipelineFilePublishType.DELETE_UNHARVEST,
) -> PipelineFileCollection:
    """Resolve an input file (single file, gzip, zip or manifest) into a collection.

    The files are written to ``<output_dir>/<input name>.resolved/``, which is emptied first, so a retry or a
    second run of the same flow starts clean.
    """
    import os
    import shutil

    from aodncore.util.misc import ensure_regex_list

    target = os.path.join(output_dir, os.path.basename(str(input_file).rstrip("/")) + ".resolved")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    logger = _logger()
    collection = phases.resolve_files(
        input_file,
        target,
        config=config,
        logger=logger,
        resolve_params=resolve_params,
        include_regexes=ensure_regex_list(include_regexes) if include_regexes else None,
        exclude_regexes=ensure_regex_list(exclude_regexes) if exclude_regexes else None,
        addition_type=addition_type,
        deletion_type=deletion_type,
    )
    logger.info("resolve: %d file(s) from %s", len(collection), os.path.basename(str(input_file)))
    return collection


@task(name="check", **_TASK_OPTIONS)
def check_task(
    collection: PipelineFileCollection, config: Any, check_params: Mapping[str, Any] | None = None
) -> PipelineFileCollection:
    """Check every file of the collection (raises ``ComplianceCheckFailedError`` if any fails)."""
    logger = _logger()
    try:
        phases.check_files(collection, config=config, logger=logger, check_params=check_params)
    finally:
        results = [f.check_result for f in collection if f.check_result is not None]
        failed = sum(1 for result in results if not result.compliant)
        logger.info("check: %d file(s) checked, %d failed", len(results), failed)
    return collection


@task(
    name="publish",
    retries=2,
    retry_delay_seconds=2,
    retry_condition_fn=retry_on_transient_storage_error,
    **_TASK_OPTIONS,
)
def publish_task(
    collection: PipelineFileCollection,
    config: Any,
    dest_path_function: Callable[[str], str],
    archive_path_function: Callable[[str], str] | None = None,
    harvest_type: str | None = None,
    harvest_params: Mapping[str, Any] | None = None,
    temp_dir: str | None = None,
) -> PipelineFileCollection:
    """Archive, harvest and store a checked collection (files already stored are not stored again on retry)."""
    import tempfile

    from aodncore.pipeline.steps.store import get_store_runner

    logger = _logger()
    global_config = config.pipeline_config["global"]
    upload_runner = get_store_runner(global_config["upload_uri"], config, logger)
    archive_runner = get_store_runner(global_config["archive_uri"], config, logger, archive_mode=True)
    with tempfile.TemporaryDirectory(prefix="aodncore-publish-", dir=temp_dir) as scratch:
        phases.publish_files(
            collection,
            archive_path_function=archive_path_function or dest_path_function,
            dest_path_function=dest_path_function,
            upload_runner=upload_runner,
            archive_runner=archive_runner,
            harvest_type=harvest_type,
            harvest_params=harvest_params,
            temp_dir=scratch,
            config=config,
            logger=logger,
        )
    logger.info("publish: %d file(s) stored, %d archived, %d harvested", sum(1 for f in collection if f.is_stored),
                sum(1 for f in collection if f.is_archived), sum(1 for f in collection if f.is_harvested))
    return collection


@task(name="notify", **_TASK_OPTIONS)
def notify_task(
    notification_data: Mapping[str, Any],
    recipients: Sequence[str],
    config: Any,
    notify_params: Mapping[str, Any] | None = None,
) -> Any:
    """Send notifications (e-mail, SNS) to ``recipients``; returns the ``NotifyList`` with per-recipient results."""
    from aodncore.pipeline.steps.notify import get_notify_runner

    logger = _logger()
    runner = get_notify_runner(dict(notification_data), config, logger, notify_params)
    result = runner.run(list(recipients)) if recipients else None
    logger.info("notify: %d recipient(s)", len(recipients))
    return result


@task(name="list-landing", retries=2, retry_delay_seconds=2, **_TASK_OPTIONS)
def list_landing_task(source: str) -> list[LandingObject]:
    """Every object waiting in a landing folder, file or ``s3://`` prefix."""
    objects = list(list_landing(source))
    get_run_logger().info("list-landing: %d object(s) in %s", len(objects), source)
    return objects


class _ObjectRecords(list):
    """The log records a worker sent back for one object (``pool.ingest`` adds them here, not to the batch), so
    that the object's status line can join its record before the record is shipped."""

    def add(self, record: logging.LogRecord) -> None:
        self.append(record)


@task(name="ingest-batch", task_run_name="ingest-batch-{batch_label}", **_TASK_OPTIONS)
def ingest_batch_task(
    objects: Sequence[LandingObject],
    settings: IngestSettings,
    batch_label: str = "0",
    pool: Any = None,
    on_outcome: Callable[[FileOutcome], None] | None = None,
) -> Any:
    """Ingest a batch of landing objects (each published or quarantined, never lost); one task run per batch.

    Returns a state carrying the outcomes (a list, in the order of ``objects``): Failed when a file failed,
    Completed (named ``Quarantined`` when files were refused) otherwise — the same rule as the flows
    (:mod:`aodncore.prefect.states`). With ``on_outcome`` (a callable in the process running the task) each
    outcome is handed to it as its file finishes, in the order of ``objects``, and the state carries only the
    batch's count per status (``{"published": 250, "quarantined": 2}``): the ready-made flows fold the outcomes
    into the run's result that way (:class:`~aodncore.ingest.result.BatchOutcomes`) instead of holding one per
    file until the last batch ends.

    With a :class:`~aodncore.ingest.parallel.ProcessIngestPool` the files are processed in its worker processes
    (one at a time per batch) and their log records re-emitted here, those of files that went well joined into
    few records (:class:`~aodncore.ingest.logbatch.LogBatch`); the status line of a refused or failed file
    (``<name>: quarantined (<reason>)``) is the last line of that file's own record
    (:func:`~aodncore.ingest.logbatch.append_line`), so each file costs the run one record, not two. Without a
    pool, in this thread (on Dask: in the worker process running the task), the status line is a record of the
    task run's logger. Either way every ``aodncore`` log line reaches the run's logs.
    """
    with forward_library_logs("aodncore", logging.INFO), LogBatch() as worker_logs:
        logger = get_run_logger()
        outcomes: list[FileOutcome] = []
        counts: Counter[str] = Counter()
        for obj in objects:
            if pool is None:
                outcome, records = ingest_object(obj, settings), []
            else:
                records = _ObjectRecords()
                outcome = pool.ingest(obj, records)
            status_line = None
            if not outcome.ok or outcome.status != PUBLISHED:
                level = logging.INFO if outcome.ok else logging.WARNING
                status_line = f"{outcome.name}: {outcome.status}{f' ({outcome.error})' if outcome.error else ''}"
                if append_line(records, level, status_line):
                    status_line = None  # it travels in the file's own record
            for record in records:
                worker_logs.add(record)
            if status_line is not None:
                logger.log(level, "%s", status_line)
            counts[outcome.status] += 1
            if on_outcome is None:
                outcomes.append(outcome)
            else:
                on_outcome(outcome)
        worker_logs.flush()
        data: Any = outcomes if on_outcome is None else dict(counts)
        state = final_state(counts, data, what=f"batch {batch_label}")
        logger.log(logging.WARNING if state.is_failed() else logging.INFO, "%s", state.message)
        return state
