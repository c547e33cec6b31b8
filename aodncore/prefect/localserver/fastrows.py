"""Event rows handed to SQLite as the text SQLAlchemy would bind, without SQLAlchemy's per-row bind processing.

After :mod:`.fastevents` made a flush one ``executemany`` per table, the biggest part of storing a file event in the
background server was SQLAlchemy's per-value bind processing (py-spy, ``bench_prefect_records.py --variants
events``: ~27 % of the server's CPU): for every row and column a ``TypeDecorator`` call — Prefect's ``Timestamp``
(``astimezone`` to UTC, then SQLite's ``DATETIME`` text), ``UUID`` (its text), ``JSON`` (dumped, loaded and dumped
again, then dumped by SQLite's JSON type) — on top of the row dictionaries ``as_database_row`` builds with a full
``model_dump`` of each event. :func:`insert_events` builds each row's bound values directly, in the column order of
one cached ``INSERT``, and runs them with ``exec_driver_sql`` (``executemany`` on the DBAPI cursor) in the caller's
transaction:

* timestamps: the UTC time as ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLite ``DATETIME``'s storage format); a naive one
  fails as Prefect's ``Timestamp`` does;
* ids: ``str(uuid)``;
* Prefect ``JSON`` columns (``resource``, ``related``, ``related_resource_ids``, ``payload``): ``None`` stays NULL, an
  empty value is dumped as is, any other is dumped after Prefect's ``NaN``/``Infinity``-to-``None`` round trip; a
  label dictionary (only ``str`` keys and values: no constants, nothing the round trip changes) is dumped once;
* the resource rows' ``resource`` (SQLAlchemy's plain ``JSON``): dumped, ``None`` as ``null``;
* text columns as they are.

The values are those of Prefect's own writer (``tests/test_localserver_fastrows.py`` captures the parameters
Prefect's ``_write_sqlite_events`` sends through SQLAlchemy's ``before_cursor_execute`` and compares them, each
stored column's ``typeof()`` and text read back with the plain ``sqlite3`` module, and the events read back through
Prefect's API filters). Used by :func:`aodncore.prefect.localserver.fastevents.write_sqlite_events` only where
:func:`install` found the tables as verified (same columns and column types) and the connection's dialect is
SQLite with SQLAlchemy's default JSON serialiser; ``AODNCORE_SERVER_FAST_EVENT_ROWS=0`` keeps SQLAlchemy's binding.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aodncore.prefect.localserver import patchgate
from aodncore.prefect.localserver.settings import ENV_FAST_EVENT_ROWS

__all__ = ["ENV_FAST_EVENT_ROWS", "EVENT_COLUMNS", "RESOURCE_COLUMNS", "enabled", "event_row", "insert_events",
           "install", "resource_rows", "stored_event_ids", "uuid7_text"]

logger = logging.getLogger("aodncore.prefect.localserver")

EVENT_COLUMNS = ("id", "created", "updated", "occurred", "event", "resource_id", "resource", "related_resource_ids",
                 "related", "payload", "received", "recorded", "follows")
"""The ``events`` table's columns, in the order of the cached ``INSERT``."""

RESOURCE_COLUMNS = ("id", "created", "updated", "occurred", "resource_id", "resource_role", "resource", "event_id")
"""The ``event_resources`` table's columns, in the order of the cached ``INSERT``."""

_ID = "prefect.resource.id"
_ROLE = "prefect.resource.role"
_ZERO = timedelta(0)
_installed = False


def enabled(connection: Any) -> bool:
    """True when :func:`install` switched the rows on and ``connection`` (a SQLAlchemy connection) binds JSON with
    SQLAlchemy's default serialiser on SQLite, as the rows assume."""
    dialect = connection.dialect
    return _installed and dialect.name == "sqlite" and getattr(dialect, "_json_serializer", None) is None


def _timestamp(value: datetime | None) -> str | None:
    """Prefect's ``Timestamp`` bound on SQLite: the UTC wall time in ``DATETIME``'s storage format."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("Timestamps must have a timezone.")  # as Prefect's Timestamp
    if value.utcoffset() != _ZERO:
        value = value.astimezone(UTC)
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond:06d}")


def _uuid(value: Any) -> str | None:
    """Prefect's ``UUID`` bound on SQLite (``CHAR(36)``)."""
    if value is None:
        return None
    return str(value) if isinstance(value, uuid.UUID) else str(uuid.UUID(value))


def _no_constant(_: str) -> None:
    return None


def _prefect_json(value: Any) -> str | None:
    """Prefect's ``JSON`` (``none_as_null``) bound on SQLite: its round trip, then SQLAlchemy's ``json.dumps``."""
    if value is None:
        return None
    if not value:
        return json.dumps(value)
    return json.dumps(json.loads(json.dumps(value), parse_constant=_no_constant))


def _is_labels(value: Any) -> bool:
    return type(value) is dict and all(type(k) is str and type(v) is str for k, v in value.items())


def _labels_json(value: Any) -> str | None:
    """:func:`_prefect_json` of a resource's labels: one dump when they are only strings (the round trip is then the
    identity: no number, no constant), else the full way."""
    if value and _is_labels(value):
        return json.dumps(value)
    return _prefect_json(value)


def _labels_list_json(values: list[Any]) -> str | None:
    """:func:`_prefect_json` of a list of label dictionaries (or of strings)."""
    if values and type(values) is list and all(type(v) is str or _is_labels(v) for v in values):
        return json.dumps(values)
    return _prefect_json(values)


