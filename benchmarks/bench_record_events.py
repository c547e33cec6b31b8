"""Per-file cost of exclusive processing (claims, batched outcome writes) and of per-file Prefect events.

    .venv/bin/python benchmarks/bench_record_events.py --objects 20000 [--postgres]

Prints, per backend, the microseconds per object of: a batched look-up (the re-scan path), a claim, writing the
outcome through ``RecordWriter`` (batched, releasing the claim); and for events the microseconds per file spent
in the flow process by ``FileEventEmitter`` (queuing the event) plus the time the events worker then needs to
deliver them to a Prefect API (``prefect_test_harness``). The baseline in the same run is building the
``LandingObject``/``FileOutcome`` pairs themselves.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from aodncore.ingest.outcome import PUBLISHED, QUARANTINED, FileOutcome  # noqa: E402
from aodncore.ingest.record import RecordWriter, open_ingest_record  # noqa: E402
from aodncore.ingest.sources import LandingObject  # noqa: E402


def _pairs(count: int) -> list[tuple[LandingObject, FileOutcome]]:
    pairs = []
    for n in range(count):
        uri = f"s3://landing/IMOS/ANMN/NRS/file-{n:07d}.nc"
        obj = LandingObject(uri=uri, name=uri.rsplit("/", 1)[-1], size=1000, fingerprint=f"etag{n:032x}",
                            bucket="landing", key=uri[14:])
        status = QUARANTINED if n % 10 == 0 else PUBLISHED
        pairs.append((obj, FileOutcome(source=uri, name=obj.name, status=status,
                                       destination=f"s3://pub/{obj.key}", failed_checks=["cf:1.6"] if n % 10 == 0
                                       else [])))
    return pairs


def bench_record(location: str, count: int) -> dict[str, float]:
    start = time.perf_counter()
    pairs = _pairs(count)
    baseline = time.perf_counter() - start
    objects = [obj for obj, _ in pairs]
    with open_ingest_record(location) as record:
        start = time.perf_counter()
        record.split_done(objects)
        lookup_empty = time.perf_counter() - start
        writer = RecordWriter(record, "bench-owner", run_id="bench")
        start = time.perf_counter()
        claimed = writer.claim(objects).claimed
        claim = time.perf_counter() - start
        assert len(claimed) == count
        start = time.perf_counter()
        for obj, outcome in pairs:
            writer.record(obj, outcome)
        queued = time.perf_counter() - start
        writer.close()
        write = time.perf_counter() - start
        start = time.perf_counter()
        done, todo = record.split_done(objects)
        rescan = time.perf_counter() - start
        assert len(done) == count and not todo
    per = 1e6 / count
    return {"build pairs (baseline)": baseline * per, "look-up, empty record": lookup_empty * per,
            "claim": claim * per, "record outcome (queued)": queued * per,
            "record outcome (written, claim released)": write * per, "re-scan look-up, all done": rescan * per}


def _emit_event_cost(pairs: list[tuple[LandingObject, FileOutcome]]) -> float:
    from prefect.events import emit_event

    from aodncore.prefect.fileevents import file_event

    start = time.perf_counter()
    for obj, outcome in pairs:
        emit_event(**file_event(obj, outcome, handler="BenchHandler"))
    return (time.perf_counter() - start) * 1e6 / len(pairs)


def bench_events(count: int) -> dict[str, float]:
    from prefect import flow
    from prefect.events.worker import EventsWorker
    from prefect.testing.utilities import prefect_test_harness

    from aodncore.prefect.fileevents import FileEventEmitter

    pairs = _pairs(count)
    timings: dict[str, float] = {}

    @flow
    def emit_all() -> None:
        emitter = FileEventEmitter("BenchHandler", "00000000-0000-0000-0000-000000000000")
        start = time.perf_counter()
        for obj, outcome in pairs:
            emitter(obj, outcome)
        timings["queue event (flow process)"] = (time.perf_counter() - start) * 1e6 / count
        start = time.perf_counter()
        emitter.close()
        timings["post in batches (background thread, until closed)"] = (time.perf_counter() - start) * 1e6 / count
        timings["prefect emit_event, for comparison"] = _emit_event_cost(pairs[: max(1, count // 10)])

    with prefect_test_harness(server_startup_timeout=120):
        emit_all()
        start = time.perf_counter()
        EventsWorker.drain_all(timeout=600)
        timings["drain emit_event's queue (comparison)"] = (time.perf_counter() - start) * 1e6 / count
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true", help="also a throwaway PostgreSQL (tests/pgserver.py)")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        results["sqlite"] = bench_record(str(Path(scratch) / "record.sqlite"), args.objects)
    if args.postgres:
        from pgserver import start_server

        server = start_server()
        try:
            database = server.create_database()
            results["postgresql"] = bench_record(database.url, args.objects)
        finally:
            server.stop()
    results["events"] = bench_events(args.events)
    for backend, timings in results.items():
        print(f"{backend}:")
        for name, micros in timings.items():
            print(f"  {name:<48} {micros:8.1f} µs/object")


if __name__ == "__main__":
    main()
