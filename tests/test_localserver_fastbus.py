"""The background server's bus hand-off (``aodncore.prefect.localserver.fastbus``) stores exactly what Prefect stores.

* The same events published on Prefect's in-memory bus and stored by Prefect's own event-persister handler, with and
  without the hand-off: the same raw ``events`` / ``event_resources`` rows and the same events read back; with it,
  every message carries its event and the persister parses none of them.
* Copies of a message (the broker's per-subscription ``deepcopy``, a dead-letter write, pickling) are plain bytes;
  other messages are parsed as Prefect parses them.
* Version gating, the off switch, one install only.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import pickle
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.prefect

BASE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _events() -> list:
    from prefect.server.events.schemas.events import ReceivedEvent

    return [ReceivedEvent(
        id=uuid.UUID(int=index + 1),
        occurred=BASE + timedelta(seconds=index, microseconds=index),
        received=BASE + timedelta(seconds=index, milliseconds=5),
        event="aodncore.file." + ("published", "quarantined", "failed")[index % 3],
        resource={"prefect.resource.id": f"file:///land/IMOS_{index:04d}.nc", "prefect.resource.name": f"é{index}"},
        related=[{"prefect.resource.id": f"aodncore.check.c{k}", "prefect.resource.role": "failed-check"}
                 for k in range(index % 4)],
        payload={"nested": {"list": [1, 2.5, None, "é\u2603", True], "n": index}, "empty": {}, "big": 2 ** 70},
        follows=uuid.UUID(int=index) if index % 5 == 0 and index else None,
    ) for index in range(25)]


def _database(tmp_path: Path, name: str) -> Path:
    from aodncore.prefect.localserver import dbtemplate

    path = tmp_path / name / "prefect.db"
    path.parent.mkdir()
    assert dbtemplate.create_database_from_template(path)
    return path


async def _publish_and_persist(path: Path, events: list) -> tuple[list, list]:
    """Publish ``events`` as the API does, take the persister's copies off the bus, run Prefect's persister
    handler on them (it stores them when it exits); the messages, and the events read back through Prefect."""
    from prefect.server.database import provide_database_interface
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import temporary_database_config
    from prefect.server.events import messaging
    from prefect.server.events.filters import EventFilter, EventOccurredFilter
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.events.services import event_persister
    from prefect.server.events.storage import database
    from prefect.server.utilities.messaging.memory import Cache, Topic

    await Cache().clear_recently_seen_messages()  # the broker drops ids it saw in the last minutes
    topic = Topic.by_name("events")
    subscription = topic.subscribe()
    try:
        await messaging.publish(events)
    finally:
        topic.unsubscribe(subscription)
    messages = []
    while not subscription._queue.empty():
        messages.append(subscription._queue.get_nowait())
    with temporary_database_config(AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}")):
        db = provide_database_interface()
        try:
            async with event_persister.create_handler(batch_size=1000, flush_every=timedelta(minutes=5)) as handle:
                for message in messages:
                    await handle(message)
            window = EventOccurredFilter(since=BASE - timedelta(days=1), until=BASE + timedelta(days=1))
            async with db.session_context() as session:
                read = await database.read_events(session, EventFilter(occurred=window))
                read_back = [ReceivedEvent.model_validate(row, from_attributes=True).model_dump(mode="json",
                                                                                               exclude={"recorded"})
                             for row in read]
        finally:
            await (await db.database_config.engine()).dispose()
    return messages, read_back


def _raw_rows(path: Path) -> tuple[list, list]:
    with sqlite3.connect(path) as plain:
        events = plain.execute("SELECT occurred, event, resource_id, resource, related_resource_ids, related, "
                               "payload, received, follows, id FROM events ORDER BY id").fetchall()
        resources = plain.execute("SELECT occurred, resource_id, resource_role, resource, event_id "
                                  "FROM event_resources ORDER BY event_id, resource_role, resource_id").fetchall()
    return events, resources


@pytest.fixture
def prefects_own_bus(monkeypatch):
    """Prefect's publisher and persister as imported, restored after the test whatever it installed."""
    from prefect.server.events.messaging import EventPublisher
    from prefect.server.events.services import event_persister

    monkeypatch.setattr(EventPublisher, "publish_event", EventPublisher.publish_event)
    monkeypatch.setattr(EventPublisher, "publish_data", EventPublisher.publish_data)
    from prefect.server.utilities.messaging import memory

    monkeypatch.setattr(event_persister, "ReceivedEvent", event_persister.ReceivedEvent)
    # (absent on Prefect's class: removed again after the test, whatever install put there)
    monkeypatch.setattr(memory.MemoryMessage, "__deepcopy__", memory.MemoryMessage.__dict__.get("__deepcopy__"),
                        raising=False)
    monkeypatch.delenv("AODNCORE_SERVER_FAST_BUS", raising=False)


