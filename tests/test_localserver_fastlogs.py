"""The background server's log fast path stores exactly what Prefect's own log writer stores.

* :func:`aodncore.prefect.localserver.fastlogs.create_logs` against Prefect's ``create_logs``: the same records
  (null bytes in names and messages, with and without task runs, batches of different sizes) written into two
  fresh Prefect databases (from the shipped template) give the same ``log`` rows and the same logs read back;
  ids are uuid7 (time-ordered), as Prefect's are.
* Version gating and the off switch.
* A real background server: records posted to ``/logs/`` read back through ``/logs/filter`` as sent (null bytes
  stripped), and the server log says the fast path is on.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.prefect

BASE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FLOW_RUN = uuid.UUID(int=77)


def _records() -> list:
    from prefect.server.schemas.actions import LogCreate

    records = []
    for index in range(40):
        records.append(LogCreate(
            name="aodncore.ingest.handler" if index % 4 else "bad\x00name",
            level=(10, 20, 30, 40, 50)[index % 5],
            message=f"line {index}\n  é\u2603 detail" + ("\x00tail" if index % 7 == 0 else ""),
            timestamp=BASE + timedelta(milliseconds=index * 3),
            flow_run_id=FLOW_RUN if index % 9 else None,
            task_run_id=uuid.UUID(int=1000 + index) if index % 2 else None,
        ))
    return records


async def _write_and_dump(url: str, writer, batches: list[list]) -> tuple[list, list, list]:
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import temporary_database_config
    from prefect.server.models import logs as log_models
    from prefect.server.schemas.core import Log
    from prefect.server.schemas.filters import LogFilter, LogFilterTimestamp

    with temporary_database_config(AioSqliteConfiguration(connection_url=url)):
        db = provide_database_interface()
        for batch in batches:
            async with db.session_context(begin_transaction=True) as session:
                await writer(session=session, logs=batch)
        async with db.session_context() as session:
            rows = (await session.execute(sa.select(db.Log.__table__).order_by("timestamp"))).mappings().all()
            log_filter = LogFilter(timestamp=LogFilterTimestamp(after_=BASE - timedelta(days=1)))
            read = await log_models.read_logs(session=session, log_filter=log_filter)
            read_back = [Log.model_validate(row, from_attributes=True).model_dump(mode="json") for row in read]
        engine = await db.database_config.engine()
        await engine.dispose()
    skip = {"id", "created", "updated"}
    return ([{k: v for k, v in row.items() if k not in skip} for row in rows],
            [{k: v for k, v in row.items() if k not in skip} for row in read_back],
            [row for row in rows])


def _database(tmp_path: Path, name: str) -> str:
    from aodncore.prefect.localserver import dbtemplate

    path = tmp_path / name / "prefect.db"
    path.parent.mkdir()
    assert dbtemplate.create_database_from_template(path)
    return f"sqlite+aiosqlite:///{path}"


def test_the_executemany_log_writer_stores_what_prefects_writer_stores(tmp_path):
    from prefect.server.models import logs as log_models

    from aodncore.prefect.localserver import fastlogs

    prefects = log_models.create_logs
    assert prefects is not fastlogs.create_logs
    records = _records()
    batches = [records[:1], records[1:25], records[25:]]  # the API never writes an empty batch

    theirs = asyncio.run(_write_and_dump(_database(tmp_path, "prefect"), prefects, batches))
    ours = asyncio.run(_write_and_dump(_database(tmp_path, "aodncore"), fastlogs.create_logs, batches))

    assert len(theirs[0]) == 40 and len(theirs[1]) == 40
    assert not any("\x00" in row["name"] + row["message"] for row in theirs[0])
    assert ours[0] == theirs[0]
    assert ours[1] == theirs[1]
    ids = [row["id"] for row in ours[2]]
    assert len(set(ids)) == 40 and all(uuid.UUID(str(value)).version == 7 for value in ids)
    assert all(row["created"] is not None and row["updated"] is not None for row in ours[2])


def test_install_only_for_a_verified_prefect_and_not_when_switched_off(monkeypatch, caplog):
    import prefect
    from prefect.server.models import logs as log_models

    from aodncore.prefect.localserver import fastevents, fastlogs

    monkeypatch.setattr(log_models, "create_logs", log_models.create_logs)
    before = log_models.create_logs
    caplog.set_level("INFO", logger="aodncore.prefect.localserver")

    monkeypatch.setattr(prefect, "__version__", "3.99.0")
    assert fastlogs.install() is False and log_models.create_logs is before
    assert "Prefect 3.99.0: its own log writer kept" in caplog.text

    monkeypatch.setattr(prefect, "__version__", sorted(fastevents.VERIFIED_PREFECT_VERSIONS)[0])
    monkeypatch.setenv(fastlogs.ENV_FAST_LOGS, "0")
    assert fastlogs.install() is False and log_models.create_logs is before

    monkeypatch.delenv(fastlogs.ENV_FAST_LOGS)
    assert fastlogs.install() is True and log_models.create_logs is fastlogs.create_logs


@pytest.mark.timeout(300)
def test_logs_posted_to_the_background_server_read_back_as_sent(tmp_path):
    from test_localserver import assert_nothing_left, clean_env, server_log

    from aodncore.prefect.localserver.control import BackgroundServer

    home = tmp_path / "home"
    env = clean_env(home, AODNCORE_WARM_RUNNER="0")
    records = [{"name": "aodncore.test\x00x", "level": 20 + index % 3 * 10, "message": f"record {index}\x00 é",
                "timestamp": (BASE + timedelta(seconds=index)).isoformat(), "flow_run_id": str(FLOW_RUN),
                "task_run_id": None} for index in range(30)]
    with pytest.MonkeyPatch.context() as patch:
        for key in [key for key in __import__("os").environ if key.startswith(("PREFECT_", "AODNCORE_"))]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        server = BackgroundServer(home).start()
        try:
            server.wait()
            url = server.api_url

            def post(path: str, body: object) -> object:
                request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(), method="POST",
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    payload = response.read()
                return json.loads(payload) if payload else None

            post("/logs/", records[:1])
            post("/logs/", records[1:])
            read = post("/logs/filter", {"logs": {"flow_run_id": {"any_": [str(FLOW_RUN)]}}, "limit": 100})
            assert "logs stored with executemany inserts" in server_log(home)
        finally:
            server.release()
            assert_nothing_left(home)

    assert [(row["name"], row["level"], row["message"], row["flow_run_id"], row["task_run_id"]) for row in read] == \
        [("aodncore.testx", record["level"], record["message"].replace("\x00", ""), str(FLOW_RUN), None)
         for record in records]
    assert [datetime.fromisoformat(row["timestamp"]) for row in read] == \
        [BASE + timedelta(seconds=index) for index in range(30)]
    assert len({row["id"] for row in read}) == 30
