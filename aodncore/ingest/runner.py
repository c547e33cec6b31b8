"""Ingest landing objects with a handler class: fetch, run the handler, publish or quarantine, then clean up.

This is the per-file unit of work of the Prefect flows (and usable without Prefect). For each landing object:

1. the object is copied (or downloaded) into a private working folder — the landing object stays untouched;
2. the handler class runs on that copy (``HandlerBase.run()``: resolve, check, publish, notify);
3. success → ``published``; a data error (``PipelineProcessingError``) → the original content and a reason
   sidecar go to the error store → ``quarantined``; any other error → ``failed``;
4. only a ``published`` or safely ``quarantined`` object is removed from the landing area; a ``failed`` one stays
   for a retry (and the pipeline owner is notified by the handler's notification rules);
5. the outcome is written to the ingest ledger.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aodncore.ingest import progress
from aodncore.ingest.ledger import IngestLedger
from aodncore.ingest.outcome import FAILED, PUBLISHED, QUARANTINED, SKIPPED, FileOutcome
from aodncore.ingest.quarantine import quarantine_file
from aodncore.ingest.sources import LandingObject, LandingObjectChangedError, fetch, remove_landing
from aodncore.pipeline.common import PipelineFilePublishType
from aodncore.pipeline.exceptions import PipelineProcessingError
from aodncore.pipeline.handlerref import handler_class_name
from aodncore.pipeline.log import get_pipeline_logger
from aodncore.pipeline.steps.manifestpaths import LandingContext
from aodncore.util.misc import format_exception

__all__ = ["IngestSettings", "RunContext", "ingest_object", "ingest_objects", "outcome_from_handler", "record_outcome"]

logger = logging.getLogger(__name__)


@dataclass
class _Request:
    id: str | None


class RunContext:
    """What a handler expects from its ``celery_task``: an id, a name, a pipeline name and a logger."""

    def __init__(self, run_id: str | None, name: str, pipeline_name: str, logger: Any) -> None:
        self.request = _Request(run_id)
        self.name = name
        self.pipeline_name = pipeline_name
        self.logger = logger

    def update_state(self, state: str) -> None:
        """Handlers report each state change here; nothing to do outside Celery."""


@dataclass
class IngestSettings:
    """Everything the per-file unit needs, passed explicitly.

    :param handler_class: a ``HandlerBase`` subclass (classic handlers run unchanged), a ``functools.partial`` of
        one, or another callable returning a handler; ``handler_name`` names it
    :param config: the ``LazyConfigManager`` of the pipeline
    :param handler_kwargs: keyword arguments for the handler constructor (``check_params``, …)
    :param work_dir: where landing objects are copied to while they are processed
    :param pipeline_name: names the run in logs and the error store folder
    :param delete_landing: remove published/quarantined objects from the landing area
    :param ledger: the ingest record (optional)
    :param run_id: id of the surrounding run (e.g. the Prefect flow run)
    """

    handler_class: Callable[..., Any]
    config: Any
    handler_kwargs: Mapping[str, Any] = field(default_factory=dict)
    work_dir: str | None = None
    pipeline_name: str = "aodncore"
    delete_landing: bool = True
    ledger: IngestLedger | None = None
    run_id: str | None = None
    log_name: str = "aodncore.ingest.handler"

    @property
    def handler_name(self) -> str:
        """The handler's class name (that of the class a partial wraps), for logs, artifacts and reports."""
        return handler_class_name(self.handler_class)

    @property
    def error_uri(self) -> str:
        return self.config.pipeline_config["global"]["error_uri"]

    @property
    def upload_uri(self) -> str:
        return self.config.pipeline_config["global"]["upload_uri"]


def _file_rows(collection: Any) -> list[dict[str, Any]]:
    rows = []
    for pipeline_file in collection or ():
        rows.append(
            {
                "name": pipeline_file.name,
                "check_passed": pipeline_file.check_passed,
                "publish_type": pipeline_file.publish_type.name,
                "dest_path": pipeline_file.dest_path or "",
                "stored": pipeline_file.is_stored,
                "archived": pipeline_file.is_archived,
            }
        )
    return rows


def _summarise_checks(rows: list[dict[str, Any]]) -> str:
    checked = [row["check_passed"] for row in rows if row["check_passed"] != "N/A"]
    if not checked:
        return "n/a"
    return "passed" if all(value == "True" for value in checked) else "failed"


def _summarise_destination(rows: list[dict[str, Any]], upload_uri: str) -> str:
    destinations = [row["dest_path"] for row in rows if row["dest_path"] and row["stored"]]
    if len(destinations) == 1:
        return f"{upload_uri.rstrip('/')}/{destinations[0]}"
    if destinations:
        return f"{len(destinations)} files under {upload_uri}"
    return ""


def _all_stored(rows: list[dict[str, Any]]) -> bool:
    """True when every file whose publish type includes storing was stored (and there was at least one)."""
    storable = [row for row in rows if PipelineFilePublishType[row["publish_type"]].is_store_type]
    return bool(storable) and all(row["stored"] for row in storable)


def outcome_from_handler(obj: LandingObject, handler: Any, status: str, upload_uri: str) -> FileOutcome:
    """Summarise a finished handler run as a :class:`FileOutcome`."""
    rows = _file_rows(handler.file_collection)
    publish_types = sorted({row["publish_type"] for row in rows})
    return FileOutcome(
        source=obj.uri,
        name=obj.name,
        status=status,
        check_result=_summarise_checks(rows),
        publish_type=",".join(publish_types),
        destination=_summarise_destination(rows, upload_uri),
        stored=_all_stored(rows),
        archived=any(row["archived"] for row in rows),
        error=None if handler.error is None else f"{type(handler.error).__name__}: {handler.error}",
        files=rows,
    )


