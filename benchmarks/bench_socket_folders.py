"""Benchmark the worker links' socket folders: what a run pays for leaving nothing behind after a SIGKILL.

Per run, a pool with ``W`` workers makes ``W`` connections. Two ways, alternating round by round in one process:

* ``one folder`` — the way before: one ``mkdtemp`` folder per run, a socket file per connection bound, accepted
  and unlinked, the folder removed (``shutil.rmtree``) when the run's links end;
* ``per connect`` — :mod:`aodncore.ingest.sockdirs`: the sweep of the temporary folder (and ``/tmp``) at run start,
  then per connection a folder of its own, locked, removed right after ``accept``.

Each connection is a real Unix stream socket connected from this process (the worker's side costs the same both
ways). ``--stale`` unrelated entries named like a pool folder of a live process are put in a scratch temporary
folder first (a busy ``/tmp``), so the sweep has something to look at. Wall time per run, median of the rounds;
nothing is asserted.

    python benchmarks/bench_socket_folders.py [--rounds 9] [--runs 200] [--workers 2] [--entries 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import time
import uuid

from aodncore.ingest import sockdirs


def _link(address: str) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(address)
    listener.listen(1)
    client = socket.socket(socket.AF_UNIX)
    client.connect(address)
    accepted, _ = listener.accept()
    listener.close()
    accepted.close()
    client.close()


def one_folder(workers: int) -> None:
    folder = tempfile.mkdtemp(prefix="aodncore-pool-")
    for _ in range(workers):
        address = os.path.join(folder, uuid.uuid4().hex[:12])
        _link(address)
        os.unlink(address)
    shutil.rmtree(folder, ignore_errors=True)


def per_connect(workers: int) -> None:
    sockdirs.sweep_stale()  # run start (scratch.run_scratch; a pool in a run folder does not sweep again)
    for _ in range(workers):
        with sockdirs.socket_folder() as folder:
            _link(os.path.join(folder, sockdirs.SOCKET_NAME))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--entries", type=int, default=2000, help="other entries in the temporary folder")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="bsf-", dir="/tmp")
    tempfile.tempdir = root
    try:
        for index in range(args.entries):  # a busy /tmp: others' files, and 5 pool folders of live runs
            name = f"{sockdirs.PREFIX}{os.getpid()}-0-{index:08d}" if index < 5 else f"other-{index}"
            os.mkdir(os.path.join(root, name))
        ways = {"one folder": one_folder, "per connect": per_connect}
        times: dict[str, list[float]] = {name: [] for name in ways}
        for round_index in range(args.rounds):
            order = list(ways) if round_index % 2 == 0 else list(reversed(ways))
            for name in order:
                started = time.perf_counter()
                for _ in range(args.runs):
                    ways[name](args.workers)
                times[name].append((time.perf_counter() - started) / args.runs)
        base = statistics.median(times["one folder"])
        with open("/proc/loadavg") as stream:
            load = stream.read().strip()
        print(f"load {load}; {args.entries} entries in the temporary folder, "
              f"{len(os.listdir('/tmp'))} in /tmp; {args.workers} workers a run")
        for name, values in times.items():
            value = statistics.median(values)
            print(f"{name:12s} {value * 1e6:8.1f} µs/run  ({value / base:.2f}x one folder)")
        sweep = []
        for _ in range(args.runs):
            started = time.perf_counter()
            sockdirs.sweep_stale()
            sweep.append(time.perf_counter() - started)
        print(f"one sweep    {statistics.median(sweep) * 1e6:8.1f} µs")
    finally:
        tempfile.tempdir = None
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
