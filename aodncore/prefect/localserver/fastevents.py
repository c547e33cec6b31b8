"""Cheaper event handling inside the background server, with the same stored events.

A per-file ``aodncore.file.*`` event cost the local server 2.2–3.8 ms of CPU (``benchmarks/bench_prefect_records.py``);
two parts of that are pure overhead that this module removes, in the background server only
(:mod:`.supervisor` calls :func:`install` before the app is built):

* **The SQLite event writer.** Prefect's ``_write_sqlite_events`` inserts each batch with a multi-row
  ``INSERT … VALUES`` that SQLAlchemy compiles anew for every batch (a bind parameter per column per row; 35 % of
  the server's samples). :func:`write_sqlite_events` stores the same rows with one cached ``executemany`` statement
  per table — Prefect's PostgreSQL path does the same. Semantics kept: events whose id is already stored are
  skipped with their resources, every other event gets its row and one ``event_resources`` row per resource
  (primary and related), all in the caller's transaction. An id twice in one call is stored once (Prefect's writer
  stores the first when the two land in different parameter batches, and fails the flush when they share one).
  The event persister's session begins no transaction, and Prefect's SQLite connections autocommit then (a BEGIN
  is sent only when ``SQLITE_BEGIN_MODE`` is set): Prefect's multi-row statements are a transaction each, but an
  ``executemany`` would commit every row — five commits per file event, ~200 KiB written to the WAL. The writer
  therefore begins one (``IMMEDIATE``) transaction when the session has none, which the persister's ``commit()``
  ends: a flush is one commit, and all-or-nothing.
* **Receiving an event** (``Event.receive``, ``POST /events`` and ``/events/in``): Prefect dumps the event it has
  just validated and validates the dump again as a ``ReceivedEvent`` (~0.15–0.19 ms per event);
  :func:`receive_event` builds the same ``ReceivedEvent`` from the validated fields (same values, same nested
  types, same set fields; ``received`` as given, else now).
* **Row defaults**: each row's ``created``/``updated`` (and a resource row's ``id``) are given in the rows, from
  the standard library's clock (Prefect's column defaults call pendulum's ``now()`` per column per row: ~20 % of
  the writer's CPU); the stored values are the same kind (the insert time, UTC, per row). A resource row's id is a
  uuid7 (time-ordered; Prefect's default is a uuid4): with random ids every row dirtied a random page of the
  primary-key index, ~5× the WAL written per event once the table holds some tens of thousands of rows.
* **The task-run recorder** parses every event on the bus and then drops all but ``prefect.task-run.*``: its
  handler is given only those (the bus message carries the event name as an attribute, so others are dropped
  before parsing). (Until session 6 this was never installed: the check for an earlier install looked for
  ``__wrapped__``, which Prefect's own ``asynccontextmanager``-decorated ``consumer`` has too.)

* **The event persister's batches**: 200 events per transaction (Prefect: 20) and a flush at least every second
  (Prefect: 5 s), so a commit serves ten times as many events and a small run's events are readable sooner
  (:data:`PERSISTER_DEFAULTS`, public Prefect settings; the user's own values win).

:func:`install` also installs :mod:`.fastbus` (events handed to the persister already parsed; its own switch) and
:mod:`.fastrows` (the rows' bound values built without SQLAlchemy's per-row bind processing; its own switch).

The first three replace private Prefect names, so they are installed only for the Prefect versions they were verified
against (:data:`VERIFIED_PREFECT_VERSIONS`; ``tests/test_localserver_fastevents.py`` compares the stored rows and
the events read back with Prefect's own writer). Any other version keeps Prefect's own code and the server log says
so. ``AODNCORE_SERVER_FAST_EVENTS=0`` keeps Prefect's own code too.
"""

from __future__ import annotations

import functools
import logging
import os
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aodncore.prefect.localserver import fastrows, patchgate
from aodncore.prefect.localserver.patchgate import VERIFIED_PREFECT_VERSIONS
from aodncore.prefect.localserver.settings import ENV_FAST_EVENTS

__all__ = ["ENV_FAST_EVENTS", "PERSISTER_DEFAULTS", "VERIFIED_PREFECT_VERSIONS", "apply_persister_defaults",
           "install", "receive_event", "write_sqlite_events"]

logger = logging.getLogger("aodncore.prefect.localserver")


PERSISTER_DEFAULTS = {
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
}
"""The background server's event-persister settings (unless the user set them, under either of Prefect's names)."""

_ID_CHUNK = 500
"""Ids per ``SELECT … WHERE id IN (…)`` (SQLite's default limit is 999 bind parameters per statement)."""

_TASK_RUN_EVENTS = "prefect.task-run"


async def write_sqlite_events(session: Any, events: list[Any]) -> None:
    """Store ``events`` (``ReceivedEvent``) as Prefect's SQLite writer does, with ``executemany`` inserts, in one
    transaction (the caller commits it, as the event persister does)."""
    from prefect.server.database.configurations import SQLITE_BEGIN_MODE

    if session.in_transaction():
        await _write_sqlite_events(session, events)
        return
    # Prefect's SQLite connections autocommit unless a BEGIN mode is set when the session begins; the persister's
    # session sets none, so each row of an ``executemany`` would be a transaction of its own (five commits per
    # file event, each rewriting the pages of nine indexes). IMMEDIATE: the first statement is a read.
    token = SQLITE_BEGIN_MODE.set("IMMEDIATE")
    try:
        await _write_sqlite_events(session, events)
    finally:
        SQLITE_BEGIN_MODE.reset(token)