def _handler_logger(settings: IngestSettings, obj: LandingObject) -> Any:
    return get_pipeline_logger(settings.log_name, extra={"landing_object": obj.uri})


def landing_context(obj: LandingObject) -> LandingContext:
    """Where ``obj`` was landed, for the resolve step (its manifests' allowed roots and relative entries).

    The area is the landing area it was listed from, or, when unknown, the object's own folder.
    """
    location = obj.uri if obj.is_s3 else (obj.path or obj.uri)
    if obj.area:
        area = obj.area
    elif obj.is_s3:
        area = obj.uri.rsplit("/", 1)[0] + "/"
    else:
        area = os.path.dirname(location)
    return LandingContext(area=area, location=location)


def _run_handler(local_path: str, obj: LandingObject, settings: IngestSettings) -> Any:
    context = RunContext(settings.run_id, "ingest", settings.pipeline_name, _handler_logger(settings, obj))
    handler = settings.handler_class(
        local_path, config=settings.config, celery_task=context, upload_path=obj.uri, **settings.handler_kwargs
    )
    # set as an attribute, not a constructor keyword: classic handlers with fixed signatures keep working
    handler.landing = landing_context(obj)
    handler.run()
    return handler


def _quarantine(obj: LandingObject, local_path: str, handler: Any, settings: IngestSettings, ingest_id: str) -> Any:
    return quarantine_file(
        local_path,
        error_uri=settings.error_uri,
        pipeline_name=settings.pipeline_name,
        ingest_id=ingest_id,
        source=obj.uri,
        fingerprint=obj.fingerprint,
        error=handler.error,
        error_details=handler.error_details,
        collection=handler.file_collection,
        handler_name=type(handler).__name__,
    )


def record_outcome(settings: IngestSettings, obj: LandingObject, outcome: FileOutcome) -> None:
    """Parent-side bookkeeping of one finished object: write the ingest ledger (best effort), report progress."""
    if settings.ledger is not None:
        try:
            settings.ledger.record(obj, outcome, run_id=settings.run_id)
        except Exception as error:  # noqa: BLE001 - the record is best effort; the outcome stands
            logger.error("could not record the outcome of %s in the ingest ledger: %s", obj.uri, error)
    progress.emit("done", outcome)


def ingest_object(obj: LandingObject, settings: IngestSettings) -> FileOutcome:
    """Ingest one landing object; never raises for problems with the object itself."""
    ingest_id = uuid.uuid4().hex[:12]
    scratch = tempfile.mkdtemp(prefix="aodncore-ingest-", dir=settings.work_dir)
    try:
        outcome = _ingest_in(scratch, obj, settings, ingest_id)
    except Exception as error:  # noqa: BLE001 - e.g. a handler that cannot be built: keep the object for a retry
        logger.error("could not ingest %s: %s", obj.uri, format_exception(error))
        outcome = FileOutcome(source=obj.uri, name=obj.name, status=FAILED, error=format_exception(error))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    record_outcome(settings, obj, outcome)
    return outcome


def _ingest_in(scratch: str, obj: LandingObject, settings: IngestSettings, ingest_id: str) -> FileOutcome:
    try:
        local_path = str(fetch(obj, os.path.join(scratch, "landing")))
    except LandingObjectChangedError as error:
        logger.warning("%s", error)
        return FileOutcome(source=obj.uri, name=obj.name, status=SKIPPED, error=str(error))
    except Exception as error:  # noqa: BLE001 - e.g. the landing store is unreachable
        logger.error("could not fetch %s: %s", obj.uri, format_exception(error))
        return FileOutcome(source=obj.uri, name=obj.name, status=FAILED, error=format_exception(error))

    handler = _run_handler(_handler_input(local_path, scratch, obj.name), obj, settings)
    if handler.error is None:
        outcome = outcome_from_handler(obj, handler, PUBLISHED, settings.upload_uri)
    elif isinstance(handler.error, PipelineProcessingError):
        outcome = outcome_from_handler(obj, handler, QUARANTINED, settings.upload_uri)
        try:
            record = _quarantine(obj, local_path, handler, settings, ingest_id)
        except Exception as error:  # noqa: BLE001 - then the landing object must stay
            logger.error("could not quarantine %s: %s", obj.uri, format_exception(error))
            outcome.status = FAILED
            outcome.error = f"{outcome.error}; quarantine failed: {format_exception(error)}"
            return outcome
        outcome.error_uri = record.file_uri
        logger.info("%s quarantined in %s: %s", obj.name, record.file_uri, outcome.error)
    else:
        outcome = outcome_from_handler(obj, handler, FAILED, settings.upload_uri)
        return outcome

    if settings.delete_landing:
        try:
            remove_landing(obj)
        except Exception as error:  # noqa: BLE001 - published/quarantined already; report, don't lose the outcome
            logger.error(
                "%s was %s but could not be removed from the landing area: %s",
                obj.uri,
                outcome.status,
                format_exception(error),
            )
    return outcome


def _handler_input(local_path: str, scratch: str, name: str) -> str:
    """The handler's own path to the fetched file, so that the fetched path itself stays for the error store.

    A hard link (same scratch folder, so normally the same file system) costs no copy; a copy is the fallback.
    """
    processing_dir = os.path.join(scratch, "processing")
    os.makedirs(processing_dir)
    processing_path = os.path.join(processing_dir, name)
    try:
        os.link(local_path, processing_path)
    except OSError:  # e.g. a file system without hard links
        shutil.copy2(local_path, processing_path)
    return processing_path


def ingest_objects(objects: Iterable[LandingObject], settings: IngestSettings) -> list[FileOutcome]:
    """Ingest landing objects one after the other."""
    return [ingest_object(obj, settings) for obj in objects]
