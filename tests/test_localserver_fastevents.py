"""The background server's event fast path stores exactly what Prefect's own code stores.

* :func:`aodncore.prefect.localserver.fastevents.write_sqlite_events` against Prefect's ``_write_sqlite_events``:
  the same events written into two fresh Prefect databases (from the shipped template) give the same rows in
  ``events`` and ``event_resources`` and the same events read back; already-stored ids are skipped with their
  resources.
* The task-run recorder's filter passes task-run events (and anything it cannot name) and drops the rest unparsed.
* A real ``aodncore ingest`` against a fresh background server: the server says the fast path is on, the run's task
  runs are recorded (through the filtered recorder) and the per-file events read back through the API.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.prefect

BASE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _event(index: int, related: int) -> object:
    from prefect.server.events.schemas.events import ReceivedEvent

    return ReceivedEvent(
        id=uuid.UUID(int=index + 1),
        occurred=BASE + timedelta(seconds=index),
        received=BASE + timedelta(seconds=index, milliseconds=5),
        event="aodncore.file." + ("published", "quarantined", "failed")[index % 3],
        resource={"prefect.resource.id": f"file:///land/IMOS_{index:04d}.nc",
                  "prefect.resource.name": f"IMOS_{index:04d}.nc", "aodncore.fingerprint": f"sha256:{index}"},
        related=[{"prefect.resource.id": f"aodncore.check.c{k}", "prefect.resource.role": "failed-check",
                  "prefect.resource.name": f"c{k}"} for k in range(related)],
        payload={"status": "x", "size": index, "failed_checks": [f"c{k}" for k in range(related)],
                 "text": "é\u2603" * index},
        follows=uuid.UUID(int=index) if index % 5 == 0 and index else None,
    )


async def _write_and_dump(url: str, writer, batches: list[list]) -> tuple[list, list, list]:
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import temporary_database_config
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.events.storage import database

    with temporary_database_config(AioSqliteConfiguration(connection_url=url)):
        db = provide_database_interface()
        for batch in batches:
            async with db.session_context(begin_transaction=True) as session:
                await writer(session, batch)
        async with db.session_context() as session:
            events = (await session.execute(sa.select(db.Event.__table__).order_by("id"))).mappings().all()
            resources = (await session.execute(
                sa.select(db.EventResource.__table__).order_by("event_id", "resource_role", "resource_id")
            )).mappings().all()
            read = await database.read_events(session, _all_events_filter())
            read_back = [ReceivedEvent.model_validate(row, from_attributes=True).model_dump(mode="json")
                         for row in read]
        await db.engine()
        engine = await db.database_config.engine()
        await engine.dispose()
    skip = {"recorded", "created", "updated"}
    for row in [*events, *resources]:  # the insert time, per row, from either writer
        assert row["created"] is not None and row["updated"] is not None
    assert len({row["id"] for row in resources}) == len(resources)
    if writer is not database._write_sqlite_events:  # ours: time-ordered resource ids (Prefect's uuid7)
        assert {row["id"].version for row in resources} == {7}
    return ([{k: v for k, v in row.items() if k not in skip} for row in events],
            [{k: v for k, v in row.items() if k not in skip | {"id"}} for row in resources],
            [{k: v for k, v in row.items() if k != "recorded"} for row in read_back])


def _all_events_filter():
    from prefect.server.events.filters import EventFilter, EventOccurredFilter

    return EventFilter(occurred=EventOccurredFilter(since=BASE - timedelta(days=1), until=BASE + timedelta(days=1)))


def _database(tmp_path: Path, name: str) -> str:
    from aodncore.prefect.localserver import dbtemplate

    path = tmp_path / name / "prefect.db"
    path.parent.mkdir()
    assert dbtemplate.create_database_from_template(path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.mark.parametrize("rows", [False, True], ids=["sqlalchemy-binds", "fastrows"])
def test_the_executemany_writer_stores_what_prefects_writer_stores(tmp_path, monkeypatch, rows):
    from prefect.server.events.storage import database

    from aodncore.prefect.localserver import fastevents, fastrows

    monkeypatch.setattr(fastrows, "_installed", rows)

    prefects = database._write_sqlite_events
    assert prefects is not fastevents.write_sqlite_events
    events = [_event(index, related=index % 7) for index in range(90)]  # > one of Prefect's parameter batches
    # second call: 10 already stored (skipped with their resources) and 10 new
    batches = [events[:70], events[60:80], events[80:]]

    theirs = asyncio.run(_write_and_dump(_database(tmp_path, "prefect"), prefects, batches))
    ours = asyncio.run(_write_and_dump(_database(tmp_path, "aodncore"), fastevents.write_sqlite_events, batches))

    assert len(theirs[0]) == 90 and len(theirs[1]) == sum(1 + index % 7 for index in range(90))
    assert ours == theirs


@pytest.mark.parametrize("rows", [False, True], ids=["sqlalchemy-binds", "fastrows"])
def test_the_writer_skips_an_all_duplicate_call_and_a_second_copy_in_one_call(tmp_path, monkeypatch, rows):
    from aodncore.prefect.localserver import fastevents, fastrows

    monkeypatch.setattr(fastrows, "_installed", rows)

    events = [_event(index, related=2) for index in range(5)]
    url = _database(tmp_path, "dup")
    rows, resources, _ = asyncio.run(_write_and_dump(
        url, fastevents.write_sqlite_events, [events, events[:3], [events[4], _event(7, 1), _event(7, 1)]]))

    assert [row["id"] for row in rows] == [uuid.UUID(int=n) for n in (1, 2, 3, 4, 5, 8)]
    assert len(resources) == 5 * 3 + 2


@pytest.mark.parametrize("rows", [False, True], ids=["sqlalchemy-binds", "fastrows"])
def test_the_writer_stores_the_persisters_batch_in_one_transaction(tmp_path, monkeypatch, rows):
    """The event persister's session begins no transaction (Prefect's SQLite connections autocommit): the writer's
    inserts must still be one transaction, committed by the persister's ``commit()`` — not a commit per row."""
    import sqlite3

    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import temporary_database_config

    from aodncore.prefect.localserver import fastevents, fastrows

    monkeypatch.setattr(fastrows, "_installed", rows)
    url = _database(tmp_path, "persister")
    events = [_event(index, related=2) for index in range(6)]

    async def persist(batch) -> None:  # as ``event_persister.create_handler``'s flush
        with temporary_database_config(AioSqliteConfiguration(connection_url=url)):
            db = provide_database_interface()
            try:
                async with db.session_context() as session:
                    await fastevents.write_sqlite_events(session, batch)
                    await session.commit()
            finally:
                await (await db.database_config.engine()).dispose()

    def stored() -> tuple[int, int]:
        with sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///")) as plain:
            ids = [row[0] for row in plain.execute("SELECT id FROM event_resources ORDER BY rowid")]
            stamps = [row_id[:13] for row_id in ids]  # uuid7: the millisecond first, so each row goes to the
            assert stamps == sorted(stamps)  # end of the primary-key index, not to a random page of it
            return plain.execute("SELECT count(*) FROM events").fetchone()[0], len(ids)

    same_id = uuid.uuid4()
    with monkeypatch.context() as patched:  # every resource row the same id: the second resource row fails
        patched.setattr(fastevents, "_new_resource_id", lambda: same_id)
        patched.setattr(fastevents, "_new_resource_id_text", lambda: str(same_id))
        with pytest.raises(sa.exc.IntegrityError):
            asyncio.run(persist(events))
    assert stored() == (0, 0)  # nothing of the failed batch (autocommitted rows would have stayed)

    asyncio.run(persist(events))
    assert stored() == (6, 6 * 3)


