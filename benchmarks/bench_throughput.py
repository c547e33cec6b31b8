"""Throughput of the classic sequential ``HandlerBase.run()`` against the ``ingest_landing`` Prefect flow.

All variants process the same real IMOS NetCDF files (``tests/data/imos/*.nc``, replicated under unique IMOS
names) with the embedded default handler (``ImosGenericHandler``: publish to a local store, archive the input):

* ``classic``    — one ``HandlerBase.run()`` after the other in this process (each file is processed where it
                   landed; log records at INFO go to a file) — the strict baseline;
* ``celery``     — the same, but each file in a fresh forked worker process, as the classic Celery deployment ran
                   it (``worker_max_tasks_per_child=1``, spec §12);
* ``flow-local`` — ``ingest_landing`` on a landing folder (one flow run, fan-out over worker processes);
* ``flow-s3``    — ``ingest_landing`` on an ``s3://`` landing prefix served by moto's ``ThreadedMotoServer``.

Each is run with format checks only and with ``cf:1.6``. The Prefect API is warmed up first (one empty flow run);
Prefect's fixed start-up on the embedded default (a fresh process running an empty ``ingest_landing``) is
measured separately. Ratios are against ``classic`` measured in the same run; absolute numbers depend on the
machine. Usage::

    python benchmarks/bench_throughput.py                  # defaults: 200 files format-only, 60 files cf:1.6
    python benchmarks/bench_throughput.py --files 400 --cf-files 100 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "imos"


def make_files(target: Path, count: int) -> list[Path]:
    """``count`` copies of the real NetCDF files, each under a unique IMOS-convention name."""
    sources = sorted(p for p in DATA.glob("*.nc"))
    target.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(count):
        source = sources[index % len(sources)]
        name = f"{source.stem}-bench{index:05d}.nc"
        made.append(Path(shutil.copy(source, target / name)))
    return made


def run_classic(files: list[Path], base: Path, checks: list[str] | None) -> float:
    from aodncore.ingest.runner import RunContext
    from aodncore.pipeline.defaultconfig import default_config
    from aodncore.pipeline.imoshandler import ImosGenericHandler
    from aodncore.pipeline.log import get_pipeline_logger

    config = default_config(base)
    log = logging.getLogger("aodncore.bench.classic")
    handler_log = logging.FileHandler(base / "classic.log")
    log.addHandler(handler_log)
    log.setLevel(logging.INFO)
    log.propagate = False
    context = RunContext("bench", "classic", "classic", get_pipeline_logger("aodncore.bench.classic"))
    kwargs = {"check_params": {"checks": checks}} if checks else {}
    start = time.perf_counter()
    for path in files:
        handler = ImosGenericHandler(str(path), config=config, celery_task=context, **kwargs)
        handler.run()
    elapsed = time.perf_counter() - start
    log.removeHandler(handler_log)
    handler_log.close()
    return elapsed


def _classic_child(path: str, base: str, checks: list[str] | None) -> None:
    from aodncore.pipeline.defaultconfig import default_config
    from aodncore.pipeline.imoshandler import ImosGenericHandler

    kwargs = {"check_params": {"checks": checks}} if checks else {}
    ImosGenericHandler(path, config=default_config(base), **kwargs).run()


def run_classic_per_process(files: list[Path], base: Path, checks: list[str] | None) -> float:
    """The classic Celery deployment: every file in a fresh worker process (``worker_max_tasks_per_child=1``).

    Workers are forked from this process, which has already imported the pipeline, like Celery's prefork pool.
    """
    import multiprocessing

    import aodncore.pipeline.handlerbase  # noqa: F401 - imported before forking, as Celery's parent does
    import aodncore.pipeline.imoshandler  # noqa: F401
    import aodncore.pipeline.steps.check  # noqa: F401

    context = multiprocessing.get_context("fork")
    logging.getLogger("aodncore").propagate = False
    start = time.perf_counter()
    for path in files:
        child = context.Process(target=_classic_child, args=(str(path), str(base), checks))
        child.start()
        child.join()
    return time.perf_counter() - start


def run_flow(source: str, base: Path, checks: list[str] | None, workers: int) -> tuple[float, int]:
    """One ``ingest_landing`` run, as the CLI runs it (one-shot: no crash-detection heartbeat thread)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from aodncore.prefect.flows import ingest_landing

    start = time.perf_counter()
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        outcomes = ingest_landing(source, base_dir=str(base), checks=checks, workers=workers, settle_seconds=0)
    elapsed = time.perf_counter() - start
    return elapsed, len(outcomes)


def upload_landing(files: list[Path], bucket: str) -> str:
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    for path in files:
        client.upload_file(str(path), bucket, f"landing/{path.name}")
    return f"s3://{bucket}/landing/"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"moto server did not start on port {port}")


