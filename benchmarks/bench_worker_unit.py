"""A pool worker's CPU per file against the classic loop's, same handler, same files, no Prefect.

Each variant runs in a fresh process (this script again), on its own replicated real IMOS
files (format checks only unless ``--checks``), one untimed file first:

* ``loop`` — ``ImosGenericHandler(path, ...).run()`` file after file, where the files lie, log lines at INFO to a
  file: what ``bench_throughput.py``'s loop does;
* ``pool`` — a real one-worker :class:`~aodncore.ingest.parallel.ProcessIngestPool` (fork server, socket link),
  the worker process's CPU read from ``/proc`` (clock ticks: coarser);
* ``worker`` — what a pool worker does per file (:mod:`aodncore.ingest.parallel`'s worker side): the object
  arrives as a pickled tuple, ``_ingest_in_worker`` (collector, ``ingest_object`` in the run folder, combined
  record, outcome dict), the reply pickled as ``_serve_in_worker`` pickles it. Settings as the flow makes them
  (``build_settings`` → run folder → ``for_worker``, landing removal deferred to the flow process).

Prints user / system CPU per file (``getrusage``) for each run; rounds alternate the order. ``--profile`` adds a
cProfile of each variant (top functions by own time, and the worker's extra functions by cumulative time).
Usage::

    python benchmarks/bench_worker_unit.py --files 300 --rounds 3 [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pickle
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import make_files  # noqa: E402
from proctree import load_average  # noqa: E402

PROFILE_DIR: str | None = None


def _usage() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + kids.ru_utime, own.ru_stime + kids.ru_stime


def _loop(tmp: Path, files: list[Path], checks: list[str] | None, profile: bool) -> dict:
    from aodncore.ingest.runner import RunContext
    from aodncore.pipeline.defaultconfig import default_config
    from aodncore.pipeline.imoshandler import ImosGenericHandler
    from aodncore.pipeline.log import get_pipeline_logger

    base = tmp / "loop-base"
    config = default_config(base)
    log = logging.getLogger("aodncore.bench.loop")
    log.addHandler(logging.FileHandler(base / "loop.log"))
    log.setLevel(logging.INFO)
    log.propagate = False
    context = RunContext("bench", "loop", "loop", get_pipeline_logger("aodncore.bench.loop"))
    kwargs = {"check_params": {"checks": checks}} if checks else {}

    def one(path: Path) -> None:
        handler = ImosGenericHandler(str(path), config=config, celery_task=context, **kwargs)
        handler.run()
        assert handler.error is None, handler.error

    one(files[0])
    return _timed(lambda: [one(path) for path in files[1:]], len(files) - 1, profile)


def _worker(tmp: Path, files: list[Path], checks: list[str] | None, profile: bool) -> dict:
    from aodncore.ingest import parallel
    from aodncore.ingest.configure import build_settings
    from aodncore.ingest.runner import in_run_folder
    from aodncore.ingest.scratch import run_scratch
    from aodncore.ingest.sources import LandingObject

    settings = build_settings(base_dir=str(tmp / "worker-base"), checks=checks)
    settings.ledger = None
    library = logging.getLogger("aodncore")
    library.setLevel(logging.INFO)
    library.propagate = False
    with run_scratch(settings.work_dir or tempfile.gettempdir()) as scratch:
        settings = in_run_folder(settings, scratch.path)
        settings.defer_landing_removal = True  # as in the flows: the flow process removes it after the record
        blob = pickle.dumps(settings.for_worker(), protocol=pickle.HIGHEST_PROTOCOL)
        messages = [pickle.dumps(parallel._encoded(LandingObject.from_path(path)), protocol=pickle.HIGHEST_PROTOCOL)
                    for path in files]

        def one(message: bytes) -> None:
            reply = (True, parallel._ingest_in_worker(parallel._decoded(pickle.loads(message)), "bench", blob))
            pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            assert reply[1][0]["status"] == "published", reply[1][0]

        one(messages[0])
        return _timed(lambda: [one(message) for message in messages[1:]], len(messages) - 1, profile)


def _pool(tmp: Path, files: list[Path], checks: list[str] | None, profile: bool) -> dict:
    """A real one-worker ``ProcessIngestPool`` (fork server, socket link): the worker process's CPU, from /proc."""
    import proctree

    from aodncore.ingest import parallel
    from aodncore.ingest.configure import build_settings
    from aodncore.ingest.runner import in_run_folder
    from aodncore.ingest.scratch import run_scratch
    from aodncore.ingest.sources import LandingObject

    settings = build_settings(base_dir=str(tmp / "pool-base"), checks=checks)
    settings.ledger = None
    with run_scratch(settings.work_dir or tempfile.gettempdir()) as scratch:
        settings = in_run_folder(settings, scratch.path)
        settings.defer_landing_removal = True
        objects = [LandingObject.from_path(path) for path in files]
        with parallel.ProcessIngestPool(settings, workers=1) as pool:
            assert pool.ingest(objects[0]).status == "published"
            server = forkserver_pid()
            workers = [pid for pid in proctree.children(server)]
            usage0 = [_stat_usage(pid) for pid in workers]
            for obj in objects[1:]:
                outcome = pool.ingest(obj)
                assert outcome.status == "published", outcome
            usage1 = [_stat_usage(pid) for pid in workers]
        count = len(objects) - 1
        return {"user": 1000 * sum(after[0] - before[0] for before, after in zip(usage0, usage1)) / count,
                "system": 1000 * sum(after[1] - before[1] for before, after in zip(usage0, usage1)) / count}


