"""What a Prefect task run and a table artifact cost a flow run on aodncore's background server.

Bare Prefect flows (persisted JSON result, a thread-pool task runner, no heartbeat) on the background server in a
fresh ``PREFECT_HOME``: with 0, 2 and 4 trivial task runs, and with 0 task runs plus one table artifact. Rounds
interleave the variants; medians of wall (the log and event workers drained, as the CLI does), this process's CPU
and the server's CPU (read from ``/proc`` once it is idle again). Usage::

    python benchmarks/bench_task_runs.py --rounds 6
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


def _flows() -> dict:
    from prefect import flow, task
    from prefect.artifacts import create_table_artifact
    from prefect.task_runners import ThreadPoolTaskRunner

    @task
    def one(value: int) -> int:
        return value

    def make(tasks: int, artifact: bool):  # noqa: ANN202
        @flow(name=f"bench-tasks-{tasks}{'-artifact' if artifact else ''}", persist_result=True,
              result_serializer="json", task_runner=ThreadPoolTaskRunner(4))
        def bench() -> list[int]:
            values = [future.result() for future in [one.submit(i) for i in range(tasks)]]
            if artifact:
                create_table_artifact([{"name": "x.nc", "status": "published"}], key="bench-tasks", description="d")
            return values

        return bench

    return {"0 tasks": make(0, False), "2 tasks": make(2, False), "4 tasks": make(4, False),
            "0 tasks + artifact": make(0, True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aodncore-bench-tasks-"))
    api = benchserver.start_api("background", tmp)
    benchserver.quiet_run_logging()
    api.wait()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    flows = _flows()
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in flows}
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        for bench in flows.values():  # warm: each flow registered, each code path run once
            bench()
            bench_throughput._drain()
        print(f"load {proctree.load_average()}", flush=True)
        for round_index in range(args.rounds):
            order = list(flows) if round_index % 2 == 0 else list(reversed(flows))
            for name in order:
                server0 = proctree.subtree_cpu(api.pid)
                own0 = proctree.process_cpu(os.getpid(), with_reaped=False)
                start = time.perf_counter()
                flows[name]()
                bench_throughput._drain()
                wall = time.perf_counter() - start
                proctree.wait_until_idle([api.pid])
                rows[name].append((wall, proctree.process_cpu(os.getpid(), with_reaped=False) - own0,
                                   proctree.subtree_cpu(api.pid) - server0))
    print(f"medians over {args.rounds} round(s), seconds; load {proctree.load_average()}")
    for name, found in rows.items():
        wall, own, server = (statistics.median(row[i] for row in found) for i in range(3))
        print(f"{name:<20} wall {wall:.3f}  flow CPU {own:.3f}  server CPU {server:.3f}")
    api.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
