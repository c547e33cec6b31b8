"""Ingest landing objects with a handler class: fetch, run the handler, publish or quarantine, then clean up.

This is the per-file unit of work of the Prefect flows (and usable without Prefect). For each landing object:

1. the object is copied (or downloaded) into a private working folder — the landing object stays untouched;
2. the handler class runs on that copy (``HandlerBase.run()``: resolve, check, publish, notify);
3. success → ``published``; an error saying the input is bad (:mod:`aodncore.ingest.classify`: processing errors
   and classic input errors such as ``allowed_regexes`` refusals) → the original content and a reason sidecar go to
   the error store → ``quarantined``; any other error (storage, configuration, a crash) → ``failed``;
4. only a ``published`` or safely ``quarantined`` object is removed from the landing area; a ``failed`` one stays
   for a retry (and the pipeline owner is notified by the handler's notification rules);
5. the outcome is written to the ingest ledger.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aodncore.ingest import progress
from aodncore.ingest.classify import is_data_error
from aodncore.ingest.ledger import IngestLedger
from aodncore.ingest.names import local_name_problem, scrub, shown, storable_name, unusable_name_reason
from aodncore.ingest.outcome import FAILED, PUBLISHED, QUARANTINED, SKIPPED, WAITING, FileOutcome
from aodncore.ingest.quarantine import quarantine_file
from aodncore.ingest.scratch import is_run_folder, object_folder
from aodncore.ingest.sources import LandingObject, LandingObjectChangedError, fetch, remove_landing
from aodncore.pipeline.common import PipelineFilePublishType
from aodncore.pipeline.exceptions import InvalidFileNameError
from aodncore.pipeline.handlerref import handler_class_name
from aodncore.pipeline.log import PipelineLoggerAdapter
from aodncore.pipeline.steps.manifestpaths import LandingContext
from aodncore.util.misc import format_exception
from aodncore.util.privatecopies import private_sources
from aodncore.util.workdirs import reused_working_folders

__all__ = [
    "IngestSettings",
    "RunContext",
    "dispose_skipped",
    "in_run_folder",
    "ingest_object",
    "ingest_objects",
    "new_ingest_id",
    "outcome_from_handler",
    "record_outcome",
    "remove_dealt_with",
]

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
    :param outcome_hooks: called with ``(obj, outcome)`` for every finished object, in the process that records
        outcomes (the flow process), e.g. to emit per-file Prefect events
    :param defer_landing_removal: leave removing published/quarantined objects to whoever records the outcomes,
        after the record is written (the flows: so a crash in between leaves the object to be drained, never an
        ingested object the record does not know)
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
    outcome_hooks: tuple[Callable[[LandingObject, FileOutcome], None], ...] = ()
    defer_landing_removal: bool = False

    def for_worker(self) -> IngestSettings:
        """A copy for a worker process: no ingest record and no hooks (the parent records and reports)."""
        return replace(self, ledger=None, outcome_hooks=())

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


def failed_check_names(handler: Any) -> list[str]:
    """The checks that failed in a handler run: the compliance suites named in a failed file's check log (the
    checker's report names its suite), else the file's check type (e.g. ``FORMAT_CHECK``)."""
    suites = list((getattr(handler, "check_params", None) or {}).get("checks") or ())
    names: dict[str, None] = {}
    for pipeline_file in handler.file_collection or ():
        result = pipeline_file.check_result
        if result is None or result.compliant:
            continue
        lines = {str(line).strip() for line in result.log or ()}
        found = [suite for suite in suites if suite in lines]
        for name in found or [pipeline_file.check_type.name]:
            names.setdefault(name, None)
    return list(names)


def outcome_from_handler(obj: LandingObject, handler: Any, status: str, upload_uri: str,
                         describe: Any = shown) -> FileOutcome:
    """Summarise a finished handler run as a :class:`FileOutcome` (``describe`` makes text fit to be read)."""
    rows = _file_rows(handler.file_collection)
    for row in rows:
        row["name"] = shown(row["name"])
        row["dest_path"] = shown(row["dest_path"])
    publish_types = sorted({row["publish_type"] for row in rows})
    return FileOutcome(
        source=shown(obj.uri),
        name=shown(obj.name),
        status=status,
        check_result=_summarise_checks(rows),
        publish_type=",".join(publish_types),
        destination=_summarise_destination(rows, upload_uri),
        stored=_all_stored(rows),
        archived=any(row["archived"] for row in rows),
        error=None if handler.error is None else describe(f"{type(handler.error).__name__}: {handler.error}"),
        files=rows,
        failed_checks=failed_check_names(handler),
        handler=type(handler).__name__,
    )


def _working_paths_pattern(scratch: str, roots: tuple[str, ...]) -> re.Pattern[str]:
    """The regex matching working paths under ``scratch`` or one of ``roots``.

    A scratch folder inside one of the roots (the usual case: every object's folder lies in the run folder) is
    matched by that root's alternative — the same span — so the pattern, compiled once per set of roots, is
    shared by every object of a run instead of being compiled for each.
    """
    inside = any(_is_within(scratch, root) for root in roots)
    return _compiled_paths(roots if inside else (scratch, *roots))


def _is_within(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


@functools.lru_cache(maxsize=32)
def _compiled_paths(folders: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(folder.rstrip("/")) + r"/[^\s'\"]*" for folder in folders))


class _Describer:
    """Rewrites text about one object for people: working paths become the landing source (or the member's
    name), the raw name is shown escaped, undecodable bytes become ``\\xNN``."""

    def __init__(self, obj: LandingObject, scratch: str, roots: Iterable[str | None] = ()) -> None:
        self.source = shown(obj.uri)
        self.exact: list[str] = []
        self._longest_first: list[str] = []
        self.name = obj.name
        shown_name = shown(obj.name)
        self._shown_name = shown_name if shown_name != obj.name and obj.name else None
        self._paths = _working_paths_pattern(scratch, tuple(root for root in roots if root))

    def add_copy(self, path: str) -> None:
        """``path`` is a working copy of the landing object itself: name the source instead."""
        self.exact.append(path)
        self._longest_first = sorted(self.exact, key=len, reverse=True)

    def _path(self, match: re.Match[str]) -> str:
        path = match.group(0)
        if path in self.exact:
            return self.source
        name = os.path.basename(path.rstrip("/"))
        return self.source if name == self.name else shown(name)

    def __call__(self, text: object) -> str:
        value = str(text)
        if "/" in value:  # every working path has one: text without it has none to replace
            for path in self._longest_first:
                value = value.replace(path, self.source)
            value = self._paths.sub(self._path, value)
        if self._shown_name is not None:
            value = value.replace(self.name, self._shown_name)
        return scrub(value)


class _SourceLogger(PipelineLoggerAdapter):
    """The handler's logger for one object: every message passes through the object's :class:`_Describer`."""

    def __init__(self, logger: logging.Logger, extra: Mapping[str, Any], describe: _Describer) -> None:
        super().__init__(logger, dict(extra))
        self._describe = describe

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = f"{msg} {args!r}"
        exc_info = kwargs.pop("exc_info", None)
        if exc_info:  # the traceback names working paths too: describe it with the message
            if exc_info is True:
                exc_info = sys.exc_info()
            elif isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            if exc_info[0] is not None:
                text = f"{text}\n{''.join(traceback.format_exception(*exc_info)).rstrip()}"
        super().log(level, "%s", self._describe(text), **kwargs)


def _handler_logger(settings: IngestSettings, obj: LandingObject, describe: _Describer) -> Any:
    return _SourceLogger(logging.getLogger(settings.log_name), {"landing_object": shown(obj.uri)}, describe)


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


def _run_handler(local_path: str, obj: LandingObject, settings: IngestSettings, describe: _Describer) -> Any:
    context = RunContext(settings.run_id, "ingest", settings.pipeline_name, _handler_logger(settings, obj, describe))
    handler = settings.handler_class(
        local_path, config=settings.config, celery_task=context, upload_path=obj.uri, **settings.handler_kwargs
    )
    # set as an attribute, not a constructor keyword: classic handlers with fixed signatures keep working
    handler.landing = landing_context(obj)
    handler.run()
    return handler


def _quarantine(obj: LandingObject, local_path: str, settings: IngestSettings, ingest_id: str, error: BaseException,
                describe: _Describer, handler: Any = None, scratch: str | None = None) -> Any:
    details = getattr(handler, "error_details", None)
    return quarantine_file(
        local_path,
        error_uri=settings.error_uri,
        pipeline_name=settings.pipeline_name,
        ingest_id=ingest_id,
        source=obj.uri,
        fingerprint=obj.fingerprint,
        error=error,
        reason=describe(error),
        error_details=describe(details) if details else None,
        collection=getattr(handler, "file_collection", None),
        handler_name=type(handler).__name__ if handler is not None else None,
        name=obj.name,
        work_dir=settings.work_dir,
        private_dir=scratch,  # the object's own folder (emptied after it): no folder of its own for the sidecar
    )


def record_outcome(settings: IngestSettings, obj: LandingObject, outcome: FileOutcome) -> None:
    """Parent-side bookkeeping of one finished object: write the ingest ledger (best effort), report progress,
    call the outcome hooks."""
    if settings.ledger is not None:
        try:
            settings.ledger.record(obj, outcome, run_id=settings.run_id)
        except Exception as error:  # noqa: BLE001 - the record is best effort; the outcome stands
            logger.error("could not record the outcome of %s in the ingest ledger: %s", obj.uri, error)
    progress.emit("done", outcome)
    for hook in settings.outcome_hooks:
        try:
            hook(obj, outcome)
        except Exception as error:  # noqa: BLE001 - reporting never changes the outcome
            logger.warning("outcome hook %r failed for %s: %s", hook, obj.uri, error)


def new_ingest_id() -> str:
    """A time-sortable id of one attempt: ``<UTC time>-<random>`` (names the attempt's error-store folder)."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"


def _plain(obj: LandingObject, status: str, *, error: str | None = None, note: str | None = None) -> FileOutcome:
    # notes repeat across objects (a re-scan skips thousands with the same one): share one string each
    return FileOutcome(source=shown(obj.uri), name=shown(obj.name), status=status, error=error,
                       note=sys.intern(note) if note else note)


def ingest_object(obj: LandingObject, settings: IngestSettings) -> FileOutcome:
    """Ingest one landing object; never raises for problems with the object itself."""
    ingest_id = new_ingest_id()
    if settings.work_dir and not os.path.isdir(settings.work_dir):
        os.makedirs(settings.work_dir, exist_ok=True)
    handler_tmp = _config_tmp_dir(settings)
    with object_folder(settings.work_dir) as scratch, reused_working_folders(_reusable_root(handler_tmp)):
        describe = _Describer(obj, scratch, (settings.work_dir, handler_tmp))
        try:
            outcome = _ingest_in(scratch, obj, settings, ingest_id, describe)
        except Exception as error:  # noqa: BLE001 - e.g. a handler that cannot be built: keep the object
            text = describe(format_exception(error))
            logger.error("could not ingest %s: %s", shown(obj.uri), text)
            outcome = _plain(obj, FAILED, error=text)
    record_outcome(settings, obj, outcome)
    return outcome


def _reusable_root(handler_tmp: str | None) -> str | None:
    """The handlers' ``tmp_dir`` when it is a run folder (private to this run): their working folders are reused
    there (:mod:`aodncore.util.workdirs`); else None."""
    return handler_tmp if handler_tmp and is_run_folder(handler_tmp) else None


def _config_tmp_dir(settings: IngestSettings) -> str | None:
    try:
        return settings.config.pipeline_config["global"].get("tmp_dir")
    except (AttributeError, KeyError, TypeError):
        return None


def _fetch(obj: LandingObject, scratch: str, name: str) -> tuple[str | None, FileOutcome | None]:
    """(path of the working copy, None), or (None, the outcome when the object cannot be fetched)."""
    try:
        return str(fetch(obj, os.path.join(scratch, "landing"), name=name)), None
    except LandingObjectChangedError as error:
        logger.warning("%s", error)
        if error.vanished:
            return None, _plain(obj, SKIPPED, note=f"{error}; nothing to do")
        return None, _plain(obj, WAITING, note=f"{error}; a later run takes it")
    except PermissionError as error:
        text = f"cannot read the landing file: {error.strerror or 'permission denied'}"
        logger.error("%s: %s", shown(obj.uri), text)
        return None, _plain(obj, FAILED, error=text)
    except Exception as error:  # noqa: BLE001 - e.g. the landing store is unreachable
        text = shown(format_exception(error)).replace(scratch, "<work>")
        logger.error("could not fetch %s: %s", shown(obj.uri), text)
        return None, _plain(obj, FAILED, error=text)


def _ingest_in(scratch: str, obj: LandingObject, settings: IngestSettings, ingest_id: str,
               describe: _Describer) -> FileOutcome:
    name_problem = unusable_name_reason(obj.name)
    fetch_name = storable_name(obj.name) if local_name_problem(obj.name) else obj.name
    local_path, refused = _fetch(obj, scratch, fetch_name)
    if local_path is None:
        assert refused is not None
        return refused
    describe.add_copy(local_path)

    if name_problem:
        error = InvalidFileNameError(f"{shown(obj.uri)}: {name_problem}")
        outcome = _plain(obj, QUARANTINED, error=format_exception(error))
        return _quarantined(outcome, obj, local_path, settings, ingest_id, error, describe, None, scratch)

    processing_path = _handler_input(local_path, scratch, obj.name)
    describe.add_copy(processing_path)
    with private_sources(processing_path):  # ours alone: the archive step may hard-link it
        handler = _run_handler(processing_path, obj, settings, describe)
    if handler.error is None:
        outcome = outcome_from_handler(obj, handler, PUBLISHED, settings.upload_uri, describe)
    elif is_data_error(handler.error):
        outcome = outcome_from_handler(obj, handler, QUARANTINED, settings.upload_uri, describe)
        return _quarantined(outcome, obj, local_path, settings, ingest_id, handler.error, describe, handler,
                            scratch)
    else:
        return outcome_from_handler(obj, handler, FAILED, settings.upload_uri, describe)
    _remove_landing(obj, outcome, settings)
    return outcome


def _quarantined(outcome: FileOutcome, obj: LandingObject, local_path: str, settings: IngestSettings,
                 ingest_id: str, error: BaseException, describe: _Describer, handler: Any,
                 scratch: str | None = None) -> FileOutcome:
    """Store the original content and its reason in the error store; then the landing object may go."""
    try:
        record = _quarantine(obj, local_path, settings, ingest_id, error, describe, handler, scratch)
    except Exception as failure:  # noqa: BLE001 - then the landing object must stay
        text = describe(format_exception(failure))
        logger.error("could not quarantine %s: %s", shown(obj.uri), text)
        outcome.status = FAILED
        outcome.error = f"{outcome.error}; quarantine failed: {text}"
        return outcome
    outcome.error_uri = shown(record.file_uri)
    logger.info("%s quarantined in %s: %s", shown(obj.uri), outcome.error_uri, outcome.error)
    _remove_landing(obj, outcome, settings)
    return outcome


def _remove_landing(obj: LandingObject, outcome: FileOutcome, settings: IngestSettings) -> None:
    if not settings.delete_landing or settings.defer_landing_removal:
        return
    remove_dealt_with(obj, outcome)


def remove_dealt_with(obj: LandingObject, outcome: FileOutcome) -> None:
    """Remove a published or quarantined object from the landing area (if it still has the listed content); a
    failure is logged, never raised."""
    try:
        remove_landing(obj)
    except Exception as error:  # noqa: BLE001 - published/quarantined already; report, don't lose the outcome
        logger.error("%s was %s but could not be removed from the landing area: %s", shown(obj.uri),
                     outcome.status, shown(format_exception(error)))


def dispose_skipped(obj: LandingObject, settings: IngestSettings, note: str = "already ingested (same content)"
                    ) -> FileOutcome:
    """The outcome of an object whose exact content was already ingested; it is removed from the landing area
    (its fingerprint confirmed first: a newer upload under the same name stays) unless ``delete_landing`` is off.
    """
    if not settings.delete_landing:
        return _plain(obj, SKIPPED, note=f"{note}; kept in the landing area")
    try:
        removed = remove_landing(obj)
    except Exception as error:  # noqa: BLE001 - it stays, and the next run tries again
        logger.warning("%s: %s, but it could not be removed from the landing area: %s", shown(obj.uri), note,
                       shown(format_exception(error)))
        return _plain(obj, SKIPPED, note=f"{note}; could not be removed from the landing area")
    if removed:  # the outcome says so (table artifact, result); one line per object would flood the run log
        logger.debug("%s: %s; removed from the landing area", shown(obj.uri), note)
        return _plain(obj, SKIPPED, note=f"{note}; removed from the landing area")
    return _plain(obj, SKIPPED, note=f"{note}; left in the landing area (it changed or vanished meanwhile)")


def in_run_folder(settings: IngestSettings, folder: str | os.PathLike[str]) -> IngestSettings:
    """``settings`` working inside a run folder: objects' working copies and the handlers' temporary folders."""
    from aodncore.pipeline.defaultconfig import _freeze

    path = os.fspath(folder)
    config = settings.config
    merged = {section: dict(values) for section, values in config.pipeline_config.items()}
    merged["global"]["tmp_dir"] = path
    config.__dict__["pipeline_config"] = _freeze(merged)
    return replace(settings, work_dir=path)


def _handler_input(local_path: str, scratch: str, name: str) -> str:
    """The handler's own path to the fetched file, so that the fetched path itself stays for the error store.

    A hard link (same scratch folder, so normally the same file system) costs no copy; a copy is the fallback.
    """
    processing_dir = os.path.join(scratch, "processing")
    processing_path = os.path.join(processing_dir, name)
    try:
        os.link(local_path, processing_path)  # the folder is normally kept (empty) from the previous object
    except FileNotFoundError:
        os.makedirs(processing_dir, exist_ok=True)
        _link_or_copy(local_path, processing_path)
    except OSError:  # e.g. a file system without hard links
        shutil.copy2(local_path, processing_path)
    return processing_path


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def ingest_objects(objects: Iterable[LandingObject], settings: IngestSettings) -> list[FileOutcome]:
    """Ingest landing objects one after the other."""
    return [ingest_object(obj, settings) for obj in objects]