def test_the_persister_stores_the_same_rows_from_handed_over_events(tmp_path, prefects_own_bus, monkeypatch):
    from prefect.server.events.schemas.events import ReceivedEvent

    from aodncore.prefect.localserver import fastbus

    theirs_db, ours_db = _database(tmp_path, "prefect"), _database(tmp_path, "aodncore")
    their_messages, theirs = asyncio.run(_publish_and_persist(theirs_db, _events()))
    assert all(type(message.data) is bytes for message in their_messages)

    assert fastbus.install() is True
    parsed = []
    real_parse = ReceivedEvent.model_validate_json.__func__

    def counting_parse(cls, *args, **kwargs):
        parsed.append(args[0])
        return real_parse(cls, *args, **kwargs)

    monkeypatch.setattr(ReceivedEvent, "model_validate_json", classmethod(counting_parse))
    our_messages, ours = asyncio.run(_publish_and_persist(ours_db, _events()))

    assert len(our_messages) == len(their_messages) == 25
    for mine, prefects in zip(our_messages, their_messages, strict=True):
        assert type(mine.data) is fastbus.EventJSON and mine.data == prefects.data
        assert mine.attributes == prefects.attributes
    assert parsed == []  # the persister parsed nothing
    assert _raw_rows(ours_db) == _raw_rows(theirs_db)
    assert len(_raw_rows(ours_db)[0]) == 25
    assert ours == theirs and len(ours) == 25


def test_copies_are_plain_bytes_and_other_messages_are_parsed(prefects_own_bus):
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.utilities.messaging.memory import MemoryMessage
    from pydantic_core import to_json

    from aodncore.prefect.localserver import fastbus

    event = _events()[7]
    raw = event.model_dump_json().encode()
    data = fastbus.EventJSON(raw)
    data.event = event
    message = MemoryMessage(data, {"id": str(event.id), "event": event.event})

    assert copy.deepcopy(message).data is data and data == raw and hash(data) == hash(raw)
    assert to_json(dataclasses.asdict(message)) == to_json(dataclasses.asdict(MemoryMessage(raw, message.attributes)))
    assert type(pickle.loads(pickle.dumps(data))) is bytes
    assert ReceivedEvent.model_validate_json(data) == event  # the other subscribers' own parse still works

    assert fastbus.PersisterEvents.model_validate_json(data) is event
    again = fastbus.PersisterEvents.model_validate_json(raw)
    assert type(again) is ReceivedEvent and again == event and again is not event
    stripped = fastbus.EventJSON(raw)  # no event carried: parsed
    assert fastbus.PersisterEvents.model_validate_json(stripped) == event


