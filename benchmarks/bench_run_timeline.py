"""Where the wall time of a warm format-only ``ingest_landing`` run goes.

Runs ``bench_throughput.py``'s warm flow (background server, quiet run logging, one warm-up run, 2 workers) and,
during each measured run, samples every 50 ms the CPU of the flow process, the worker processes and the Prefect
server (from ``/proc``), times every API request of the flow process (httpx's ``send``), and times each worker's
round trips (``ProcessIngestPool``'s links: the gap between a worker's answer and its next file). Prints the
requests, the gaps per worker and the cores each part used in each 0.1 s. Usage::

    cd /tmp && PYTHONPATH=<checkout> python <checkout>/benchmarks/bench_run_timeline.py --files 300 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_throughput as bt  # noqa: E402
import benchserver  # noqa: E402
import proctree  # noqa: E402

REQUESTS: list[tuple[float, float, str, str, int]] = []
ASKS: list[tuple[int, float, float]] = []


def _size(request) -> int:
    try:
        return len(request.content)
    except Exception:  # noqa: BLE001 - a streamed body
        return -1


def trace_requests() -> None:
    """Record (start, end, method, path, body size) of every httpx request of this process."""
    import httpx

    original_async, original_sync = httpx.AsyncClient.send, httpx.Client.send

    async def send_async(self, request, *args, **kwargs):
        start = time.perf_counter()
        try:
            return await original_async(self, request, *args, **kwargs)
        finally:
            REQUESTS.append((start, time.perf_counter(), request.method, request.url.path, _size(request)))

    def send_sync(self, request, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original_sync(self, request, *args, **kwargs)
        finally:
            REQUESTS.append((start, time.perf_counter(), request.method, request.url.path, _size(request)))

    httpx.AsyncClient.send, httpx.Client.send = send_async, send_sync


def trace_asks() -> None:
    """Record (link, sent, answered) of every file handed to a worker."""
    from aodncore.ingest import parallel

    original = parallel._Link.ask

    def ask(self, obj):
        start = time.perf_counter()
        try:
            return original(self, obj)
        finally:
            ASKS.append((id(self), start, time.perf_counter()))

    parallel._Link.ask = ask


def print_gaps(t0: float) -> None:
    by_link: dict[int, list[tuple[float, float]]] = {}
    for link, start, end in ASKS:
        by_link.setdefault(link, []).append((start, end))
    for spans in by_link.values():
        spans.sort()
        gaps = sorted(spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)) or [0.0]
        print(f"  worker: {len(spans)} files, first sent {spans[0][0] - t0:.3f} s, last answer {spans[-1][1] - t0:.3f}"
              f" s, in the worker {sum(e - s for s, e in spans):.3f} s; gaps {sum(gaps):.3f} s in all, median "
              f"{1000 * gaps[len(gaps) // 2]:.2f} ms, p90 {1000 * gaps[int(len(gaps) * 0.9)]:.2f} ms, max "
              f"{1000 * gaps[-1]:.2f} ms")


def print_cores(samples: list[tuple[float, float, float, float]], t0: float) -> None:
    print("   t (s)  flow  workers  server   (cores used in each 0.1 s)")
    previous, bucket_start, used = samples[0], samples[0][0], [0.0, 0.0, 0.0]
    for sample in samples[1:]:
        for part in range(3):
            used[part] += sample[part + 1] - previous[part + 1]
        previous = sample
        if sample[0] - bucket_start >= 0.1:
            span = sample[0] - bucket_start
            if any(used):
                flow, workers, server = (value / span for value in used)
                print(f"  {bucket_start - t0:6.2f}  {flow:4.2f}  {workers:7.2f}  {server:6.2f}")
            bucket_start, used = sample[0], [0.0, 0.0, 0.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aodncore-timeline-"))
    api = benchserver.start_api("background", tmp)
    benchserver.quiet_run_logging()
    api.wait()
    trace_requests()
    trace_asks()
    bt.make_files(tmp / "warm", 2, "w")
    bt.run_flow(str(tmp / "warm"), tmp / "warm-base", None, args.workers, server_pid=api.pid)

    samples: list[tuple[float, float, float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), proctree.process_cpu(os.getpid(), with_reaped=False),
                            sum(proctree.subtree_cpu(pid) for pid in bt._forkservers()),
                            proctree.subtree_cpu(api.pid)))
            time.sleep(0.05)

    try:
        for index in range(args.rounds):
            landing = tmp / f"landing-{index}"
            bt.make_files(landing, args.files, f"t{index}")
            bt.settle_disk()
            samples.clear()
            REQUESTS.clear()
            ASKS.clear()
            stop.clear()
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            time.sleep(0.3)
            t0 = time.perf_counter()
            row = bt.run_flow(str(landing), tmp / f"base-{index}", None, args.workers, server_pid=api.pid)
            time.sleep(0.5)
            stop.set()
            sampler.join()
            print(f"round {index}: {row['n']} files in {row['wall']:.2f} s ({row['n'] / row['wall']:.1f} files/s); "
                  f"CPU s: flow {row['flow']:.2f}, workers {row['workers']:.2f}, server {row['server']:.2f}; load "
                  f"{proctree.load_average()}")
            print_gaps(t0)
            for start, end, method, path, size in REQUESTS:
                print(f"  request {start - t0:6.3f} -> {end - t0:6.3f} s  {method:6} {path}  ({size} bytes)")
            print_cores(samples, t0)
    finally:
        api.stop()


if __name__ == "__main__":
    main()
