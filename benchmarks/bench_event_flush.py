"""What ``FileEventEmitter``'s flush interval costs: the flow process and the background server, per file.

Per trial, ``--files`` file events are emitted at ``--rate`` files/s (a warm format-only run's pace: ~100 files/s
on 2 workers) by one :class:`~aodncore.prefect.fileevents.FileEventEmitter` with the given ``flush_seconds``,
closed at the end, against aodncore's background server (as the CLI uses it). CPU per file: this process
(``time.process_time``, the building and the posting) and the server's process tree (``/proc``, after the
server went idle). The intervals alternate trial by trial (the order reversed every round). Usage::

    python benchmarks/bench_event_flush.py --files 300 --rate 100 --rounds 6 --intervals 0.5,1,2
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchserver  # noqa: E402
import proctree  # noqa: E402


def trial(files: int, rate: float, flush_seconds: float, server_pid: int, tag: str) -> tuple[float, float, int]:
    """(flow CPU s, server CPU s, POST /events made) for one emitter's life."""
    from aodncore.ingest.outcome import PUBLISHED, FileOutcome
    from aodncore.ingest.sources import LandingObject
    from aodncore.prefect.fileevents import FileEventEmitter

    pairs = []
    for n in range(files):
        uri = f"file:///landing/{tag}/IMOS_ANMN-NRS_{n:05d}.nc"
        obj = LandingObject(uri=uri, name=uri.rsplit("/", 1)[-1], size=50_000, fingerprint=f"sha256:{n:064x}")
        pairs.append((obj, FileOutcome(source=uri, name=obj.name, status=PUBLISHED, check_result="passed",
                                       destination=f"/pub/IMOS/ANMN/{obj.name}", stored=True, archived=True,
                                       handler="ImosGenericHandler")))
    proctree.wait_until_idle([server_pid])
    server0, cpu0 = proctree.subtree_cpu(server_pid), time.process_time()
    emitter = FileEventEmitter("ImosGenericHandler", "00000000-0000-0000-0000-000000000000",
                               flush_seconds=flush_seconds)
    posts = 0
    original = emitter._post

    def counted(client: object) -> None:
        nonlocal posts
        before = emitter.emitted
        original(client)
        posts += emitter.emitted > before

    emitter._post = counted  # type: ignore[method-assign]
    start = time.perf_counter()
    for index, (obj, outcome) in enumerate(pairs):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        emitter(obj, outcome)
    emitter.close()
    cpu1 = time.process_time()
    proctree.wait_until_idle([server_pid])
    assert emitter.emitted == files, emitter.emitted
    return cpu1 - cpu0, proctree.subtree_cpu(server_pid) - server0, posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0, help="files per second")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--intervals", default="0.5,1,2", help="flush_seconds values, comma-separated")
    args = parser.parse_args()
    intervals = [float(value) for value in args.intervals.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="aodncore-bench-flush-"))
    api = benchserver.start_api("background", tmp)
    api.wait()
    assert api.pid is not None
    import aodncore.prefect.flows  # noqa: F401 - as in a run: its API clients share one TLS context (clienttls)
    trial(20, 1000.0, 0.5, api.pid, "warm")
    print(f"{args.files} events at {args.rate:g} files/s per trial; load {proctree.load_average()}", flush=True)
    rows: dict[float, list[tuple[float, float, int]]] = {interval: [] for interval in intervals}
    for round_index in range(args.rounds):
        order = intervals if round_index % 2 == 0 else intervals[::-1]
        for interval in order:
            flow, server, posts = trial(args.files, args.rate, interval, api.pid, f"r{round_index}-{interval}")
            rows[interval].append((flow, server, posts))
            print(f"round {round_index} flush {interval:g} s: {posts} POST /events, flow "
                  f"{1000 * flow / args.files:.3f}  server {1000 * server / args.files:.3f} ms/file; load "
                  f"{proctree.load_average()}", flush=True)
    print("medians, ms/file:      flow    server    sum   POSTs")
    for interval, values in rows.items():
        flow = statistics.median(1000 * row[0] / args.files for row in values)
        server = statistics.median(1000 * row[1] / args.files for row in values)
        posts = statistics.median(row[2] for row in values)
        print(f"flush {interval:>4g} s          {flow:7.3f}  {server:7.3f}  {flow + server:6.3f}  {posts:5g}")
    api.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
