"""The event rows :mod:`aodncore.prefect.localserver.fastrows` binds are, byte for byte, what Prefect's writer binds.

The same events go through Prefect's own ``_write_sqlite_events`` and through the background server's writer with
the rows on, each into a fresh Prefect database (from the shipped template). Compared:

* the parameters each writer hands the DBAPI cursor (SQLAlchemy's ``before_cursor_execute``), per row and column:
  equal values of the same type, except the insert times and the resource rows' ids, which are of the same form;
* every stored column's ``typeof()`` and ``quote()`` (the stored value, exactly) read with the plain ``sqlite3``
  module, with the same exceptions;
* the events read back through Prefect's event filters (all, by name, by resource, by related resource).
"""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.prefect

BASE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
TIMES = {"created", "updated", "recorded"}


def _events() -> list:
    """Events of every shape the rows must bind as Prefect does."""
    from prefect.server.events.schemas.events import ReceivedEvent
    from pydantic import BaseModel

    class Nested(BaseModel):  # not JSON as it is: bound through pydantic's dump, as Prefect's model_dump does
        name: str
        values: list[float]

    payloads = [
        {"status": "published", "size": 12345, "failed_checks": [], "error": "", "destination": "file:///p/x.nc"},
        {},
        {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "list": [1.5, math.nan, None], "text": "NaN Infinity"},
        {"nested": {"list": [1, 2.5, None, True, False, "é\u2603\U0001F600"], "empty": {}, "none": None},
         "big": 2 ** 70, "small": 1e-7, "neg": -0.0, "zero": 0, "quote": 'a "b" \\ c\n\t'},
        {"model": Nested(name="n", values=[1.0, 2.5])},
        {"unicode key é": "\x00 null byte", "k": [[], [{}], [[1]]]},
    ]
    zones = [UTC, timezone(timedelta(hours=10)), timezone(timedelta(hours=-3, minutes=-30))]
    events = []
    for index in range(36):
        occurred = (BASE + timedelta(seconds=index, microseconds=index * 7919 % 1_000_000)).astimezone(
            zones[index % 3])
        related = [{"prefect.resource.id": f"aodncore.check.c{k}", "prefect.resource.role": "failed-check",
                    "prefect.resource.name": f"c{k} é"} for k in range(index % 4)]
        if index % 5 == 1:
            related.append({"prefect.resource.id": f"prefect.flow-run.{uuid.UUID(int=index)}",
                            "prefect.resource.role": "flow-run"})
        resource = {"prefect.resource.id": f"file:///land/IMOS_{index:04d}.nc",
                    "prefect.resource.name": f"IMOS_{index:04d}.nc", "aodncore.size": str(index)}
        if index % 6 == 2:
            resource["prefect.resource.role"] = "primary"  # a role on the primary resource: not stored
        if index % 6 == 3:
            resource = {"prefect.resource.id": "12345"}  # digits only: the column's affinity, as with Prefect's
        events.append(ReceivedEvent(
            id=uuid.UUID(int=index + 1), occurred=occurred,
            received=BASE + timedelta(seconds=index, milliseconds=5) if index % 4 else BASE.replace(microsecond=0),
            event="aodncore.file." + ("published", "quarantined", "failed")[index % 3],
            resource=resource, related=related, payload=payloads[index % len(payloads)],
            follows=uuid.UUID(int=index) if index % 5 == 0 and index else None))
    return events


def _database(tmp_path: Path, name: str) -> Path:
    from aodncore.prefect.localserver import dbtemplate

    path = tmp_path / name / "prefect.db"
    path.parent.mkdir()
    assert dbtemplate.create_database_from_template(path)
    return path


def _bound_rows(statement: str, parameters, many: bool) -> tuple[str, list[dict]]:
    """The rows of one ``INSERT`` as column → bound value, from either writer's cursor call."""
    match = re.match(r"INSERT INTO (\w+) \(([^)]*)\) VALUES (.*)$", " ".join(statement.split()))
    table, columns = match.group(1), [name.strip() for name in match.group(2).split(",")]
    if many:  # ours: qmark tuples in the statement's column order
        return table, [dict(zip(columns, row, strict=True)) for row in parameters]
    groups = re.findall(r"\(([^()]*)\)", match.group(3))  # Prefect's: one multi-row VALUES, named parameters
    return table, [dict(zip(columns, (parameters[name.strip().lstrip(":")] for name in group.split(",")),
                            strict=True)) for group in groups]