def _client_event(index: int, related: int) -> dict:
    return {"id": str(uuid.UUID(int=index + 1)), "occurred": (BASE + timedelta(seconds=index)).isoformat(),
            "event": "aodncore.file." + ("published", "quarantined")[index % 2],
            "resource": {"prefect.resource.id": f"file:///land/IMOS_{index:04d}.nc", "aodncore.size": str(index)},
            "related": [{"prefect.resource.id": f"aodncore.check.c{k}", "prefect.resource.role": "failed-check"}
                        for k in range(related)],
            "payload": {"nested": {"list": [1, 2.5, None, "é\u2603"], "n": index}, "empty": {}},
            **({"follows": str(uuid.UUID(int=index))} if index % 3 == 0 and index else {})}


def test_receiving_an_event_gives_what_prefects_receive_gives():
    from prefect.server.events.schemas.events import Event, ReceivedEvent

    from aodncore.prefect.localserver import fastevents

    prefects = Event.receive
    assert prefects is not fastevents.receive_event
    at = BASE + timedelta(hours=1)
    for index in range(12):
        event = Event.model_validate(_client_event(index, related=index % 4))
        for received in (None, at):
            theirs, ours = prefects(event, received), fastevents.receive_event(event, received)
            assert type(ours) is ReceivedEvent and ours.model_fields_set == theirs.model_fields_set
            assert ours.model_dump(exclude={"received"}) == theirs.model_dump(exclude={"received"})
            assert ours.model_dump_json(exclude={"received"}) == theirs.model_dump_json(exclude={"received"})
            assert ours.model_dump_json(exclude_unset=True) == theirs.model_dump_json(exclude_unset=True)
            assert ours.as_database_resource_rows() == theirs.as_database_resource_rows()
            for name in ("occurred", "received", "resource", "id"):
                assert type(getattr(ours, name)) is type(getattr(theirs, name)), name
            assert [type(r) for r in ours.related] == [type(r) for r in theirs.related]
            if received is None:
                assert abs(ours.received - theirs.received) < timedelta(seconds=5)
            else:
                assert ours.received == theirs.received == at
        again = prefects(event)  # a ReceivedEvent received again keeps its time, as with Prefect's
        assert fastevents.receive_event(again).model_dump() == prefects(again).model_dump() == again.model_dump()


