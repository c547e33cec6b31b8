"""Throughput and CPU per file: the classic sequential ``HandlerBase.run()`` loop against the ``ingest_landing`` flow.

Every variant processes the same real IMOS NetCDF files (``tests/data/imos/*.nc``, replicated under unique IMOS
names) with the embedded default handler (``ImosGenericHandler``: publish to a local store, archive the input):

* ``loop`` — one ``HandlerBase.run()`` after the other, in a separate clean process (no Prefect, no threads),
  each file processed where it landed, log records at INFO to a file: the strict baseline. One untimed file
  first, so that lazy imports and the checker's warm-up are not counted;
* ``flow`` — ``ingest_landing`` on a landing folder, warm (the Prefect API already up, one flow run done), as the
  CLI runs it: the API server the CLI uses (``--server background``, its default: aodncore's background server
  in a fresh ``PREFECT_HOME``; ``--server ephemeral``: Prefect's own), no heartbeat,
  ``--workers`` worker processes, every file listed, claimed, fetched, processed, recorded, its event emitted
  and its landing copy removed, the table artifact written;
* ``flow-s3`` (``--s3``) — the same from an ``s3://`` landing prefix (moto's server in its own process).

Rounds interleave the variants (the order alternates) and the medians are reported, because the machine is
shared. **CPU per file** is that of the whole tree: for the loop its process (and the capped-check children it
forked); for the flow this process + its worker processes + the Prefect API server (read from ``/proc``, the
server given time to finish writing what the run sent it), moto's S3 server excluded. Ratios: files/s of the flow
over files/s of the loop, and CPU/file of the flow over CPU/file of the loop. Before each timed variant, once its
files are made, what the page cache holds dirty is written out (``os.sync``; ``--no-sync`` skips it), so that
no variant pays for the writeback of another. Usage::

    python benchmarks/bench_throughput.py --files 300 --cf-files 40 --workers 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchserver  # noqa: E402
import proctree  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "imos"
TARGETS = {"fmt": (1.5, 1.3), "cf": (1.9, None)}


def make_files(target: Path, count: int, tag: str = "") -> list[Path]:
    """``count`` copies of the real NetCDF files, each under a unique IMOS-convention name."""
    sources = sorted(p for p in DATA.glob("*.nc") if p.stat().st_size > 1000)
    target.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        source = sources[index % len(sources)]
        made.append(Path(shutil.copy(source, target / f"{source.stem}-bench{tag}{index:05d}.nc")))
    return made


# -- the loop, in a clean child process ------------------------------------------------------------------------

def loop_child(folder: str, base: str, checks: list[str] | None) -> None:
    """Run the classic loop over the files of ``folder``; print wall and CPU seconds as JSON."""
    import resource

    from aodncore.ingest.runner import RunContext
    from aodncore.pipeline.defaultconfig import default_config
    from aodncore.pipeline.exceptions import PipelineProcessingError
    from aodncore.pipeline.imoshandler import ImosGenericHandler
    from aodncore.pipeline.log import get_pipeline_logger

    config = default_config(base)
    log = logging.getLogger("aodncore.bench.loop")
    handler_log = logging.FileHandler(Path(base) / "loop.log")
    log.addHandler(handler_log)
    log.setLevel(logging.INFO)
    log.propagate = False
    context = RunContext("bench", "loop", "loop", get_pipeline_logger("aodncore.bench.loop"))
    kwargs = {"check_params": {"checks": checks}} if checks else {}
    files = sorted(Path(folder).iterdir())
    warm, files = files[0], files[1:]
    ImosGenericHandler(str(warm), config=config, celery_task=context, **kwargs).run()

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    cpu0, start = cpu(), time.perf_counter()
    for path in files:
        handler = ImosGenericHandler(str(path), config=config, celery_task=context, **kwargs)
        handler.run()
        assert handler.error is None or isinstance(handler.error, PipelineProcessingError), handler.error
    print(json.dumps({"n": len(files), "wall": time.perf_counter() - start, "cpu": cpu() - cpu0}))


def settle_disk() -> None:
    """Write out what earlier variants left dirty in the page cache, so that no variant pays for another's
    writeback (the loop's CPU per file swung 2x between identical runs without it)."""
    os.sync()
    time.sleep(0.5)


def run_loop(tmp: Path, tag: str, count: int, checks: list[str] | None, *, sync: bool = True) -> dict[str, float]:
    folder = tmp / f"loop-src-{tag}"
    shutil.rmtree(folder, ignore_errors=True)
    make_files(folder, count + 1, tag)
    base = tmp / f"loop-base-{tag}"
    shutil.rmtree(base, ignore_errors=True)
    if sync:
        settle_disk()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_ENDPOINT_URL"))}
    result = subprocess.run(
        [sys.executable, __file__, "--loop-child", str(folder), str(base), json.dumps(checks)],
        capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the flow, in this process ---------------------------------------------------------------------------------

def _forkservers() -> list[int]:
    """Worker-pool parents below this process: the multiprocessing fork server."""
    found = []
    for pid in proctree.children(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as stream:
                command = stream.read()
        except OSError:
            continue
        if b"forkserver" in command:
            found.append(pid)
    return found


def run_flow(source: str, base: Path, checks: list[str] | None, workers: int, *, server_pid: int | None,
             exclude: tuple[int, ...] = ()) -> dict[str, float]:
    """One ``ingest_landing`` run as the CLI runs it; wall, whole-tree CPU and its parts."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from aodncore.prefect.flows import ingest_landing

    def parts() -> dict[str, float]:
        server = proctree.subtree_cpu(server_pid) if server_pid else 0.0
        workers_cpu = sum(proctree.subtree_cpu(pid) for pid in _forkservers())
        total = proctree.tree_cpu(exclude=exclude)
        own = proctree.process_cpu(os.getpid(), with_reaped=False)
        return {"cpu": total, "server": server, "workers": workers_cpu, "flow": own}

    # the settings are swapped outside the measured span: Prefect rebuilds its settings on entry and exit
    # (~0.1 s CPU each), which no CLI run or served deployment does per run
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        before, start = parts(), time.perf_counter()
        state = ingest_landing(source, base_dir=str(base), checks=checks, workers=workers, settle_seconds=0,
                               return_state=True)
        _drain()
        wall = time.perf_counter() - start
        if server_pid:
            proctree.wait_until_idle([server_pid])
        after = parts()
    run_result = state.result(raise_on_failure=False)  # IngestResult.to_dict(): counts every entry
    bad = [o for o in run_result["outcomes"] if o["status"] not in ("published", "quarantined")]  # all listed
    assert set(run_result["counts"]) <= {"published", "quarantined"}, (run_result["counts"], bad[:3])
    result = {key: after[key] - before[key] for key in after}
    result["other"] = result["cpu"] - result["server"] - result["workers"] - result["flow"]
    result.update(n=run_result["total"], wall=wall)
    return result


def _drain() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=30)


def upload_landing(files: list[Path], bucket: str) -> str:
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    for path in files:
        client.upload_file(str(path), bucket, f"landing/{path.name}")
    return f"s3://{bucket}/landing/"


def _start_moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    raise RuntimeError("moto server did not start")


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300, help="files per format-checks-only run")
    parser.add_argument("--cf-files", type=int, default=40, help="files per cf:1.6 run (0: skip)")
    parser.add_argument("--workers", type=int, default=2, help="ingest_landing workers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="also ingest from an s3:// landing prefix (moto)")
    parser.add_argument("--server", choices=benchserver.MODES, default="background",
                        help="the API the CLI would use (background, its default) or Prefect's ephemeral server")
    parser.add_argument("--no-sync", action="store_true",
                        help="do not flush the page cache's dirty data (os.sync) before each variant")
    parser.add_argument("--loop-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop_child:
        folder, base, checks = args.loop_child
        loop_child(folder, base, json.loads(checks))
        return

    # as the CLI does: the API server first (before Prefect is imported), records to the run log, not the console
    tmp = Path(tempfile.mkdtemp(prefix="aodncore-bench-"))
    bench_api = benchserver.start_api(args.server, tmp)
    benchserver.quiet_run_logging()
    server_pid = bench_api.pid

    print(f"working in {tmp}; python {sys.version.split()[0]}; {len(os.sched_getaffinity(0))} cores; "
          f"workers={args.workers}; server {args.server}; load {proctree.load_average()}")
    moto = None
    exclude: tuple[int, ...] = ()
    if args.s3:
        moto, url = _start_moto()
        exclude = (moto.pid,)
        os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION="us-east-1")
    bench_api.wait()
    warm = tmp / "warm"
    make_files(warm, 2, "w")
    # warm = as a served deployment is after its first run: the API up, the worker pool's fork server started
    # (it pre-imports the pipeline and warms up the suites of the run that started it: cf:1.6 if measured)
    warm_checks = ["cf:1.6"] if args.cf_files else None
    run_flow(str(warm), tmp / "warm-base", warm_checks, args.workers, server_pid=server_pid, exclude=exclude)

    kinds = [("fmt", None, args.files)] + ([("cf", ["cf:1.6"], args.cf_files)] if args.cf_files else [])
    results: dict[str, dict[str, list[dict[str, float]]]] = {tag: {} for tag, _, _ in kinds}
    for round_index in range(args.rounds):
        for tag, checks, count in kinds:
            variants = ["loop", "flow"] + (["flow-s3"] if args.s3 else [])
            if round_index % 2:
                variants.reverse()
            for variant in variants:
                label = f"{tag}-{round_index}"
                if variant == "loop":
                    row = run_loop(tmp, label, count, checks, sync=not args.no_sync)
                else:
                    base = tmp / f"{variant}-base-{label}"
                    if variant == "flow":
                        landing = tmp / f"landing-{label}"
                        make_files(landing, count, label)
                        source = str(landing)
                    else:
                        source = upload_landing(make_files(tmp / f"s3src-{label}", count, label), f"bench-{label}")
                    if not args.no_sync:
                        settle_disk()
                    row = run_flow(source, base, checks, args.workers, server_pid=server_pid, exclude=exclude)
                    shutil.rmtree(base, ignore_errors=True)
                results[tag].setdefault(variant, []).append(row)
                detail = ""
                if variant != "loop":
                    detail = "  [ms/file: " + ", ".join(
                        f"{part} {1000 * row[part] / row['n']:.2f}" for part in ("flow", "workers", "server", "other")
                    ) + "]"
                print(f"round {round_index} {tag:<3} {variant:<8} {row['n']:>5} files  {row['n'] / row['wall']:7.1f}"
                      f" files/s  {1000 * row['cpu'] / row['n']:7.2f} ms CPU/file{detail}  load "
                      f"{proctree.load_average()}", flush=True)
            shutil.rmtree(tmp / f"loop-base-{tag}-{round_index}", ignore_errors=True)

    print()
    print(f"medians over {args.rounds} round(s); ratio = flow / loop")
    print(f"{'checks':<6}{'variant':<9}{'files/s':>9}{'ratio':>7}{'CPU ms/file':>13}{'ratio':>7}   flow / workers / "
          "server / other ms/file")
    for tag, _, _ in kinds:
        loop = results[tag]["loop"]
        loop_rate = statistics.median(row["n"] / row["wall"] for row in loop)
        loop_cpu = statistics.median(1000 * row["cpu"] / row["n"] for row in loop)
        print(f"{tag:<6}{'loop':<9}{loop_rate:>9.1f}{'':>7}{loop_cpu:>13.2f}")
        for variant, rows in results[tag].items():
            if variant == "loop":
                continue
            rate = statistics.median(row["n"] / row["wall"] for row in rows)
            cpu = statistics.median(1000 * row["cpu"] / row["n"] for row in rows)
            parts = " / ".join(f"{statistics.median(1000 * r[p] / r['n'] for r in rows):.2f}"
                               for p in ("flow", "workers", "server", "other"))
            print(f"{tag:<6}{variant:<9}{rate:>9.1f}{rate / loop_rate:>7.2f}{cpu:>13.2f}{cpu / loop_cpu:>7.2f}"
                  f"   {parts}")
        rate_target, cpu_target = TARGETS[tag]
        flow = results[tag]["flow"]
        rate_ratio = statistics.median(row["n"] / row["wall"] for row in flow) / loop_rate
        cpu_ratio = statistics.median(1000 * row["cpu"] / row["n"] for row in flow) / loop_cpu
        verdict = f"files/s ratio {rate_ratio:.2f} (target >= {rate_target})"
        if cpu_target:
            verdict += f", CPU/file ratio {cpu_ratio:.2f} (target <= {cpu_target})"
        print(f"{tag}: {verdict}")
    print(f"load at the end: {proctree.load_average()}")
    if moto is not None:
        moto.terminate()
        moto.wait()
    bench_api.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
