"""Why a worker in the pool costs more CPU per file than the same work alone: user and system time per file.

Runs the per-file unit (:func:`aodncore.ingest.runner.ingest_object`, as a pool worker runs it: a run folder,
no ingest record) on replicated real IMOS files in ``1`` and then ``2`` processes at once, each process on its
own files, and prints each process's user and system CPU per file (``getrusage``; one untimed file first). Then the
same for a pure-Python loop (no system calls) — if two processes at once cost more CPU per unit of work there, the
cores themselves are shared (SMT, a busy host); if only the file work grows, and in system time, it is the file
system (metadata operations: creating, linking, renaming, removing files and folders). Usage::

    python benchmarks/bench_worker_contention.py --files 200 --rounds 2
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import make_files  # noqa: E402
from proctree import load_average  # noqa: E402


def _ingest_files(settings: object, files: list[Path], results: object) -> None:
    from aodncore.ingest.runner import ingest_object
    from aodncore.ingest.sources import LandingObject

    library = logging.getLogger("aodncore")
    library.setLevel(logging.INFO)
    library.propagate = False
    objects = [LandingObject.from_path(path) for path in files]
    ingest_object(objects[0], settings)  # untimed: lazy imports, first netCDF open
    before = resource.getrusage(resource.RUSAGE_SELF)
    for obj in objects[1:]:
        outcome = ingest_object(obj, settings)
        assert outcome.status in ("published", "quarantined"), outcome
    after = resource.getrusage(resource.RUSAGE_SELF)
    count = len(objects) - 1
    results.put((1000 * (after.ru_utime - before.ru_utime) / count, 1000 * (after.ru_stime - before.ru_stime) / count))


def _pure_python(_settings: object, _files: object, results: object) -> None:
    start = time.process_time()
    total, table = 0, {}
    for index in range(4_000_000):
        total += index * index % 7
    for index in range(300_000):
        table[str(index)] = index
    results.put((1000 * (time.process_time() - start), 0.0))


def _at_once(target: object, processes: int, settings: object, file_sets: list[list[Path]]) -> list[tuple]:
    context = multiprocessing.get_context("fork")  # single-threaded parent: forking is safe here
    results = context.Queue()
    children = [context.Process(target=target, args=(settings, file_sets[index], results))
                for index in range(processes)]
    for child in children:
        child.start()
    rows = [results.get() for _ in children]
    for child in children:
        child.join()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="files per process")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from aodncore.ingest.configure import build_settings
    from aodncore.ingest.runner import in_run_folder
    from aodncore.ingest.scratch import run_scratch

    tmp = Path(tempfile.mkdtemp(prefix="aodncore-contention-"))
    settings = build_settings(base_dir=str(tmp / "base")).for_worker()
    print(f"load {load_average()}")
    try:
        with run_scratch(settings.work_dir or tempfile.gettempdir()) as scratch:
            settings = in_run_folder(settings, scratch.path)
            for round_index in range(args.rounds):
                for processes in (1, 2):
                    label = f"{round_index}-{processes}"
                    file_sets = [make_files(tmp / f"landing-{label}-{index}", args.files + 1, f"{label}-{index}")
                                 for index in range(processes)]
                    rows = _at_once(_ingest_files, processes, settings, file_sets)
                    print(f"round {round_index}: ingest_object, {processes} process(es) at once: user / system ms "
                          "per file " + ", ".join(f"{user:.2f} / {system:.2f}" for user, system in rows), flush=True)
                for processes in (1, 2):
                    rows = _at_once(_pure_python, processes, settings, [[], []])
                    print(f"round {round_index}: pure Python, {processes} process(es) at once: CPU ms per unit "
                          + ", ".join(f"{user:.0f}" for user, _ in rows), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load {load_average()}")


if __name__ == "__main__":
    main()