def test_the_task_run_recorder_filter_drops_other_events_before_parsing():
    from contextlib import asynccontextmanager

    from prefect.server.utilities.messaging.memory import MemoryMessage

    from aodncore.prefect.localserver import fastevents

    seen: list[bytes] = []

    @asynccontextmanager
    async def consumer(**kwargs):
        assert kwargs == {"write_batch_size": 3}

        async def handler(message):
            seen.append(message.data)

        yield handler

    async def feed() -> None:
        async with fastevents._only_task_run_events(consumer)(write_batch_size=3) as handle:
            for data, attributes in ((b"a", {"event": "aodncore.file.published", "id": "1"}),
                                     (b"b", {"event": "prefect.task-run.Completed", "id": "2"}),
                                     (b"c", {"id": "3"}), (b"d", None),
                                     (b"e", {"event": "prefect.flow-run.Running", "id": "4"})):
                await handle(MemoryMessage(data, attributes))

    asyncio.run(feed())
    assert seen == [b"b", b"c", b"d"]


def test_install_only_for_a_verified_prefect(monkeypatch, caplog):
    import prefect
    from prefect.server.events.schemas.events import Event
    from prefect.server.events.storage import database
    from prefect.server.services import task_run_recorder

    from aodncore.prefect.localserver import fastevents

    monkeypatch.setattr(database, "_write_sqlite_events", database._write_sqlite_events)
    monkeypatch.setattr(task_run_recorder, "consumer", task_run_recorder.consumer)
    monkeypatch.setattr(Event, "receive", Event.receive)
    from prefect.server.events.messaging import EventPublisher
    from prefect.server.events.services import event_persister

    for name in ("publish_event", "publish_data"):  # fastbus, installed with these
        monkeypatch.setattr(EventPublisher, name, getattr(EventPublisher, name))
    monkeypatch.setattr(event_persister, "ReceivedEvent", event_persister.ReceivedEvent)
    from prefect.server.utilities.messaging import memory

    monkeypatch.setattr(memory.MemoryMessage, "__deepcopy__", memory.MemoryMessage.__dict__.get("__deepcopy__"),
                        raising=False)
    from aodncore.prefect.localserver import fastrows

    monkeypatch.setattr(fastrows, "_installed", False)
    monkeypatch.setattr(prefect, "__version__", "3.99.0")
    caplog.set_level("INFO", logger="aodncore.prefect.localserver")
    before = database._write_sqlite_events

    assert fastevents.install() is False
    assert database._write_sqlite_events is before
    assert "Prefect 3.99.0: its own event writer and task-run recorder kept" in caplog.text

    monkeypatch.setattr(prefect, "__version__", sorted(fastevents.VERIFIED_PREFECT_VERSIONS)[0])
    monkeypatch.setenv(fastevents.ENV_FAST_EVENTS, "0")
    assert fastevents.install() is False and database._write_sqlite_events is before

    monkeypatch.delenv(fastevents.ENV_FAST_EVENTS)
    assert fastevents.install() is True
    assert database._write_sqlite_events is fastevents.write_sqlite_events
    assert getattr(task_run_recorder.consumer, "aodncore_task_run_filter", False)
    assert Event.receive is fastevents.receive_event
    assert fastrows._installed  # and the rows (their own gate: tests/test_localserver_fastrows.py)
    installed = task_run_recorder.consumer
    assert fastevents.install() is True and task_run_recorder.consumer is installed  # not wrapped twice
    _the_installed_recorder_parses_task_run_events_only(task_run_recorder)