def _payload(event: Any) -> Any:
    """The event's payload as ``model_dump`` gives it, without dumping the whole event: the payload itself when it
    holds only what ``json.dumps`` takes as it is (pydantic leaves those alone), else pydantic's dump of it."""
    payload = event.payload
    try:
        json.dumps(payload)
    except (TypeError, ValueError):
        return event.model_dump(include={"payload"})["payload"]
    return payload


def event_row(event: Any, now: datetime) -> tuple[Any, ...]:
    """The bound values of ``event``'s ``events`` row (:data:`EVENT_COLUMNS`), as Prefect's writer binds
    ``event.as_database_row()`` with ``created``/``updated``/``recorded`` = ``now``."""
    stamp = _timestamp(now)
    return (_uuid(event.id), stamp, stamp, _timestamp(event.occurred), event.event, event.resource.id,
            _labels_json(event.resource.root), _labels_list_json([resource.id for resource in event.related]),
            _labels_list_json([resource.root for resource in event.related]), _prefect_json(_payload(event)),
            _timestamp(event.received), stamp, _uuid(event.follows))


def uuid7_text() -> str:
    """A new uuid7 as ``str(uuid)`` gives it: the layout of Prefect's ``uuid7()`` (the millisecond, version 7, 12
    random bits, the RFC 4122 variant, 62 random bits), without building a ``UUID`` (~2 µs instead of ~6)."""
    r = os.urandom(10)
    h = ((time.time_ns() // 1_000_000).to_bytes(6, "big")
         + bytes((0x70 | (r[0] & 0x0F), r[1], 0x80 | (r[2] & 0x3F))) + r[3:]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def resource_rows(event: Any, now: datetime, new_id: Callable[[], str]) -> list[tuple[Any, ...]]:
    """The bound values of ``event``'s ``event_resources`` rows (:data:`RESOURCE_COLUMNS`), as Prefect's writer binds
    ``event.as_database_resource_rows()``; each row's id is the text ``new_id()`` gives."""
    stamp, occurred, event_id = _timestamp(now), _timestamp(event.occurred), _uuid(event.id)
    rows = []
    for index, resource in enumerate([event.resource, *event.related]):
        rest = {key: value for key, value in resource.root.items() if key != _ID and key != _ROLE}
        role = resource.role if index else ""  # the related ones are RelatedResources
        rows.append((new_id(), stamp, stamp, occurred, resource.id, role, json.dumps(rest), event_id))
    return rows


def _insert(table: str, columns: Iterable[str]) -> str:
    names = tuple(columns)
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


_EVENTS_INSERT = _insert("events", EVENT_COLUMNS)
_RESOURCES_INSERT = _insert("event_resources", RESOURCE_COLUMNS)


async def stored_event_ids(connection: Any, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``ids`` (at most 999) are stored in ``events`` (read through ``connection``, an ``AsyncConnection``)."""
    if not ids:
        return set()
    result = await connection.exec_driver_sql(
        f"SELECT id FROM events WHERE id IN ({', '.join('?' * len(ids))})", tuple(str(one) for one in ids))
    return {uuid.UUID(row[0]) for row in result.fetchall()}


async def insert_events(connection: Any, events: list[Any], new_id: Callable[[], str] = uuid7_text) -> None:
    """Insert ``events`` (new ``ReceivedEvent``s) and their resource rows through ``connection`` (an
    ``AsyncConnection`` in the caller's transaction): one ``executemany`` per table."""
    rows, resources = [], []
    for event in events:
        rows.append(event_row(event, datetime.now(UTC)))
        resources.extend(resource_rows(event, datetime.now(UTC), new_id))
    await connection.exec_driver_sql(_EVENTS_INSERT, rows)
    if resources:
        await connection.exec_driver_sql(_RESOURCES_INSERT, resources)


def _tables_fit() -> bool:
    """The ORM tables have exactly the columns, and the column types, the rows were built for."""
    import sqlalchemy as sa
    from prefect.server.database import orm_models
    from prefect.server.utilities.database import JSON, UUID, Timestamp

    expected = {
        "events": dict(id=UUID, created=Timestamp, updated=Timestamp, occurred=Timestamp, event=sa.Text,
                       resource_id=sa.Text, resource=JSON, related_resource_ids=JSON, related=JSON, payload=JSON,
                       received=Timestamp, recorded=Timestamp, follows=UUID),
        "event_resources": dict(id=UUID, created=Timestamp, updated=Timestamp, occurred=Timestamp,
                                resource_id=sa.Text, resource_role=sa.Text, resource=None, event_id=UUID),
    }
    for model in (orm_models.Event, orm_models.EventResource):
        table = model.__table__
        types = expected.get(table.name)
        if types is None or set(table.columns.keys()) != set(types):
            return False
        for name, kind in types.items():
            column_type = table.columns[name].type
            if kind is None:  # Prefect's sa_JSON: PostgreSQL's JSON with SQLAlchemy's plain JSON for SQLite
                variant = getattr(column_type, "_variant_mapping", {}).get("sqlite")
                if type(variant) is not sa.JSON or variant.none_as_null:
                    return False
            elif type(column_type) is not kind:
                return False
    return True


def install() -> bool:
    """Switch the rows on in this (server) process when the installed Prefect was verified and its event tables
    are as expected; True if done."""
    import prefect

    def patch() -> str:
        global _installed
        _installed = True
        return f"Prefect {prefect.__version__}: event rows bound without SQLAlchemy's per-row processing"

    return patchgate.install(
        logger, ENV_FAST_EVENT_ROWS, off="event rows bound by SQLAlchemy", fits=_tables_fit, patch=patch,
        kept=patchgate.prefect_line("event rows bound by SQLAlchemy (aodncore's rows were verified for "
                                    "{versions})"))
