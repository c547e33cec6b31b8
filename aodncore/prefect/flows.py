"""Ready-made flows: ``ingest_file`` (one landing object) and ``ingest_landing`` (everything under a prefix).

Cost model (measured on 2 cores, see BENCHMARKS.md): a Prefect task run costs more than the whole classic
per-file pipeline, so the flows never run a task per step per file. ``ingest_landing`` lists the landing area,
**claims** the objects in the ingest record (skipping content already ingested and objects another run is
processing), splits the rest into a few balanced batches (``workers`` on Dask, up to twice ``workers`` with the
process pool) and runs one ``ingest-batch`` task per batch on Dask, or, with the pool, one per worker taking the
batches' files from a shared queue, so that no worker idles at the end (:mod:`aodncore.prefect.batchrun`). Per-file
detail is in the logs, the outcome table artifact and one Prefect event per file (:mod:`aodncore.prefect.fileevents`).

What a user sees is true everywhere:

* the flow run (and each ``ingest-batch`` task run) ends **Failed** when a file failed, **Completed** named
  ``Quarantined`` when files were only refused, **Completed** otherwise (:mod:`aodncore.prefect.states`);
* the result (:class:`~aodncore.ingest.result.IngestResult` as JSON) is persisted, so ``state.result()`` works
  from the API: a full outcome for every entry needing attention, and for entries published, skipped as already
  ingested or ignored a count per reason with the first few listed — so a run over 100,000 objects returns a few
  kilobytes, not one outcome per object (the state message still counts every entry); with ``report_path`` every
  entry is also written to a JSON-lines report as the run goes (:mod:`aodncore.ingest.report`);
* runs are named after their source and start time; artifact keys name the pipeline (handler).

Exclusive processing: every object is claimed (owner = this run, lease renewed in the background) before it is
processed and released when its outcome is recorded, so overlapping runs — a slow interval scan, duplicate S3
events, workers on several machines sharing a PostgreSQL ingest record — never process one object at the same
time; what another run holds is reported ``skipped`` ("in progress elsewhere").

Parameters are plain strings and numbers so that the flows can be deployed and triggered from the UI, the CLI or
an S3 event; secrets are refused as parameters (:mod:`aodncore.prefect.credentials`).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from prefect import Flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from aodncore.ingest import progress
from aodncore.ingest.configure import build_settings
from aodncore.ingest.names import shown
from aodncore.ingest.outcome import FAILED, IGNORED, PUBLISHED, QUARANTINED, SKIPPED, WAITING, FileOutcome
from aodncore.ingest.parallel import available_cores
from aodncore.ingest.plan import ALREADY_INGESTED, TODO, PlanItem, plan_landing, resolve_settle_seconds
from aodncore.ingest.record import IngestRecord, RecordWriter, new_owner_id
from aodncore.ingest.report import RunReport
from aodncore.ingest.result import BatchOutcomes, IngestResult
from aodncore.ingest.runner import IngestSettings, dispose_skipped, in_run_folder, remove_dealt_with
from aodncore.ingest.scratch import run_scratch
from aodncore.ingest.sources import LandingObject
from aodncore.limits import LANDING_SETTLE_SECONDS
from aodncore.prefect import clienttls, fastengine
from aodncore.prefect.artifacts import create_failure_summary, create_result_table, sanitise_key
from aodncore.prefect.batchrun import MAX_WORKERS, plan_batches
from aodncore.prefect.batchrun import run_batches_here as _run_batches_here
from aodncore.prefect.credentials import refuse_secrets_in_parameters, run_credentials
from aodncore.prefect.daskrun import LOCAL_CLUSTER, MAX_DASK_BATCHES, run_batches_on_dask
from aodncore.prefect.fileevents import FileEventEmitter
from aodncore.prefect.logbridge import context_thread_pool, forward_library_logs
from aodncore.prefect.states import IngestRunFailed, final_state

__all__ = ["MAX_FAILURE_REPORTS", "MAX_WORKERS", "IngestFlow", "ingest_file", "ingest_landing", "plan_batches"]

MAX_FAILURE_REPORTS = 20
"""Refused or failed files reported in full in a run's failure report (the rest are counted; the table lists
every file)."""

IN_PROGRESS_ELSEWHERE = "in progress elsewhere (claimed by another run)"

clienttls.install()  # every flow run makes a Prefect API client: without this, each loads the CA bundle anew
fastengine.install()  # runs created with their name: no rename request, no storage look-up for it

DRAIN_THREADS = 8
"""Already-ingested S3 landing objects removed at once (each a HEAD confirming the listed content, then a DELETE)."""


class IngestFlow(Flow):
    """A ``Flow`` that refuses secrets in its parameters *before* Prefect stores them with the flow run, and,
    called directly, raises :class:`~aodncore.prefect.states.IngestRunFailed` (carrying the run's result) when
    the run ended Failed because files failed."""

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        state = super().__call__(*args, return_state=True, **kwargs)
        if return_state:
            return state
        if state.is_failed():
            result = state.result(raise_on_failure=False)
            if isinstance(result, BaseException):
                raise result
            raise IngestRunFailed(state.message or "ingest failed", result)
        return state.result()

    def with_options(self, **options: Any) -> IngestFlow:  # type: ignore[override]
        """Prefect's ``with_options``, keeping this class's behaviour."""
        copy = super().with_options(**options)
        copy.__class__ = IngestFlow
        return copy  # type: ignore[return-value]

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        refuse_secrets_in_parameters(parameters)
        return super().serialize_parameters(parameters)


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


class _RunName:
    """A flow's ``flow_run_name``: ``<kind> <source> @ <UTC start time>`` (the flow-run name Prefect shows).

    Called without arguments (as Prefect calls it) it reads the run's parameters; :meth:`name_for_parameters`
    names a run from its call parameters before it exists (:mod:`aodncore.prefect.fastengine`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self) -> str:
        from prefect.runtime import flow_run

        return self.name_for_parameters(flow_run.parameters)

    def name_for_parameters(self, parameters: dict[str, Any]) -> str:
        """The run's name for these parameters, at this time."""
        source = parameters.get("source")
        sources = [source] if isinstance(source, str) else list(source or [])
        where = sources[0] if sources else "?"
        if len(sources) > 1:
            where += f" (+{len(sources) - 1})"
        return f"{self.kind} {where} @ {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"

    def __repr__(self) -> str:
        return f"_RunName({self.kind!r})"


def _publish_artifacts(result: IngestResult, key: str) -> None:
    if not result.total:
        return
    create_result_table(result, key=key)
    failures = [outcome for outcome in result.outcomes if outcome.status in (QUARANTINED, FAILED)]
    if failures:
        create_failure_summary(failures, key=f"{key}-refused", limit=MAX_FAILURE_REPORTS)


def _skipped(obj: LandingObject, note: str) -> FileOutcome:
    return FileOutcome(source=shown(obj.uri), name=shown(obj.name), status=SKIPPED, note=note)


def _the_one_item(source: str, items: Iterable[PlanItem]) -> list[PlanItem]:
    """The landing entry ``source`` names exactly (an S3 listing is by prefix: ``s3://b/x.nc`` also lists
    ``x.nc.gz``, which an event for ``x.nc`` must not ingest); empty when it is gone."""
    try:
        found = list(items)
    except FileNotFoundError:  # a local file that is gone
        return []
    if source.startswith("s3://"):
        found = [item for item in found if item.uri == source]
    if len(found) > 1:
        raise ValueError(f"ingest_file expects exactly one landing object, found {len(found)} at {source!r}")
    return found


def _gone_object_outcome(source: str, record: IngestRecord) -> FileOutcome:
    """An event for an object no longer in the landing area: a no-op success if it was ingested or another run
    has it; otherwise an error (nothing to ingest, and nothing says why)."""
    if "://" not in source:  # a local path: the record knows it by its file:// URI
        from pathlib import Path

        source = Path(source).absolute().as_uri()
    name = source.rstrip("/").rsplit("/", 1)[-1]
    latest = record.latest(source)
    if latest is not None and latest.done:
        note = f"{ALREADY_INGESTED}: {latest.status}"
    elif (claim := record.claim_of(source)) is not None and claim.expires_at > time.time():
        note = IN_PROGRESS_ELSEWHERE
    else:
        raise ValueError(f"ingest_file: no landing object at {source!r}, and the ingest record has no ingest of it")
    return FileOutcome(source=shown(source), name=shown(name), status=SKIPPED, note=note)


def _ingest(
    sources: Sequence[str],
    *,
    workers: int,
    skip_ingested: bool,
    artifact_kind: str,
    settings_options: dict[str, Any],
    credentials: dict[str, str | None],
    settle_seconds: float | None = None,
    settle_wait: bool = False,
    single: bool = False,
    dask_address: str | None = None,
    report_path: str | None = None,
) -> IngestResult:
    with ExitStack() as closing:
        # opened first: a bad report path fails the run before anything is done
        report = closing.enter_context(RunReport(report_path, sources=sources)) if report_path else None
        result, handler_name = _ingest_reported(
            sources, workers=workers, skip_ingested=skip_ingested, settings_options=settings_options,
            credentials=credentials, settle_seconds=settle_seconds, settle_wait=settle_wait, single=single,
            dask_address=dask_address, report=report)
    _publish_artifacts(result, sanitise_key(f"{artifact_kind}-{handler_name}") or artifact_kind)
    return result


def _ingest_reported(
    sources: Sequence[str],
    *,
    workers: int,
    skip_ingested: bool,
    settings_options: dict[str, Any],
    credentials: dict[str, str | None],
    settle_seconds: float | None,
    settle_wait: bool,
    single: bool,
    dask_address: str | None,
    report: RunReport | None,
) -> tuple[IngestResult, str]:
    """The run itself (see ``_ingest``); returns its result and the handler's name."""
    run_id = _flow_run_id()
    with run_credentials(**credentials) as provided:
        settings = build_settings(run_id=run_id, **settings_options)
        if provided.smtp_password:
            _set_smtp_password(settings, provided.smtp_password)
        record = settings.ledger
        assert record is not None
        emitter = FileEventEmitter(settings.handler_name, run_id)
        try:
            with run_scratch(settings.work_dir or tempfile.gettempdir()) as scratch:
                settings = in_run_folder(settings, scratch.path)
                settle = resolve_settle_seconds(settings.config, settle_seconds, LANDING_SETTLE_SECONDS.default)
                items: Iterable[PlanItem] = plan_landing(sources, settle_seconds=settle, wait=settle_wait,
                                                         ledger=record if skip_ingested else None)
                if single:
                    items = _the_one_item(sources[0], items)
                    if not items:
                        outcome = _gone_object_outcome(sources[0], record)
                        get_run_logger().info("%s: %s", outcome.name, outcome.note)
                        result = IngestResult(report=report)
                        result.add(outcome)
                        return result, settings.handler_name
                with RecordWriter(record, new_owner_id(run_id), run_id=run_id,
                                  after_commit=_landing_remover(settings)) as writer:
                    settings.ledger = writer  # outcomes are written in batches, each releasing its claim
                    settings.defer_landing_removal = True  # ... and only then leave the landing area
                    settings.outcome_hooks = (*settings.outcome_hooks, emitter)
                    if report is not None:  # processed files are reported as they finish
                        settings.outcome_hooks = (*settings.outcome_hooks, report.outcome_hook)
                    result = _process(items, settings, writer, skip_ingested=skip_ingested, workers=workers,
                                      dask_address=dask_address, report=report)
        finally:
            emitter.close()
            record.close()
    return result, settings.handler_name


def _landing_remover(settings: IngestSettings) -> Any:
    """After a batch of outcomes is recorded: remove its published and quarantined objects from the landing area
    (a crash before that leaves them for the next run, which finds them ingested and drains them)."""
    if not settings.delete_landing:
        return None

    def remove(items: list[tuple[LandingObject, FileOutcome]]) -> None:
        for obj, outcome in items:
            if outcome.status in (PUBLISHED, QUARANTINED):
                remove_dealt_with(obj, outcome)

    return remove


def _set_smtp_password(settings: IngestSettings, password: str) -> None:
    from aodncore.pipeline.defaultconfig import _freeze

    merged = {section: dict(values) for section, values in settings.config.pipeline_config.items()}
    merged.setdefault("mail", {})["smtp_pass"] = password
    settings.config.__dict__["pipeline_config"] = _freeze(merged)


def _process(
    items: Iterable[PlanItem],
    settings: IngestSettings,
    writer: RecordWriter,
    *,
    skip_ingested: bool,
    workers: int,
    dask_address: str | None,
    report: RunReport | None = None,
) -> IngestResult:
    """Act on the plan: claim what is to do, drain skipped content from the landing area, process the claimed
    objects here or on Dask. Every landing entry is counted in the result (and written to the ``report``); those
    needing no attention are summarised there as they stream past (never all held in memory)."""
    candidates: list[LandingObject] = []
    result = IngestResult(report=report)
    with _InPlanOrder(settings, result) as ordered:
        for item in items:
            if item.status == TODO:
                assert item.obj is not None
                candidates.append(item.obj)
            elif item.status == SKIPPED:
                assert item.obj is not None
                ordered.dispose(item.obj)
            else:
                ordered.add(item.outcome())
    # the plan looked the candidates up already; claiming checks again, after the claim, for a run that
    # finished one of them meanwhile
    claim = writer.claim(candidates, skip_done=skip_ingested, look_up_first=False)
    result.extend(dispose_skipped(obj, settings) for obj in claim.done)
    result.extend(_skipped(obj, IN_PROGRESS_ELSEWHERE) for obj in claim.elsewhere)
    todo = claim.claimed
    counts = result.counts
    get_run_logger().info(
        "%d landing object(s) found, %d already ingested, %d in progress elsewhere, %d waiting, %d ignored, "
        "%d unreadable, %d to process with %d worker(s)%s (handler %s)",
        len(todo) + result.total, counts[SKIPPED] - len(claim.elsewhere), len(claim.elsewhere), counts[WAITING],
        counts[IGNORED], counts[FAILED], len(todo), workers,
        f" on Dask ({dask_address})" if dask_address else "", settings.handler_name,
    )
    progress.emit("planned", len(todo) + result.total)
    for outcome in result.outcomes:
        progress.emit("done", outcome)
    if result.total > len(result.outcomes):
        progress.emit("counted", result.total - len(result.outcomes))  # finished, summarised, not listed
    # processed files join the result as they finish, in batch order at the end (reported as they finished, by
    # the report's outcome hook); the to-do list is the batches' from here on
    processed = BatchOutcomes(result)
    del candidates, claim
    if dask_address:
        run_batches_on_dask(plan_batches(todo, workers), settings, dask_address, on_outcome=processed.add)
    else:
        _run_batches_here(todo, settings, workers, on_outcome=processed.add)
    processed.join()
    return result


class _InPlanOrder:
    """Adds the outcomes of the entries not to be processed to the run's result, in plan order.

    Removing an already-ingested object from an S3 landing area costs two requests (HEAD to confirm the listed
    content, then DELETE), so those run on a few threads (in the run's context, so their warnings reach its
    logs); at most a bounded number are pending at a time, and each outcome joins the result in plan order once
    it and every one before it are done.
    """

    def __init__(self, settings: IngestSettings, result: IngestResult, threads: int = DRAIN_THREADS) -> None:
        self.settings = settings
        self.result = result
        self._threads = threads if settings.delete_landing else 0
        self._window = 4 * max(threads, 1)
        self._pool: Any = None
        self._pending: deque[Future[FileOutcome] | FileOutcome] = deque()

    def __enter__(self) -> _InPlanOrder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self._collect(wait_for=0)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def add(self, outcome: FileOutcome) -> None:
        if self._pending:
            self._pending.append(outcome)
        else:
            self.result.add(outcome)

    def dispose(self, obj: LandingObject) -> None:
        if not self._threads or not obj.is_s3:
            self.add(dispose_skipped(obj, self.settings))
            return
        if self._pool is None:
            self._pool = context_thread_pool(self._threads, thread_name_prefix="aodncore-drain")
        self._pending.append(self._pool.submit(dispose_skipped, obj, self.settings))
        self._collect(wait_for=self._window)

    def _collect(self, wait_for: int) -> None:
        """Move finished outcomes at the head to the result; wait for the head while more than ``wait_for``
        are pending."""
        while self._pending:
            head = self._pending[0]
            if isinstance(head, Future):
                if not head.done() and len(self._pending) <= wait_for:
                    return
                head = head.result()
            self._pending.popleft()
            self.result.add(head)


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
_CREDENTIAL_PARAMETERS = ("aws_credentials_block", "sftp_password_secret", "smtp_password_secret")


def _options(parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ingest settings options, credential block names) from the flow's parameters (see ``build_settings``)."""
    refuse_secrets_in_parameters(parameters)  # also for runs created through the API (deployments, UI)
    return ({name: parameters[name] for name in _SETTINGS_PARAMETERS},
            {name: parameters[name] for name in _CREDENTIAL_PARAMETERS})


def _finish(result: IngestResult, what: str) -> Any:
    state = final_state(result.counts, result.to_dict(), what=what)
    logger = get_run_logger()
    logger.log(logging.ERROR if state.is_failed() else logging.INFO, "%s", state.message)
    return state


def ingest_flow(**options: Any) -> Any:
    """Decorator making an :class:`IngestFlow` (the module path of the function is its deployment entry point)."""
    return lambda fn: IngestFlow(fn, **{**_FLOW_OPTIONS, **options})


_FLOW_OPTIONS: dict[str, Any] = {"log_prints": False, "persist_result": True, "result_serializer": "json"}


@ingest_flow(name="ingest-landing", flow_run_name=_RunName("ingest-landing"),
             task_runner=ThreadPoolTaskRunner(max_workers=16))
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
    workers: int | None = None,
    delete_landing: bool = True,
    skip_ingested: bool = True,
    dask_address: str | None = None,
    settle_seconds: float | None = None,
    settle_wait: bool = False,
    report_path: str | None = None,
    aws_credentials_block: str | None = None,
    sftp_password_secret: str | None = None,
    smtp_password_secret: str | None = None,
) -> list[dict[str, Any]]:
    """Ingest every file under a folder or ``s3://bucket/prefix`` (or several), with bounded concurrency.

    Each landing object is published, or quarantined in the error store with a reason sidecar, and only then
    removed from the landing area; objects hit by system errors stay for a retry. Objects whose exact content
    was already ingested are skipped (and removed from the landing area with ``delete_landing``); objects another
    run is processing are skipped too ("in progress elsewhere") and left alone. Returns the run's result as a dict
    (:meth:`aodncore.ingest.result.IngestResult.to_dict`; ``IngestResult.from_dict`` reads it back): ``counts``
    of every landing entry per status, and under ``outcomes`` one outcome dict per entry that needs attention —
    quarantined, failed (also unreadable entries), ``waiting`` (local files still being written, see
    :mod:`aodncore.ingest.plan`), in progress elsewhere — while published entries, entries skipped as already
    ingested and ignored ones are summarised per reason (``summarised``: count, and the first
    :data:`~aodncore.limits.LISTED_PER_REASON` listed under ``outcomes``; ``truncated`` says some are only
    counted). The run ends Failed if any file failed (see :mod:`aodncore.prefect.states`); its state message
    counts every entry.

    ``report_path``: a local file path (of the process running the flow) to write the run's report to — one JSON
    line per landing entry of every status (the outcome dict), written as the run goes
    (:mod:`aodncore.ingest.report`); the file is created (or emptied) when the run starts, and a path that cannot
    be written (or lies inside a local landing ``source``) fails the run at once with a one-line error.

    ``settle_seconds``: how long a local file must be unchanged before it is taken (default: the config key
    ``limits.landing_settle_seconds``, else 30 s, :data:`aodncore.limits.LANDING_SETTLE_SECONDS`); with
    ``settle_wait`` the run waits (at most that long) for files still settling instead of leaving them to the next
    run.

    ``workers`` is the number of files processed in parallel, in as many worker processes (at most 16, or 256
    on an existing Dask cluster; default: the cores available to the process running the flow).
    ``dask_address`` runs the batches on Dask: ``"local"`` starts a local cluster
    of ``workers`` single-threaded worker processes for the run, anything else is the address of an existing
    scheduler (``tcp://host:8786``) whose workers must run one thread each and use this run's
    ``PREFECT_API_URL``. ``aws_credentials_block``, ``sftp_password_secret`` and ``smtp_password_secret`` name
    Prefect blocks holding credentials (:mod:`aodncore.prefect.credentials`).
    """
    settings_options, credentials = _options(locals())
    sources = [source] if isinstance(source, str) else list(source)
    dask_address = _dask_address(dask_address)
    with forward_library_logs("aodncore", logging.INFO):
        result = _ingest(
            sources,
            workers=max(1, min(int(workers or available_cores()), _max_workers(dask_address))),
            dask_address=dask_address,
            skip_ingested=skip_ingested,
            artifact_kind="ingest-landing",
            settings_options=settings_options,
            credentials=credentials,
            settle_seconds=settle_seconds,
            settle_wait=settle_wait,
            report_path=report_path,
        )
        return _finish(result, "ingest-landing")


@ingest_flow(name="ingest-file", flow_run_name=_RunName("ingest-file"))
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
    aws_credentials_block: str | None = None,
    sftp_password_secret: str | None = None,
    smtp_password_secret: str | None = None,
) -> dict[str, Any]:
    """Ingest one landing object (a local path or ``s3://bucket/key``): published or quarantined, never lost.

    An event for an object that was already ingested, or that another run is processing, is a no-op success
    (outcome ``skipped``); a local file still being written (see ``ingest_landing``'s ``settle_seconds``) is
    ``waiting``. The run ends Failed if the file failed. Returns that one entry's outcome dict (one entry is
    always listed in full).
    """
    settings_options, credentials = _options(locals())
    with forward_library_logs("aodncore", logging.INFO):
        result = _ingest(
            [source],
            workers=1,
            skip_ingested=skip_ingested,
            artifact_kind="ingest-file",
            single=True,
            settings_options=settings_options,
            credentials=credentials,
            settle_seconds=settle_seconds,
        )
        state = _finish(result, "ingest-file")
        state.data = state.data["outcomes"][0]
        return state

