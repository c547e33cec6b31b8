"""Where the flow process's CPU goes, per thread and per function: warm ``ingest_landing`` runs as in
``bench_throughput.py`` (the background server, quiet run logging, one warm-up run), each profiled in this process.

Per thread: the CPU clock of every thread alive at the start and the end of a run (``pthread_getcpuclockid``), and,
for threads started during the run, the CPU each spent over its life (read in the thread as it ends); threads are
grouped by name with the digits taken out. ``--profile``: cProfile with a thread-CPU clock in the main thread and in
every thread started during the run (the ``ingest-batch`` task threads, the record writer, the file events),
merged per group; the top functions by cumulative time are printed. The profiler inflates what it measures (~2x):
use the per-thread figures of a run without it for the split, the profile for what is inside. Usage::

    python benchmarks/bench_flow_threads.py --files 300 --workers 2 --rounds 3 [--profile] [--flush-seconds 0.5]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchserver  # noqa: E402
import proctree  # noqa: E402
from bench_throughput import make_files, run_flow, settle_disk  # noqa: E402

_lock = threading.Lock()
_ended: dict[str, float] = defaultdict(float)  # group -> CPU seconds of threads that ended (since the last reset)
_ended_split: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # user, system, vol./invol. switches
_profiles: list[tuple[str, cProfile.Profile]] = []
_profiling = False


def group(name: str) -> str:
    return re.sub(r"\d+", "#", name)


def _install_thread_hook() -> None:
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time) if _profiling else None
        try:
            if profile is not None:
                profile.enable()
            original(self)
        finally:
            if profile is not None:
                profile.disable()
            spent = time.thread_time()
            usage = resource.getrusage(resource.RUSAGE_THREAD)
            with _lock:
                _ended[group(self.name)] += spent
                split = _ended_split[group(self.name)]
                for index, value in enumerate((usage.ru_utime, usage.ru_stime, usage.ru_nvcsw, usage.ru_nivcsw)):
                    split[index] += value
                if profile is not None:
                    _profiles.append((group(self.name), profile))

    threading.Thread.run = run  # type: ignore[method-assign]


def _live() -> dict[int, tuple[str, float]]:
    found = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            clock = time.pthread_getcpuclockid(thread.ident)
            found[thread.ident] = (group(thread.name), time.clock_gettime(clock))
        except (OSError, ProcessLookupError):
            continue
    return found


def main() -> None:
    global _profiling
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--flush-seconds", type=float, default=None,
                        help="FileEventEmitter's flush interval for these runs (default: the code's own)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aodncore-bench-threads-"))
    bench_api = benchserver.start_api("background", tmp)
    benchserver.quiet_run_logging()
    bench_api.wait()
    _install_thread_hook()
    if args.flush_seconds is not None:
        from aodncore.prefect import fileevents

        original_init = fileevents.FileEventEmitter.__init__

        def init(self, *a, **kw):  # type: ignore[no-untyped-def]
            kw["flush_seconds"] = args.flush_seconds
            original_init(self, *a, **kw)

        fileevents.FileEventEmitter.__init__ = init  # type: ignore[method-assign]
    make_files(tmp / "warm", 2, "w")
    run_flow(str(tmp / "warm"), tmp / "warm-base", None, args.workers, server_pid=bench_api.pid)
    print(f"python {sys.version.split()[0]}; {args.files} files, {args.workers} workers; load "
          f"{proctree.load_average()}", flush=True)
    totals: dict[str, list[float]] = defaultdict(list)
    main_profile = cProfile.Profile(time.thread_time) if args.profile else None
    for round_index in range(args.rounds):
        landing = tmp / f"landing-{round_index}"
        make_files(landing, args.files, f"r{round_index}")
        settle_disk()
        with _lock:
            _ended.clear()
            _ended_split.clear()
        _profiling = args.profile
        before, cpu0 = _live(), time.process_time()
        if main_profile is not None:
            main_profile.enable()
        row = run_flow(str(landing), tmp / f"base-{round_index}", None, args.workers, server_pid=bench_api.pid)
        if main_profile is not None:
            main_profile.disable()
        after, cpu1 = _live(), time.process_time()
        _profiling = False
        shutil.rmtree(tmp / f"base-{round_index}", ignore_errors=True)
        per: dict[str, float] = defaultdict(float)
        for ident, (name, value) in after.items():
            per[name] += value - before.get(ident, (name, 0.0))[1]
        with _lock:
            for name, value in _ended.items():
                per[name] += value
        n = row["n"]
        per["(all, process_time)"] = cpu1 - cpu0
        per["(threads gone before the end, not counted above)"] = (cpu1 - cpu0) - sum(
            v for k, v in per.items() if not k.startswith("("))
        print(f"round {round_index}: {n} files, flow {1000 * row['flow'] / n:.2f}  workers "
              f"{1000 * row['workers'] / n:.2f}  server {1000 * row['server'] / n:.2f} ms/file, "
              f"{n / row['wall']:.1f} files/s; load {proctree.load_average()}")
        for name, value in sorted(per.items(), key=lambda item: -item[1]):
            if abs(value) * 1000 / n >= 0.005:
                split = ""
                if name in _ended_split:
                    user, system, voluntary, involuntary = _ended_split[name]
                    split = (f"  (threads that ended: user {1000 * user / n:.3f}, system {1000 * system / n:.3f} "
                             f"ms/file; {voluntary / n:.1f} voluntary, {involuntary / n:.1f} involuntary switches "
                             "per file)")
                print(f"    {1000 * value / n:7.3f} ms/file  {name}{split}")
                totals[name].append(1000 * value / n)
        totals["server"].append(1000 * row["server"] / n)
        totals["flow (proc)"].append(1000 * row["flow"] / n)
    if args.rounds > 1:
        import statistics

        print("medians, ms/file:")
        for name, values in sorted(totals.items(), key=lambda item: -statistics.median(item[1])):
            print(f"    {statistics.median(values):7.3f}  {name}  ({' '.join(f'{v:.2f}' for v in values)})")
    if args.profile:
        files = args.files * args.rounds
        groups: dict[str, list[cProfile.Profile]] = defaultdict(list)
        for name, profile in _profiles:
            groups[name].append(profile)
        if main_profile is not None:
            groups["MainThread"].append(main_profile)
        for name, profiles in groups.items():
            stream = io.StringIO()
            stats = pstats.Stats(profiles[0], stream=stream)
            for profile in profiles[1:]:
                stats.add(profile)
            print(f"\n===== {name}: {1000 * stats.total_tt / files:.3f} ms/file (profiled) =====")
            stats.sort_stats("cumulative").print_stats(args.top)
            print("\n".join(line for line in stream.getvalue().splitlines() if line.strip())[-20000:])
    bench_api.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