def test_install_only_for_a_verified_prefect_and_unless_switched_off(prefects_own_bus, monkeypatch, caplog):
    import prefect
    from prefect.server.events.messaging import EventPublisher
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.events.services import event_persister

    from aodncore.prefect.localserver import fastbus
    from aodncore.prefect.localserver.fastevents import VERIFIED_PREFECT_VERSIONS

    caplog.set_level("INFO", logger="aodncore.prefect.localserver")
    publish_event = EventPublisher.publish_event
    monkeypatch.setattr(prefect, "__version__", "3.99.0")
    assert fastbus.install() is False
    assert "Prefect 3.99.0: the event persister parses every bus message itself" in caplog.text

    monkeypatch.setattr(prefect, "__version__", sorted(VERIFIED_PREFECT_VERSIONS)[0])
    monkeypatch.setenv(fastbus.ENV_FAST_BUS, "0")
    assert fastbus.install() is False
    assert EventPublisher.publish_event is publish_event and event_persister.ReceivedEvent is ReceivedEvent

    monkeypatch.delenv(fastbus.ENV_FAST_BUS)
    assert fastbus.install() is True and fastbus.install() is True
    assert EventPublisher.publish_event.__wrapped__ is publish_event  # wrapped once
    assert event_persister.ReceivedEvent is fastbus.PersisterEvents
    assert "events handed to the event persister already parsed" in caplog.text
    from prefect.server.utilities.messaging import memory

    assert memory.MemoryMessage.__deepcopy__ is fastbus._message_deepcopy


def test_a_bus_message_copy_is_what_deepcopy_gives(prefects_own_bus, monkeypatch):
    """Each subscription's copy of a message (``Topic.publish``): equal to the standard ``deepcopy`` in fields and
    types, as independent of the original (its own attribute dictionary and retry count)."""
    import copy

    from prefect.server.utilities.messaging import memory

    from aodncore.prefect.localserver import fastbus

    carried = fastbus.EventJSON(b'{"id": "1"}')
    carried.event = object()

    class Labels(dict):
        pass

    messages = [memory.MemoryMessage(b"data", {"id": "1", "event": "aodncore.file.published"}),
                memory.MemoryMessage(carried, {"id": "1"}, 2), memory.MemoryMessage("text", {}),
                memory.MemoryMessage(b"x", None), memory.MemoryMessage(b"x", {"n": 1, "l": ["a"]}),
                memory.MemoryMessage(b"x", Labels(a="b")), memory.MemoryMessage(bytearray(b"x"), {"a": "b"})]
    odd = memory.MemoryMessage(b"x", {"a": "b"})
    odd.extra = ["kept"]
    messages.append(odd)
    standard = [copy.deepcopy(message) for message in messages]
    monkeypatch.setattr(memory.MemoryMessage, "__deepcopy__", fastbus._message_deepcopy, raising=False)
    ours = [copy.deepcopy(message) for message in messages]

    for message, theirs, mine in zip(messages, standard, ours, strict=True):
        assert mine is not message and mine == theirs == message and mine.__dict__ == theirs.__dict__
        assert {k: type(v) for k, v in mine.__dict__.items()} == {k: type(v) for k, v in theirs.__dict__.items()}
        assert (mine.attributes is message.attributes) is (theirs.attributes is message.attributes)
        assert (mine.data is message.data) is (theirs.data is message.data)
        if isinstance(message.attributes, dict):
            for name, value in message.attributes.items():
                assert (mine.attributes[name] is value) is (theirs.attributes[name] is value), name
        mine.retry_count += 1
        assert message.retry_count == theirs.retry_count
    assert ours[-1].extra == ["kept"] and ours[-1].extra is not odd.extra
    pair = [messages[0], messages[0]]
    again = copy.deepcopy(pair)
    assert again[0] is again[1] and again[0] is not messages[0]  # one copy per original, as deepcopy's memo

    async def publish() -> list:
        topic = memory.Topic("aodncore-test-copies")
        first, second = topic.subscribe(), topic.subscribe()
        await topic.publish(messages[0])
        return [await first.get(), await second.get()]

    import asyncio

    got = asyncio.run(publish())
    assert got[0] == got[1] == messages[0] and got[0] is not got[1]
    assert got[0].attributes is not got[1].attributes is not messages[0].attributes