async def _write_sqlite_events(session: Any, events: list[Any]) -> None:
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface

    db = provide_database_interface()
    connection = await session.connection()
    rows = fastrows.enabled(connection)
    stored: set[Any] = set()
    ids = list({event.id for event in events})
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start:start + _ID_CHUNK]
        if rows:
            stored.update(await fastrows.stored_event_ids(connection, chunk))
        else:
            stored.update((await session.scalars(sa.select(db.Event.id).where(db.Event.id.in_(chunk)))).all())
    fresh = []
    for event in events:
        if event.id not in stored:
            stored.add(event.id)  # a second copy in this call is a duplicate too
            fresh.append(event)
    if not fresh:
        return
    if rows:  # the rows' bound values built here (see fastrows), one executemany per table
        await fastrows.insert_events(connection, fresh, _new_resource_id_text)
        return
    event_rows, resource_rows = [], []
    for event in fresh:
        row = event.as_database_row()
        row["created"] = row["updated"] = datetime.now(UTC)
        event_rows.append(row)
        for resource_row in event.as_database_resource_rows():
            resource_row["id"] = _new_resource_id()
            resource_row["created"] = resource_row["updated"] = datetime.now(UTC)
            resource_rows.append(resource_row)
    await session.execute(sa.insert(db.Event.__table__), event_rows)
    if resource_rows:
        await session.execute(sa.insert(db.EventResource.__table__), resource_rows)


def _new_resource_id() -> Any:
    """A resource row's id: a uuid7 (Prefect's own generator), so ids are time-ordered and each insert lands at the
    end of the table's primary-key index instead of on a random page of it (Prefect's column default is a uuid4;
    the id is internal to the table, never part of an event)."""
    from prefect._internal.uuid7 import uuid7

    return uuid7()


def _new_resource_id_text() -> str:
    """:func:`_new_resource_id` as the text the rows bind (:func:`.fastrows.uuid7_text`)."""
    return fastrows.uuid7_text()


@functools.cache
def _received_type() -> Any:
    from prefect.server.events.schemas.events import ReceivedEvent
    from pydantic import TypeAdapter

    return TypeAdapter(ReceivedEvent.model_fields["received"].annotation)


def receive_event(self: Any, received: Any = None) -> Any:
    """``Event.receive`` without validating the event a second time: the same ``ReceivedEvent``."""
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.types._datetime import now

    fields = ReceivedEvent.model_fields
    values = {name: getattr(self, name) for name in type(self).model_fields if name in fields}
    fields_set = set(values)
    if received is not None:
        values["received"] = _received_type().validate_python(received)  # as ReceivedEvent(...) converts it
        fields_set.add("received")
    elif "received" not in values:
        values["received"] = now("UTC")  # ReceivedEvent's default
    return ReceivedEvent.model_construct(_fields_set=fields_set, **values)


def _only_task_run_events(consumer: Any) -> Any:
    """Wrap the task-run recorder's ``consumer`` context manager: its handler sees only task-run events."""

    @asynccontextmanager
    async def filtered_consumer(*args: Any, **kwargs: Any):
        async with consumer(*args, **kwargs) as handler:
            async def handle(message: Any) -> None:
                name = (message.attributes or {}).get("event")
                if isinstance(name, str) and not name.startswith(_TASK_RUN_EVENTS):
                    return
                await handler(message)

            yield handle

    filtered_consumer.__wrapped__ = consumer  # type: ignore[attr-defined]
    filtered_consumer.aodncore_task_run_filter = True  # type: ignore[attr-defined]
    return filtered_consumer


def apply_persister_defaults(environ: dict[str, str] | None = None) -> None:
    """Set :data:`PERSISTER_DEFAULTS` in ``environ`` (default ``os.environ``) where the user set neither name."""
    environ = os.environ if environ is None else environ
    for name, value in PERSISTER_DEFAULTS.items():
        legacy = name.replace("PREFECT_SERVER_", "PREFECT_API_", 1)
        if name not in environ and legacy not in environ:
            environ[name] = value


def install() -> bool:
    """Install both replacements in this (server) process when the installed Prefect was verified (then also
    :mod:`.fastbus`); True if done."""
    import prefect

    def fits() -> bool:
        from prefect.server.database import configurations
        from prefect.server.events.schemas.events import Event
        from prefect.server.events.storage import database
        from prefect.server.services import task_run_recorder

        return hasattr(database, "_write_sqlite_events") and hasattr(task_run_recorder, "consumer") and \
            callable(getattr(Event, "receive", None)) and hasattr(configurations, "SQLITE_BEGIN_MODE")

    def patch() -> str:
        from prefect.server.events.schemas.events import Event
        from prefect.server.events.storage import database
        from prefect.server.services import task_run_recorder

        # (not ``__wrapped__``: Prefect's own ``consumer`` has one too, from ``asynccontextmanager``)
        if not getattr(task_run_recorder.consumer, "aodncore_task_run_filter", False):
            task_run_recorder.consumer = _only_task_run_events(task_run_recorder.consumer)
        database._write_sqlite_events = write_sqlite_events
        Event.receive = receive_event
        return (f"Prefect {prefect.__version__}: events stored with executemany inserts, received without a second "
                "validation; task-run recorder given task-run events only")

    done = patchgate.install(
        logger, ENV_FAST_EVENTS, off="Prefect's own event writer and task-run recorder kept",
        fits=fits, patch=patch,
        kept=patchgate.prefect_line("its own event writer and task-run recorder kept (aodncore's were verified for "
                                    "{versions})"))
    if done:
        from aodncore.prefect.localserver import fastbus

        fastbus.install()
        fastrows.install()
    return done
