"""Per-file Prefect events: ``aodncore.file.published``, ``aodncore.file.quarantined``, ``aodncore.file.failed``.

One event per finished landing object, emitted from the flow process as outcomes come back (the workers never
talk to Prefect for it), sent in batches: one ``POST /api/events`` per
:data:`~aodncore.limits.FILE_EVENTS_FLUSH_SECONDS` (2 s; ``AODNCORE_FILE_EVENTS_FLUSH_SECONDS``) or per 200 files
from a background thread, and the rest when the run finishes (also when it fails). An automation reacting to a
file's event therefore hears of it up to that long after the file finished. The event's resource is the landing object
(``prefect.resource.id`` = its URI); related resources are the destination (published) or the error-store copy
(quarantined), the handler, the checks that failed, and the flow run. The payload holds the outcome's summary
(never credentials: URIs are redacted).

Cost (``benchmarks/bench_record_events.py``, ``benchmarks/bench_event_flush.py``): building the event is a few
microseconds per file in the thread that finishes the file; its id and time are filled in, and the batch is
serialised once (orjson), by the sending thread. ``prefect.events.emit_event`` was measured at ~1.6 ms per event
here (pydantic validation reading Prefect's settings a dozen times per event), which is why the events are plain
JSON documents posted in batches; each post costs the server a fixed amount besides its events, hence the interval.

An automation that e-mails on every failed file, for example::

    prefect automation create --from-json '{"name": "aodncore failed files", "trigger": {"type": "event",
      "posture": "Reactive", "expect": ["aodncore.file.failed"], "match": {"prefect.resource.id": "s3://landing/*"},
      "threshold": 1, "within": 0}, "actions": [{"type": "send-notification", "block_document_id": "<id>",
      "subject": "failed: {{ event.resource.name }}", "body": "{{ event.payload.error }}"}]}'
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from aodncore.ingest.outcome import FAILED, PUBLISHED, QUARANTINED, FileOutcome
from aodncore.ingest.sources import LandingObject
from aodncore.limits import FILE_EVENTS_FLUSH_SECONDS

__all__ = ["FILE_EVENTS", "FILE_EVENT_PREFIX", "FLUSH_SECONDS_ENV", "FileEventEmitter", "file_event",
           "flush_seconds"]

FILE_EVENT_PREFIX = "aodncore.file."
FILE_EVENTS = {status: FILE_EVENT_PREFIX + status for status in (PUBLISHED, QUARANTINED, FAILED)}
"""Event name per outcome status (skipped objects emit nothing)."""

FLUSH_SECONDS_ENV = "AODNCORE_FILE_EVENTS_FLUSH_SECONDS"
"""Overrides :data:`~aodncore.limits.FILE_EVENTS_FLUSH_SECONDS` (seconds between posts of a run's file events)."""

logger = logging.getLogger(__name__)

_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@")
_MAX_TEXT = 2000


def _redact(text: str | None) -> str:
    text = text or ""
    if "@" in text:  # (five texts per event; credentials in a URL need an '@')
        text = _CREDENTIALS_IN_URL.sub("***@", text)
    return text[:_MAX_TEXT]


def _related(role: str, resource_id: str, **labels: str) -> dict[str, str]:
    return {"prefect.resource.id": resource_id, "prefect.resource.role": role, **labels}


def file_event(obj: LandingObject, outcome: FileOutcome, *, handler: str,
               flow_run_id: str | None = None) -> dict[str, Any] | None:
    """The keyword arguments of ``emit_event`` for one outcome, or None when it emits nothing (skipped)."""
    name = FILE_EVENTS.get(outcome.status)
    if name is None:
        return None
    related = [_related("handler", f"aodncore.handler.{handler}", **{"prefect.resource.name": handler})]
    if outcome.status == PUBLISHED and outcome.destination:
        related.append(_related("destination", _redact(outcome.destination)))
    if outcome.error_uri:
        related.append(_related("error-store", _redact(outcome.error_uri)))
    for check in outcome.failed_checks:
        related.append(_related("failed-check", f"aodncore.check.{check}", **{"prefect.resource.name": check}))
    if flow_run_id:
        related.append(_related("flow-run", f"prefect.flow-run.{flow_run_id}"))
    return {
        "event": name,
        "resource": {
            "prefect.resource.id": _redact(obj.uri),
            "prefect.resource.name": obj.name,
            "aodncore.fingerprint": obj.fingerprint,
            "aodncore.handler": handler,
        },
        "related": related,
        "payload": {
            "status": outcome.status,
            "check_result": outcome.check_result,
            "failed_checks": list(outcome.failed_checks),
            "destination": _redact(outcome.destination),
            "error_uri": _redact(outcome.error_uri),
            "error": _redact(outcome.error),
            "size": obj.size,
        },
    }


def _event_id(at: float | None = None) -> Any:
    """A time-ordered id (Prefect's uuid7, its own default for event ids) for an event that occurred at ``at``
    (``time.time()``; now if None): each stored event lands at the end of the server's id indexes instead of on a
    random page of them (half the database writes per event once the events table has grown;
    ``benchmarks/bench_event_writer.py``)."""
    from prefect._internal.uuid7 import uuid7

    return uuid7() if at is None else uuid7(ms=int(at * 1000))


def _document(kwargs: dict[str, Any], at: float) -> dict[str, Any]:
    """The event as posted: its id and time (``at``, from ``time.time()``) first, then ``file_event``'s keys."""
    return {"id": str(_event_id(at)), "occurred": datetime.fromtimestamp(at, UTC).isoformat(), **kwargs}


def flush_seconds() -> float:
    """Seconds between posts of a run's file events: ``AODNCORE_FILE_EVENTS_FLUSH_SECONDS``, else
    :data:`~aodncore.limits.FILE_EVENTS_FLUSH_SECONDS`; ``0``: post as soon as the sending thread gets to them."""
    value = os.environ.get(FLUSH_SECONDS_ENV, "").strip()
    if not value:
        return FILE_EVENTS_FLUSH_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0 or seconds == float("inf"):  # (NaN, negative, infinite)
        logger.warning("%s=%r is not a number of seconds; using %s", FLUSH_SECONDS_ENV, value,
                       FILE_EVENTS_FLUSH_SECONDS)
        return FILE_EVENTS_FLUSH_SECONDS
    return seconds


class FileEventEmitter:
    """An outcome hook (see ``IngestSettings.outcome_hooks``) sending one Prefect event per finished file.

    Events are queued and posted in batches (every ``flush_seconds``, default :func:`flush_seconds`, or every
    ``batch_size`` events) by a background thread running in a copy of the creating thread's context (so it talks
    to the run's API); :meth:`close` posts the rest. The hook only builds the event's body and notes the time; the
    thread adds the id and time and serialises each batch once. Delivery problems are logged, never raised: the
    outcome of a file does not depend on its event.
    """

    def __init__(self, handler: str, flow_run_id: str | None = None, *, flush_seconds: float | None = None,
                 batch_size: int = 200) -> None:
        self.handler = handler
        self.flow_run_id = flow_run_id
        self.flush_seconds = _flush_seconds() if flush_seconds is None else max(0.0, flush_seconds)
        self.batch_size = batch_size
        self.emitted = 0
        self._pending: list[tuple[dict[str, Any], float]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = contextvars.copy_context()

    def __call__(self, obj: LandingObject, outcome: FileOutcome) -> None:
        kwargs = file_event(obj, outcome, handler=outcome.handler or self.handler, flow_run_id=self.flow_run_id)
        if kwargs is None:
            return
        at = time.time()
        with self._lock:
            self._pending.append((kwargs, at))
            full = len(self._pending) >= self.batch_size or not self.flush_seconds
            if self._thread is None:
                self._thread = threading.Thread(target=self._context.run, args=(self._run,),
                                                name="aodncore-file-events", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def _post(self, client: Any) -> None:
        with self._lock:
            queued, self._pending = self._pending, []
        if queued:
            body = orjson.dumps([_document(kwargs, at) for kwargs, at in queued])
            client.request("POST", "/events", content=body, headers={"Content-Type": "application/json"})
            self.emitted += len(queued)

    def _run(self) -> None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            while not self._stop.is_set():
                self._wake.wait(self.flush_seconds or None)
                self._wake.clear()
                self._post_logged(client)
            self._post_logged(client)  # what came in before close()

    def _post_logged(self, client: Any) -> None:
        try:
            self._post(client)
        except Exception as error:  # noqa: BLE001 - observability only; the outcomes stand
            logger.warning("could not send %s events to Prefect: %s", FILE_EVENT_PREFIX + "*", error)

    def close(self) -> None:
        """Post every queued event and stop the background thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None


_flush_seconds = flush_seconds  # (the constructor's parameter hides the function's name)