def forkserver_pid() -> int:
    from multiprocessing import forkserver

    return forkserver._forkserver._forkserver_pid


def _stat_usage(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat", "rb") as stream:
        fields = stream.read().rsplit(b")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[13])) / tick, (int(fields[12]) + int(fields[14])) / tick


def _timed(work, count: int, profile: bool) -> dict:
    profiler = cProfile.Profile() if profile else None
    user0, system0 = _usage()
    if profiler:
        profiler.enable()
    work()
    if profiler:
        profiler.disable()
    user1, system1 = _usage()
    row = {"user": 1000 * (user1 - user0) / count, "system": 1000 * (system1 - system0) / count}
    if profiler:
        if PROFILE_DIR:
            profiler.dump_stats(str(Path(PROFILE_DIR) / f"{os.getpid()}.prof"))
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(60)
        row["profile"] = stream.getvalue()
    return row


def _child(variant: str, folder: str, checks: list[str] | None, profile: bool) -> None:
    function = {"loop": _loop, "worker": _worker, "pool": _pool}[variant]
    files = sorted((Path(folder) / "landing").iterdir())
    print(json.dumps(function(Path(folder), files, checks, profile)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checks", default="", help="comma-separated suites (default: format checks only)")
    parser.add_argument("--variants", default="loop,worker", help="which to run (default: loop,worker)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-dir", help="also write each variant's cProfile stats there (<pid>.prof)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    checks = [name for name in args.checks.split(",") if name] or None
    global PROFILE_DIR
    PROFILE_DIR = args.profile_dir
    if args.child:
        _child(args.child[0], args.child[1], checks, args.profile)
        return

    import aodncore

    print(f"aodncore from {aodncore.__file__}; load {load_average()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="aodncore-workerunit-"))
    rows: dict[str, list[dict]] = {"loop": [], "worker": [], "pool": []}
    try:
        for round_index in range(args.rounds):
            order = [name for name in ("loop", "worker", "pool") if name in args.variants.split(",")]
            if round_index % 2:
                order.reverse()
            for variant in order:
                folder = tmp / f"{variant}-{round_index}"
                make_files(folder / "landing", args.files + 1, f"{round_index}")
                command = [sys.executable, __file__, "--child", variant, str(folder), "--checks", args.checks]
                command += ["--profile"] if args.profile else []
                command += ["--profile-dir", args.profile_dir] if args.profile_dir else []
                child = subprocess.run(command, capture_output=True, text=True, check=True)
                row = json.loads(child.stdout.strip().splitlines()[-1])
                shutil.rmtree(folder, ignore_errors=True)
                rows[variant].append(row)
                print(f"round {round_index} {variant:6s} user {row['user']:.2f} system {row['system']:.2f} "
                      f"total {row['user'] + row['system']:.2f} ms/file", flush=True)
                if "profile" in row:
                    print(row["profile"], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for variant, found in rows.items():
        if not found:
            continue
        total = statistics.median(row["user"] + row["system"] for row in found)
        user = statistics.median(row["user"] for row in found)
        print(f"median {variant:6s} total {total:.2f} (user {user:.2f}) ms/file")
    print(f"load {load_average()}")


if __name__ == "__main__":
    main()