async def _write(path: Path, writer, batches: list[list]) -> dict[str, list[dict]]:
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import temporary_database_config

    bound: dict[str, list[dict]] = {"events": [], "event_resources": []}

    def capture(conn, cursor, statement, parameters, context, many) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO EVENT"):
            table, rows = _bound_rows(statement, parameters, many)
            bound[table].extend(rows)

    with temporary_database_config(AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}")):
        db = provide_database_interface()
        engine = await db.database_config.engine()
        sa.event.listen(engine.sync_engine, "before_cursor_execute", capture)
        try:
            for batch in batches:
                async with db.session_context() as session:  # as the event persister: no transaction begun
                    await writer(session, batch)
                    await session.commit()
        finally:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", capture)
            await engine.dispose()
    return bound


def _comparable(rows: list[dict], table: str) -> list[dict]:
    """Rows with the insert times (and resource ids) replaced by their form, keyed for a stable order."""
    out = []
    for row in rows:
        row = dict(row)
        for name in TIMES & set(row):
            assert type(row[name]) is str and STAMP.fullmatch(row[name]), (name, row[name])
            row[name] = "<time>"
        if table == "event_resources":
            assert type(row["id"]) is str and uuid.UUID(row["id"]) and len(row["id"]) == 36
            row["id"] = "<id>"
        out.append(row)
    key = (lambda r: r["id"]) if table == "events" else (lambda r: (r["event_id"], r["resource_role"],
                                                                   r["resource_id"], r["resource"]))
    return sorted(out, key=key)


def _stored(path: Path, table: str) -> list[dict]:
    """Every column's ``typeof()`` and ``quote()`` as SQLite holds it, read with the plain ``sqlite3`` module."""
    with sqlite3.connect(path) as plain:
        columns = [row[1] for row in plain.execute(f"PRAGMA table_info({table})")]
        select = ", ".join(f"typeof({name}), quote({name})" for name in columns)
        rows = []
        for values in plain.execute(f"SELECT {select} FROM {table}"):
            row = {name: (values[2 * i], values[2 * i + 1]) for i, name in enumerate(columns)}
            rows.append(row)
    for row in rows:
        for name in TIMES & set(row):
            kind, text = row[name]
            assert kind == "text" and STAMP.fullmatch(text.strip("'")), (table, name, row[name])
            row[name] = (kind, "<time>")
        if table == "event_resources":
            assert row["id"][0] == "text" and len(row["id"][1]) == 38
            row["id"] = ("text", "<id>")
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


async def _read_back(path: Path) -> dict[str, list]:
    from prefect.server.database import provide_database_interface
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import temporary_database_config
    from prefect.server.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventRelatedFilter,
        EventResourceFilter,
    )
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.events.storage import database

    window = EventOccurredFilter(since=BASE - timedelta(days=1), until=BASE + timedelta(days=1))
    filters = {
        "all": EventFilter(occurred=window),
        "by name": EventFilter(occurred=window, event=EventNameFilter(prefix=["aodncore.file.q"])),
        "by resource": EventFilter(occurred=window, resource=EventResourceFilter(id=["file:///land/IMOS_0007.nc"])),
        "by label": EventFilter(occurred=window, resource=EventResourceFilter(
            labels={"aodncore.size": ["8", "9"]})),
        "by related": EventFilter(occurred=window, related=EventRelatedFilter(role=["flow-run"])),
        "by related id": EventFilter(occurred=window, related=EventRelatedFilter(id=["aodncore.check.c2"])),
    }
    found: dict[str, list] = {}
    with temporary_database_config(AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}")):
        db = provide_database_interface()
        async with db.session_context() as session:
            for name, event_filter in filters.items():
                events = await database.read_events(session, event_filter, limit=200)
                found[name] = sorted((ReceivedEvent.model_validate(row, from_attributes=True).model_dump(
                    mode="json", exclude={"recorded"}) for row in events), key=lambda e: e["id"])
            found["count"] = [await database.raw_count_events(session, filters["all"])]
        await (await db.database_config.engine()).dispose()
    assert all(found[name] for name in filters) and found["count"] == [36]
    return found


@pytest.fixture
def rows_on(monkeypatch):
    from aodncore.prefect.localserver import fastrows

    monkeypatch.setattr(fastrows, "_installed", True)
    return fastrows


