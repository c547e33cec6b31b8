"""What storing one file event costs the SQLite event writer, in isolation: CPU, write calls and bytes written.

Writes ``--events`` ``aodncore.file.published`` events (four resource rows each, as the flow's) into a fresh Prefect
database (from the shipped template), ``--batch`` per call, the way the event persister flushes them: a session that
begins no transaction, then ``commit()``. ``--ids``: the events' ids. ``--prefilled N`` stores N events first (a
table that has grown, as in a week of runs). ``--writer prefect`` is Prefect's own ``_write_sqlite_events``,
``aodncore`` the background server's
(:mod:`aodncore.prefect.localserver.fastevents`) with SQLAlchemy binding the rows, ``aodncore-rows`` the same with
its rows bound by :mod:`aodncore.prefect.localserver.fastrows` (as the server runs it). CPU is this process (the
writer runs here; SQLite in aiosqlite's thread), write calls and bytes from ``/proc/self/io``. Usage::

    .venv/bin/python benchmarks/bench_event_writer.py --writer prefect
    .venv/bin/python benchmarks/bench_event_writer.py --writer aodncore --prefilled 30000 --batch 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _io() -> tuple[int, int]:
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["syscw"]), int(fields["wchar"])


def _event(index: int, base: datetime, ids: str = "uuid7") -> object:
    from prefect._internal.uuid7 import uuid7
    from prefect.server.events.schemas.events import ReceivedEvent

    name = f"IMOS_ANMN_{index:06d}.nc"
    destination = f"file:///published/IMOS/ANMN/{name}"
    return ReceivedEvent(
        id=uuid7() if ids == "uuid7" else uuid.uuid4(), occurred=base + timedelta(milliseconds=index),
        event="aodncore.file.published",
        resource={"prefect.resource.id": f"file:///land/x/{name}", "prefect.resource.name": name,
                  "aodncore.fingerprint": "sha256:" + os.urandom(32).hex(), "aodncore.handler": "ImosGenericHandler"},
        related=[{"prefect.resource.id": "aodncore.handler.ImosGenericHandler", "prefect.resource.role": "handler",
                  "prefect.resource.name": "ImosGenericHandler"},
                 {"prefect.resource.id": destination, "prefect.resource.role": "destination"},
                 {"prefect.resource.id": "prefect.flow-run.0a1b2c3d-0000-7000-8000-000000000000",
                  "prefect.resource.role": "flow-run"}],
        payload={"status": "published", "check_result": "passed", "failed_checks": [], "destination": destination,
                 "error_uri": "", "error": "", "size": 12345})


async def _run(args: argparse.Namespace, database: Path) -> None:
    from prefect.server.database import provide_database_interface
    from prefect.server.database.configurations import AioSqliteConfiguration
    from prefect.server.database.dependencies import temporary_database_config
    from prefect.server.events.storage import database as storage

    from aodncore.prefect.localserver import dbtemplate, fastevents

    dbtemplate.create_database_from_template(database)
    writer = storage._write_sqlite_events if args.writer == "prefect" else fastevents.write_sqlite_events
    if args.writer == "aodncore-rows":
        from aodncore.prefect.localserver import fastrows

        assert fastrows.install(), "fastrows not installed (unverified Prefect or switched off)"
    base = datetime.now(UTC)
    with temporary_database_config(AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{database}")):
        db = provide_database_interface()

        async def flush(events: list) -> None:  # as the event persister's flush
            async with db.session_context() as session:
                await writer(session, events)
                await session.commit()

        prefilled = [_event(index, base, args.ids) for index in range(args.prefilled)]
        for start in range(0, len(prefilled), 500):
            await flush(prefilled[start:start + 500])
        events = [_event(args.prefilled + index, base, args.ids) for index in range(args.events + args.batch)]
        await flush(events[:args.batch])  # warm
        before, io_before = resource.getrusage(resource.RUSAGE_SELF), _io()
        for start in range(args.batch, len(events), args.batch):
            await flush(events[start:start + args.batch])
        after, io_after = resource.getrusage(resource.RUSAGE_SELF), _io()
        await (await db.database_config.engine()).dispose()
    count = args.events
    print(f"writer {args.writer:<13} ids {args.ids} batch {args.batch:4d} prefilled {args.prefilled:6d}: "
          f"CPU {1000 * (after.ru_utime - before.ru_utime) / count:.3f} user + "
          f"{1000 * (after.ru_stime - before.ru_stime) / count:.3f} sys ms/event; "
          f"{(io_after[0] - io_before[0]) / count:.1f} write calls, "
          f"{(io_after[1] - io_before[1]) / count / 1024:.1f} KiB written per event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writer", choices=("prefect", "aodncore", "aodncore-rows"), default="aodncore-rows")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--prefilled", type=int, default=0)
    parser.add_argument("--ids", choices=("uuid7", "uuid4"), default="uuid7",
                        help="event ids: uuid7 as aodncore's file events (since session 6), uuid4 as before")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="aodncore-bench-writer-"))
    try:
        asyncio.run(_run(args, scratch / "prefect.db"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
