"""What one log record and one event cost a flow run: the flow process and the local Prefect API server.

A flow run against the server the CLI starts (see ``--server`` below) emits, per
variant, ``--items`` of:

* ``records`` — one ``aodncore`` log record each (three lines, the size of a file's combined worker record);
* ``joined`` — the same lines, 100 to a record (:class:`aodncore.ingest.logbatch.LogBatch`'s way);
* ``events`` — one ``aodncore.file.published`` event each (:class:`aodncore.prefect.fileevents.FileEventEmitter`,
  posted in batches), with its usual related resources (handler, destination, flow run);
* ``events-bare`` — the same events without related resources (each related resource is a row the server stores);
* ``big-records`` — one 3 KB record each (a quarantined file's combined record with its checker report);
* ``reports`` — one failure-report markdown artifact each (what a quarantined file got before the run's report);
* ``summary`` — the same files in runs' failure reports (:func:`create_failure_summary`, one artifact per 20 files);
* ``nothing`` — the empty flow run, the baseline.

CPU per item: this process (``time.process_time``) and the server's process tree (``/proc``, after the server
went idle). The server is the one the CLI uses (``--server background``, aodncore's background server with its
event fast path, :mod:`aodncore.prefect.localserver.fastevents`) or Prefect's own (``--server ephemeral``). Usage::

    .venv/bin/python benchmarks/bench_prefect_records.py --items 2000
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchserver  # noqa: E402
import proctree  # noqa: E402

VARIANTS = ("nothing", "records", "joined", "big-records", "events", "events-bare", "reports", "summary")


def _emit(kind: str, count: int, flow_run_id: str) -> None:
    from aodncore.ingest.outcome import FileOutcome
    from aodncore.ingest.sources import LandingObject
    from aodncore.prefect import fileevents

    log = logging.getLogger("aodncore.ingest.handler")
    if kind == "records":
        for index in range(count):
            log.info("running ImosGenericHandler on 'file:///land/IMOS_%05d.nc'\n  handler result for input_file "
                     "'file:///land/IMOS_%05d.nc': SUCCESS\n  published to IMOS/ANMN/IMOS_%05d.nc", index, index,
                     index)
    elif kind == "joined":
        for start in range(0, count, 100):
            log.info("\n".join(f"running ImosGenericHandler on 'file:///land/IMOS_{index:05d}.nc'\n  handler "
                               f"result for input_file 'file:///land/IMOS_{index:05d}.nc': SUCCESS"
                               for index in range(start, min(start + 100, count))))
    elif kind == "big-records":
        report = "\n".join(f"  ERROR: [aodncore.ingest.handler] §2.{line}: a failed compliance check line of the "
                            "report, about this long" for line in range(30))
        for index in range(count):
            log.error("running ImosGenericHandler on 'file:///land/IMOS_%05d.nc'\n%s", index, report)
    elif kind in ("reports", "summary"):
        from aodncore.prefect.artifacts import create_failure_report, create_failure_summary

        outcomes = [FileOutcome(
            source=f"file:///land/IMOS_{index:05d}.nc", name=f"IMOS_{index:05d}.nc", status="quarantined",
            handler="Imos", check_result="failed", failed_checks=["cf:1.6"],
            error="ComplianceCheckFailedError: the following files failed the check step: ['x.nc']",
            error_uri=f"file:///error/IMOS_{index:05d}.nc") for index in range(count)]
        if kind == "reports":
            for outcome in outcomes:
                create_failure_report(outcome)  # no key, as the flows created them
        else:
            for start in range(0, count, 20):
                create_failure_summary(outcomes[start:start + 20], key="bench-refused", limit=20)
    elif kind.startswith("events"):
        original = fileevents.file_event
        if kind == "events-bare":
            def bare(*args, **kwargs):
                event = original(*args, **kwargs)
                event["related"] = []
                return event
            fileevents.file_event = bare
        try:
            emitter = fileevents.FileEventEmitter("ImosGenericHandler", flow_run_id)
            for index in range(count):
                obj = LandingObject(uri=f"file:///land/IMOS_{index:05d}.nc", name=f"IMOS_{index:05d}.nc", size=100,
                                    fingerprint="sha256:0")
                emitter(obj, FileOutcome(source=obj.uri, name=obj.name, status="published", handler="Imos",
                                         destination=f"file:///published/IMOS_{index:05d}.nc"))
            emitter.close()
        finally:
            fileevents.file_event = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--server", choices=benchserver.MODES, default="background",
                        help="the API the CLI would use (background, its default) or Prefect's ephemeral server")
    args = parser.parse_args()

    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="aodncore-bench-records-"))
    bench_api = benchserver.start_api(args.server, scratch)
    for handler_name, level in (("CONSOLE", "WARNING"), ("CONSOLE_FLOW_RUNS", "CRITICAL"),
                                ("CONSOLE_TASK_RUNS", "CRITICAL")):
        os.environ.setdefault(f"PREFECT_LOGGING_HANDLERS_{handler_name}_LEVEL", level)
    server_pid = bench_api.pid
    bench_api.wait()

    from prefect import flow
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    from aodncore.prefect.logbridge import forward_library_logs

    logging.getLogger("aodncore").propagate = False

    @flow(name="bench-prefect-records")
    def emit_flow(kind: str, count: int) -> None:
        from prefect.runtime import flow_run

        with forward_library_logs("aodncore", logging.INFO):
            _emit(kind, count, str(flow_run.id))

    emit_flow("nothing", 1)  # warm
    print(f"load {proctree.load_average()}; {args.items} items per run; server pid {server_pid}; "
          "ms per item (flow process / server)", flush=True)
    for round_index in range(args.rounds):
        for kind in args.variants.split(","):
            server_before = proctree.subtree_cpu(server_pid) if server_pid else 0.0
            own_before = time.process_time()
            emit_flow(kind, args.items)
            APILogWorker.drain_all(timeout=60)
            EventsWorker.drain_all(timeout=60)
            if server_pid:
                proctree.wait_until_idle([server_pid])
            own = 1000 * (time.process_time() - own_before) / args.items
            server = 1000 * ((proctree.subtree_cpu(server_pid) if server_pid else 0.0) - server_before) / args.items
            print(f"round {round_index} {kind:<12} flow {own:6.3f}  server {server:6.3f}", flush=True)
    print(f"load at the end {proctree.load_average()}")
    bench_api.stop()
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
