"""The Prefect API requests one warm ``ingest_landing`` run makes, and where its fixed wall time goes.

The same harness as ``bench_run_sizes.py`` (aodncore's background server in a fresh ``PREFECT_HOME``, a warm run
first, 2 workers, replicated real IMOS files, format checks only unless ``--checks``). Every HTTP request of the
flow process is recorded (``httpx`` clients' ``send`` wrapped, benchmark only): method, route (ids replaced by
``{id}``), thread, wall time; per run the table of requests is printed, then the medians over the runs. With
``--profile FILE`` the measured runs are profiled with pyinstrument (an HTML report). Usage::

    python benchmarks/bench_run_requests.py --files 2 --runs 5
    python benchmarks/bench_run_requests.py --files 2 --runs 3 --profile /tmp/runcost/run.html
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_throughput as bt  # noqa: E402
import benchserver  # noqa: E402
import proctree  # noqa: E402

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RECORDED: list[tuple[str, str, str, float, float]] = []  # (method, route, thread, start, seconds)


def _route(request) -> str:  # noqa: ANN001
    path = _ID.sub("{id}", request.url.path)
    return path.split("/api", 1)[-1] or "/"


def install_recorder() -> None:
    """Record every request of this process's httpx clients (sync and async)."""
    import httpx

    sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

    def send(self, request, **kwargs):  # noqa: ANN001, ANN202
        start = time.perf_counter()
        try:
            return sync_send(self, request, **kwargs)
        finally:
            RECORDED.append((request.method, _route(request), threading.current_thread().name, start,
                             time.perf_counter() - start))

    async def asend(self, request, **kwargs):  # noqa: ANN001, ANN202
        start = time.perf_counter()
        try:
            return await async_send(self, request, **kwargs)
        finally:
            RECORDED.append((request.method, _route(request), threading.current_thread().name, start,
                             time.perf_counter() - start))

    httpx.Client.send = send
    httpx.AsyncClient.send = asend


def _thread_kind(name: str) -> str:
    if name.startswith("MainThread"):
        return "main"
    for prefix in ("aodncore-file-events", "APILogWorker", "EventsWorker", "GlobalEventLoopThread"):
        if name.startswith(prefix):
            return prefix
    return re.sub(r"[-_]?\d+.*$", "", name) or name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--checks", default="", help="check suites ('' for format checks only)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--profile", help="pyinstrument HTML report of the measured runs")
    parser.add_argument("--spy-server", help="py-spy record of the API server during the measured runs (raw)")
    parser.add_argument("--spy-flow", help="py-spy record (every thread, idle included) of this process (raw)")
    parser.add_argument("--quiet", action="store_true", help="only the medians, not each run's requests")
    args = parser.parse_args()
    checks = [c for c in args.checks.split(",") if c] or None

    tmp = Path(tempfile.mkdtemp(prefix="aodncore-bench-requests-"))
    api = benchserver.start_api("background", tmp)
    benchserver.quiet_run_logging()
    api.wait()
    install_recorder()
    print(f"load {proctree.load_average()}; {len(os.sched_getaffinity(0))} cores; checks {checks}", flush=True)
    bt.make_files(tmp / "warm", 2, "w")
    bt.run_flow(str(tmp / "warm"), tmp / "warm-base", checks, args.workers, server_pid=api.pid)
    bt.make_files(tmp / "warm2", 2, "v")
    bt.run_flow(str(tmp / "warm2"), tmp / "warm-base2", checks, args.workers, server_pid=api.pid)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
    spy = None
    if args.spy_server or args.spy_flow:
        import subprocess

        pid, extra = (api.pid, []) if args.spy_server else (os.getpid(), ["--threads", "--idle"])
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate",
                                "500", "--format", "raw", "--output", args.spy_server or args.spy_flow,
                                "--nonblocking", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    per_run: list[collections.Counter] = []
    walls, requests, request_time = [], [], []
    for index in range(args.runs):
        landing = tmp / f"landing-{index}"
        bt.make_files(landing, args.files, f"r{index}")
        RECORDED.clear()
        if profiler:
            profiler.start()
        start = time.perf_counter()
        row = bt.run_flow(str(landing), tmp / f"base-{index}", checks, args.workers, server_pid=api.pid)
        if profiler:
            profiler.stop()
        seen = [r for r in RECORDED if r[3] >= start]
        walls.append(row["wall"])
        requests.append(len(seen))
        request_time.append(sum(r[4] for r in seen))
        table: collections.Counter = collections.Counter()
        times: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)
        for method, route, thread, _, seconds in seen:
            key = (_thread_kind(thread), method, route)
            table[key] += 1
            times[key].append(seconds)
        per_run.append(table)
        print(f"run {index}: {row['n']} files, wall {row['wall']:.3f} s (flow CPU {row['flow']:.3f}, server "
              f"{row['server']:.3f}), {len(seen)} requests, {1000 * sum(r[4] for r in seen):.0f} ms in requests; "
              f"load {proctree.load_average()}", flush=True)
        if not args.quiet:
            for offset, (method, route, thread, begun, seconds) in enumerate(sorted(seen, key=lambda r: r[3])):
                print(f"   {offset:3d} +{1000 * (begun - start):7.1f} ms {1000 * seconds:7.1f} ms  "
                      f"{_thread_kind(thread):<22} {method:<6} {route}")
        shutil.rmtree(landing, ignore_errors=True)
        shutil.rmtree(tmp / f"base-{index}", ignore_errors=True)
    if spy is not None:
        import signal

        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)
    print(f"\nmedians over {args.runs} run(s): wall {statistics.median(walls):.3f} s, "
          f"{statistics.median(requests)} requests, {1000 * statistics.median(request_time):.0f} ms in requests")
    keys = sorted({key for table in per_run for key in table})
    for key in keys:
        counts = [table.get(key, 0) for table in per_run]
        print(f"   {statistics.median(counts):4.1f} x  {key[0]:<22} {key[1]:<6} {key[2]}")
    if profiler:
        Path(args.profile).write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=bool(os.environ.get("BENCH_PROFILE_ALL"))))
    api.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