def _timed_process(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "AWS_ENDPOINT_URL"))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def measure_startup(tmp: Path) -> tuple[float, float]:
    """Wall time of a fresh process running ``ingest_landing`` on an empty folder (embedded default), and of the
    same process doing only the Prefect-free part (imports, configuration, listing); the difference is Prefect's
    fixed start-up."""
    empty = tmp / "empty-landing"
    empty.mkdir(exist_ok=True)
    with_prefect = (
        "import time, sys; t0 = time.perf_counter()\n"
        "from aodncore.prefect.runtime import start_server_early, wait_for_server\n"
        "start_server_early()\n"
        "from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings\n"
        "from aodncore.prefect.flows import ingest_landing\n"
        "wait_for_server()\n"
        "with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):\n"
        f"    ingest_landing({str(empty)!r}, base_dir={str(tmp / 'startup')!r})\n"
        "print(time.perf_counter() - t0)\n"
    )
    without_prefect = (
        "import time, sys; t0 = time.perf_counter()\n"
        "from aodncore.ingest.configure import build_settings\n"
        "from aodncore.ingest.sources import list_landing\n"
        f"build_settings(base_dir={str(tmp / 'startup')!r}); list(list_landing({str(empty)!r}))\n"
        "print(time.perf_counter() - t0)\n"
    )
    return _timed_process(with_prefect), _timed_process(without_prefect)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200, help="files for the format-checks-only runs")
    parser.add_argument("--cf-files", type=int, default=60, help="files for the cf:1.6 runs")
    parser.add_argument("--workers", type=int, default=2, help="ingest_landing workers")
    parser.add_argument("--skip-s3", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aodncore-bench-"))
    print(f"working in {tmp}; python {sys.version.split()[0]}; {os.cpu_count()} cores; workers={args.workers}")

    for attempt in ("first", "second", "third"):
        total, base = measure_startup(tmp)
        print(f"fresh process, empty ingest_landing ({attempt}): {total:.2f} s; without Prefect {base:.2f} s; "
              f"Prefect's fixed start-up {total - base:.2f} s")

    from aodncore.prefect.runtime import prepare_prefect_environment

    prepare_prefect_environment()
    # as the CLI does: library records go to the Prefect run logs, not to this console
    for handler_name in ("CONSOLE", "CONSOLE_FLOW_RUNS", "CONSOLE_TASK_RUNS"):
        os.environ.setdefault(f"PREFECT_LOGGING_HANDLERS_{handler_name}_LEVEL", "WARNING")
    logging.getLogger("aodncore").propagate = False

    server = None
    if not args.skip_s3:
        # moto's S3 server in its own process, like a real S3 endpoint (not sharing this process's GIL)
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        _wait_for_port(port)

    # warm-up: start the API and run one empty flow so every variant pays the same (nothing)
    (tmp / "warm").mkdir()
    run_flow(str(tmp / "warm"), tmp / "warm-base", None, args.workers)

    rows = []
    for label, checks, count in (("format checks only", None, args.files), ("cf:1.6", ["cf:1.6"], args.cf_files)):
        tag = "cf" if checks else "fmt"
        files = make_files(tmp / f"src-{tag}", count)
        classic = run_classic(files, tmp / f"classic-{tag}", checks)
        celery = run_classic_per_process(make_files(tmp / f"src2-{tag}", count), tmp / f"celery-{tag}", checks)
        landing = tmp / f"landing-{tag}"
        make_files(landing, count)
        local, n_local = run_flow(str(landing), tmp / f"flow-local-{tag}", checks, args.workers)
        assert n_local == count, (n_local, count)
        result = {"label": label, "n": count, "classic": classic, "celery": celery, "local": local}
        if server is not None:
            s3_source = upload_landing(files, f"bench-{tag}")
            s3_time, n_s3 = run_flow(s3_source, tmp / f"flow-s3-{tag}", checks, args.workers)
            assert n_s3 == count, (n_s3, count)
            result["s3"] = s3_time
        rows.append(result)

    print()
    print("files/s (ratio = rate / classic in-process rate; [celery] = ratio against the process-per-file baseline)")
    print(f"{'checks':<20}{'files':>6}{'classic':>9}{'celery':>9}{'flow-local':>12}{'ratio':>7}{'[celery]':>9}"
          f"{'flow-s3':>9}{'ratio':>7}{'[celery]':>9}")
    for row in rows:
        classic_rate = row["n"] / row["classic"]
        celery_rate = row["n"] / row["celery"]
        local_rate = row["n"] / row["local"]
        line = (f"{row['label']:<20}{row['n']:>6}{classic_rate:>9.1f}{celery_rate:>9.1f}{local_rate:>12.1f}"
                f"{local_rate / classic_rate:>7.2f}{local_rate / celery_rate:>9.2f}")
        if "s3" in row:
            s3_rate = row["n"] / row["s3"]
            line += f"{s3_rate:>9.1f}{s3_rate / classic_rate:>7.2f}{s3_rate / celery_rate:>9.2f}"
        print(line)
    if server is not None:
        server.terminate()
        server.wait()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