def test_the_rows_bind_store_and_read_back_what_prefects_writer_does(tmp_path, rows_on):
    from prefect.server.events.storage import database

    from aodncore.prefect.localserver import fastevents

    prefects = database._write_sqlite_events
    assert prefects is not fastevents.write_sqlite_events
    events = _events()
    batches = [events[:24], events[20:30], events[30:]]  # 4 already stored in the second call, skipped
    theirs_path, ours_path = _database(tmp_path, "prefect"), _database(tmp_path, "aodncore")

    theirs = asyncio.run(_write(theirs_path, prefects, batches))
    ours = asyncio.run(_write(ours_path, fastevents.write_sqlite_events, batches))

    assert len(theirs["events"]) == 36 and len(theirs["event_resources"]) > 36
    for table in ("events", "event_resources"):
        expected, got = _comparable(theirs[table], table), _comparable(ours[table], table)
        assert len(got) == len(expected)
        for mine, prefect in zip(got, expected, strict=True):
            assert mine == prefect
            assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in prefect.items()}
        assert _stored(ours_path, table) == _stored(theirs_path, table)
    stored = _stored(ours_path, "events")
    assert ("null", "NULL") in [row["follows"] for row in stored] and ("text", "'{}'") in [
        row["payload"] for row in stored]
    assert asyncio.run(_read_back(ours_path)) == asyncio.run(_read_back(theirs_path))


def test_the_rows_are_used_only_where_installed_and_for_sqlalchemys_json(tmp_path, monkeypatch):
    import sqlalchemy as sa

    from aodncore.prefect.localserver import fastrows

    monkeypatch.setattr(fastrows, "_installed", False)
    plain = sa.create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    custom = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}", json_serializer=lambda value: "{}")
    with plain.connect() as one, custom.connect() as other:
        assert not fastrows.enabled(one)
        monkeypatch.setattr(fastrows, "_installed", True)
        assert fastrows.enabled(one) and not fastrows.enabled(other)


def test_install_gate_switch_and_changed_tables(monkeypatch, caplog):
    import prefect
    import sqlalchemy as sa
    from prefect.server.database import orm_models

    from aodncore.prefect.localserver import fastrows

    monkeypatch.setattr(fastrows, "_installed", False)
    caplog.set_level("INFO", logger="aodncore.prefect.localserver")
    verified = sorted(fastrows.patchgate.VERIFIED_PREFECT_VERSIONS)[0]

    monkeypatch.setattr(prefect, "__version__", "3.99.0")
    assert fastrows.install() is False and not fastrows._installed
    assert "Prefect 3.99.0: event rows bound by SQLAlchemy" in caplog.text

    monkeypatch.setattr(prefect, "__version__", verified)
    monkeypatch.setenv(fastrows.ENV_FAST_EVENT_ROWS, "0")
    assert fastrows.install() is False and not fastrows._installed
    assert f"{fastrows.ENV_FAST_EVENT_ROWS}=0: event rows bound by SQLAlchemy" in caplog.text
    monkeypatch.delenv(fastrows.ENV_FAST_EVENT_ROWS)

    with monkeypatch.context() as changed:  # a column of another type: the rows would no longer be Prefect's
        changed.setattr(orm_models.Event.__table__.c.payload, "type", sa.Text())
        assert fastrows.install() is False and not fastrows._installed
    assert fastrows.install() is True and fastrows._installed
    assert f"Prefect {verified}: event rows bound without SQLAlchemy's per-row processing" in caplog.text


def test_resource_row_ids_are_prefects_uuid7_layout_as_text():
    import time

    from prefect._internal.uuid7 import uuid7

    from aodncore.prefect.localserver import fastrows

    before = time.time_ns() // 1_000_000
    texts = [fastrows.uuid7_text() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    theirs = uuid7()
    assert len(set(texts)) == len(texts)
    for text in texts:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # the text str(uuid) gives, as Prefect's UUID type binds it
        assert parsed.version == theirs.version == 7 and parsed.variant == theirs.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after  # the millisecond first, as Prefect's: time-ordered
    assert [t[:13] for t in texts] == sorted(t[:13] for t in texts)
    assert len({uuid.UUID(t).int & ((1 << 62) - 1) for t in texts}) == len(texts)  # random bits vary
