"""The fixed cost of one warm ``ingest_landing`` run, against a bare Prefect flow run on the same server.

Set up as ``bench_throughput.py`` sets up its warm flow (aodncore's background server in a fresh ``PREFECT_HOME``,
no heartbeat, one warm-up run done, the worker pool's fork server up), then, round after round (order alternating):

* ``bare`` — a Prefect flow run with one task (``submit().result()`` on a thread pool), persisted result: what any
  flow run costs on this server, the yardstick;
* ``empty`` — ``ingest_landing`` on an empty folder (listing, ingest record, states, no pool, no artifact);
* ``two`` / ``two-fresh`` — ``ingest_landing`` on 2 files with ``--workers`` workers (pool, 2 × workers
  ``ingest-batch`` task runs, table artifact), with the worker pool kept between runs (``two``, the default) and
  with a fresh pool per run (``two-fresh``: ``AODNCORE_WORKER_POOL_IDLE_SECONDS=0``, the code before pools were
  kept).

For each: wall seconds and CPU seconds of this process (flow), of the worker processes (below the fork server) and
of the API server (read from ``/proc``, the server given time to finish writing); medians; ratios to ``bare``.
Usage::

    python benchmarks/bench_runcost.py --rounds 5 --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_throughput  # noqa: E402
import benchserver  # noqa: E402
import proctree  # noqa: E402

PARTS = ("wall", "flow", "workers", "server")


def _bare_flow():  # noqa: ANN202 - built after the API is up (importing Prefect)
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    @task
    def one() -> int:
        return 1

    @flow(name="bench-bare", persist_result=True, result_serializer="json", task_runner=ThreadPoolTaskRunner(2))
    def bare() -> int:
        return one.submit().result()

    return bare


def run_bare(bare, server_pid: int) -> dict[str, float]:  # noqa: ANN001
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):  # as run_flow: not measured
        before_server = proctree.subtree_cpu(server_pid)
        before_flow = proctree.process_cpu(os.getpid(), with_reaped=False)
        start = time.perf_counter()
        state = bare(return_state=True)
        bench_throughput._drain()
        wall = time.perf_counter() - start
        proctree.wait_until_idle([server_pid])
        flow = proctree.process_cpu(os.getpid(), with_reaped=False) - before_flow
        server = proctree.subtree_cpu(server_pid) - before_server
    assert state.is_completed(), state
    return {"wall": wall, "flow": flow, "workers": 0.0, "server": server}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=2, help="files per 'two' run")
    parser.add_argument("--checks", default="", help="comma-separated suites for the runs (default: format only)")
    args = parser.parse_args()
    checks = [name for name in args.checks.split(",") if name] or None

    tmp = Path(tempfile.mkdtemp(prefix="aodncore-runcost-"))
    bench_api = benchserver.start_api("background", tmp)
    benchserver.quiet_run_logging()
    server_pid = bench_api.pid
    assert server_pid
    bench_api.wait()
    print(f"working in {tmp}; python {sys.version.split()[0]}; {len(os.sched_getaffinity(0))} cores; "
          f"workers={args.workers}; load {proctree.load_average()}")

    def ingest(count: int, label: str) -> dict[str, float]:
        landing = tmp / f"landing-{label}"
        landing.mkdir()
        bench_throughput.make_files(landing, count, label)
        base = tmp / f"base-{label}"
        row = bench_throughput.run_flow(str(landing), base, checks, args.workers, server_pid=server_pid)
        assert row["n"] == count, row
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(landing, ignore_errors=True)
        return row

    def fresh(count: int, label: str) -> dict[str, float]:
        previous = os.environ.get("AODNCORE_WORKER_POOL_IDLE_SECONDS")
        os.environ["AODNCORE_WORKER_POOL_IDLE_SECONDS"] = "0"
        try:
            return ingest(count, label)
        finally:
            if previous is None:
                os.environ.pop("AODNCORE_WORKER_POOL_IDLE_SECONDS")
            else:
                os.environ["AODNCORE_WORKER_POOL_IDLE_SECONDS"] = previous

    bare = _bare_flow()
    run_bare(bare, server_pid)
    ingest(2, "warm")
    variants = {
        "bare": lambda label: run_bare(bare, server_pid),
        "empty": lambda label: ingest(0, label),
        "two-fresh": lambda label: fresh(args.files, label),
        "two": lambda label: ingest(args.files, label),
    }
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for round_index in range(args.rounds):
        order = list(variants) if round_index % 2 == 0 else list(reversed(variants))
        for name in order:
            row = variants[name](f"{name}-{round_index}")
            rows[name].append(row)
            print(f"round {round_index} {name:<10} " + "  ".join(f"{part} {row[part]:.3f} s" for part in PARTS),
                  flush=True)

    print(f"\nmedians over {args.rounds} round(s), seconds (ratio to bare); load {proctree.load_average()}")
    medians = {name: {part: statistics.median(r[part] for r in found) for part in PARTS}
               for name, found in rows.items()}
    print(f"{'variant':<11}" + "".join(f"{part:>18}" for part in PARTS))
    for name, median in medians.items():
        cells = []
        for part in PARTS:
            base = medians["bare"][part]
            ratio = f"({median[part] / base:.1f}x)" if base > 0.001 else ""
            cells.append(f"{median[part]:>10.3f} {ratio:>7}")
        print(f"{name:<11}" + "".join(cells))
    for part in ("wall", "flow"):
        total = medians["two"][part] + medians["two"]["server"] * (part == "flow")
        print(f"fixed cost, {part}{' + server CPU' if part == 'flow' else ''}: two {total:.3f} s = "
              f"{total / (medians['bare'][part] + medians['bare']['server'] * (part == 'flow')):.2f}x bare")
    bench_api.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
