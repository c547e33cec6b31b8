"""Wall time of warm ``ingest_landing`` runs of several sizes: a run's fixed cost against its cost per file.

The same harness as ``bench_throughput.py`` (the background API server in a fresh ``PREFECT_HOME``, one warm run
first, 2 workers, replicated real IMOS files). For each size it prints wall, whole-tree CPU and its parts, and how
often the workers were busy: a sampler reads ``/proc`` every 5 ms and counts how many worker processes (each with
its capped check child) were running or runnable. The 2-file run is the fixed cost; the slope between the larger
sizes is the cost per file. Usage::

    python benchmarks/bench_run_sizes.py --sizes 2,40,120 --checks cf:1.6 --rounds 2
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_throughput as bt  # noqa: E402
import benchserver  # noqa: E402
import proctree  # noqa: E402


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] == "R"
    except OSError:
        return False


def _sample_busy(stop: threading.Event, tally: collections.Counter) -> None:
    while not stop.is_set():
        workers = [w for server in bt._forkservers() for w in proctree.children(server)]
        busy = sum(any(_running(p) for p in proctree.descendants(w)) for w in workers)
        tally[busy] += 1
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2,40,120", help="files per run, comma-separated")
    parser.add_argument("--checks", default="cf:1.6", help="check suites ('' for format checks only)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    checks = [c for c in args.checks.split(",") if c] or None

    tmp = Path(tempfile.mkdtemp(prefix="aodncore-bench-sizes-"))
    api = benchserver.start_api("background", tmp)
    benchserver.quiet_run_logging()
    api.wait()
    print(f"load {proctree.load_average()}; {len(os.sched_getaffinity(0))} cores; checks {checks}", flush=True)
    bt.make_files(tmp / "warm", 2, "w")
    bt.run_flow(str(tmp / "warm"), tmp / "warm-base", checks, args.workers, server_pid=api.pid)
    for round_index in range(args.rounds):
        for size in sizes:
            label = f"{size}-{round_index}"
            landing = tmp / f"landing-{label}"
            bt.make_files(landing, size, label)
            stop, tally = threading.Event(), collections.Counter()
            sampler = threading.Thread(target=_sample_busy, args=(stop, tally), daemon=True)
            sampler.start()
            row = bt.run_flow(str(landing), tmp / f"base-{label}", checks, args.workers, server_pid=api.pid)
            stop.set()
            sampler.join()
            samples = max(1, sum(tally.values()))
            busy = ", ".join(f"{k} busy {100 * v / samples:.0f}%" for k, v in sorted(tally.items()))
            print(f"{size:5d} files  wall {row['wall']:6.3f} s  {size / row['wall']:6.1f} files/s"
                  f"  CPU {row['cpu']:6.2f} s"
                  f" (flow {row['flow']:.2f} workers {row['workers']:.2f} server {row['server']:.2f})  workers: {busy}"
                  f"  load {proctree.load_average()}", flush=True)
            shutil.rmtree(tmp / f"base-{label}", ignore_errors=True)
            shutil.rmtree(landing, ignore_errors=True)
    api.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