def _the_installed_recorder_parses_task_run_events_only(task_run_recorder) -> None:
    """Prefect's own recorder handler, reached through what ``install`` put in its place: data that is not JSON
    fails only where the recorder parses it (a task-run event, or one it cannot name)."""
    from prefect.server.utilities.messaging.memory import MemoryMessage

    async def feed() -> list[str]:
        parsed = []
        async with task_run_recorder.consumer(write_batch_size=10, flush_every=60) as handle:
            for name in ("aodncore.file.published", "prefect.flow-run.Running", "prefect.task-run.Completed", None):
                attributes = {"id": "1"} if name is None else {"event": name, "id": "1"}
                try:
                    await handle(MemoryMessage(b"not json", attributes))
                except ValueError:  # pydantic's ValidationError: Prefect's handler parsed it
                    parsed.append(str(name))
        return parsed

    assert asyncio.run(feed()) == ["prefect.task-run.Completed", "None"]


@pytest.mark.timeout(600)
def test_a_run_against_the_background_server_records_task_runs_and_file_events(tmp_path):
    from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR
    from test_localserver import AODNCORE, api, assert_nothing_left, clean_env, server_log, wait_for

    from aodncore.prefect.localserver.state import ServerPaths, read_state

    home = tmp_path / "home"
    landing = tmp_path / "landing"
    landing.mkdir()
    good = next(iter(GOOD_FILES))
    shutil.copy(IMOS_DIR / good, landing / good)
    shutil.copy(IMOS_DIR / BAD_NC, landing / BAD_NC)
    env = clean_env(home, AODNCORE_WARM_RUNNER="0")
    try:
        result = subprocess.run([AODNCORE, "ingest", "landing", "--base-dir", "store", "--workers", "1"],
                                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode in (0, 1), result.stderr
        state = read_state(ServerPaths(home))
        assert "events stored with executemany inserts" in server_log(home)
        assert "events handed to the event persister already parsed" in server_log(home)
        assert "event rows bound without SQLAlchemy's per-row processing" in server_log(home)
        run = api(state, "/flow_runs/filter", {})[0]
        tasks = api(state, "/task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}})
        assert tasks and {task["state_type"] for task in tasks} == {"COMPLETED"}

        def file_events():
            found = api(state, "/events/filter", {"filter": {"event": {"prefix": ["aodncore.file."]}}, "limit": 50})
            return len(found["events"]) >= 2 and found["events"]

        events = wait_for(file_events, 30, "the per-file events")
        by_name = {event["resource"]["prefect.resource.name"]: event for event in events}
        assert by_name[good]["event"] == "aodncore.file.published"
        assert by_name[BAD_NC]["event"] in ("aodncore.file.quarantined", "aodncore.file.failed")
        for event in events:
            roles = {related["prefect.resource.role"] for related in event["related"]}
            assert {"handler", "flow-run"} <= roles, json.dumps(event)
            assert event["resource"]["prefect.resource.id"].startswith(landing.as_uri())
        assert len({event["id"] for event in events}) == len(events) == 2
        assert {uuid.UUID(event["id"]).version for event in events} == {7}  # time-ordered, as Prefect's own
    finally:
        assert_nothing_left(home)


def test_persister_defaults_leave_the_users_settings_alone():
    from aodncore.prefect.localserver import fastevents

    environ = {"PREFECT_API_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "7"}
    fastevents.apply_persister_defaults(environ)

    assert environ == {"PREFECT_API_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "7",
                       "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1"}
    from prefect.settings.models.server.services import ServerServicesEventPersisterSettings

    for name, value in fastevents.PERSISTER_DEFAULTS.items():
        field = name.removeprefix("PREFECT_SERVER_SERVICES_EVENT_PERSISTER_").lower()
        assert name.lower() in ServerServicesEventPersisterSettings.model_fields[field].validation_alias.choices
        assert float(value) > 0
