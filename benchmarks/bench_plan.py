"""Re-scanning a large S3 landing prefix: ``plan_landing`` against the raw boto3 listing, and its memory.

The landing prefix holds ``--objects`` keys, every one already in the ingest record (the steady state of a
landing area kept with ``--keep-landing``, or a scan racing the previous run). Measured in one run:

* **raw** — ``list_objects_v2`` pages through boto3's paginator, nothing else: the baseline;
* **plan** — ``aodncore.ingest.plan.plan_landing`` with the ingest record: listing, classification, batched
  ingest-record look-ups, one ``skipped`` item per object (consumed and dropped, as a streaming consumer would);
* **peak memory** of the plan (``tracemalloc``, a separate pass: tracing slows Python down) at ``--objects`` and at
  half as many: flat memory means the two peaks are close;
* with ``--run``: the **whole re-scan** as users run it, ``aodncore ingest s3://... --keep-landing`` in a fresh
  process (Prefect's local server, the flow run, the outcome table, the persisted result), against a raw listing
  of the same prefix timed just before it, with the peak RSS of the ingest process (``VmHWM``, sampled) and of the
  largest process it started (the Prefect server); and, with ``--drain N``, a run *without* ``--keep-landing``
  over N already-ingested objects, which removes each from the landing area (a conditional request per object).

moto's S3 server runs in its own process, like a real endpoint. Usage::

    .venv/bin/python benchmarks/bench_plan.py --objects 20000
    .venv/bin/python benchmarks/bench_plan.py --objects 100000 --repeat 1 --run --drain 5000
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proctree  # noqa: E402

BUCKET = "bench-landing"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_moto() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def _fill(client, prefix: str, count: int) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: client.put_object(Bucket=BUCKET, Key=f"{prefix}f{i:07d}.nc", Body=b"x"),
                      range(count)))


def _record_everything(record_path: Path, source: str) -> None:
    """Mark every object under ``source`` as published in a fresh ingest record (one transaction)."""
    from aodncore.ingest.ledger import IngestLedger
    from aodncore.ingest.sources import list_landing

    IngestLedger(record_path).close()  # schema
    rows = [(obj.uri, obj.fingerprint, "published", "", None, None, None, time.time(), "{}")
            for obj in list_landing(source)]
    with sqlite3.connect(record_path) as connection:
        connection.executemany(
            "INSERT INTO ingest_record (source_uri, fingerprint, status, destination, error, error_uri, run_id, "
            "recorded_at, outcome_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _raw(client, prefix: str) -> tuple[float, int]:
    start = time.perf_counter()
    count = sum(len(page.get("Contents", []))
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix))
    return time.perf_counter() - start, count


def _plan(source: str, ledger, trace: bool = False) -> tuple[float, int, int]:
    from aodncore.ingest.plan import plan_landing

    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    skipped = sum(1 for item in plan_landing(source, ledger=ledger) if item.status == "skipped")
    elapsed = time.perf_counter() - start
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return elapsed, skipped, peak


def _cli_run(source: str, base: Path, *extra: str) -> dict[str, object]:
    """``aodncore ingest SOURCE`` in a fresh process (a fresh Prefect home, as a first run would have)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(base / "prefect-home")
    command = [sys.executable, "-c", "import sys; from aodncore.cli import main; sys.exit(main())", "ingest",
               source, "--base-dir", str(base), *extra]
    result = proctree.run_measured(command, env=env)
    if result["returncode"] != 0:
        raise RuntimeError(f"aodncore ingest exited {result['returncode']}: {str(result['stdout'])[-2000:]}")
    return result


def _whole_runs(client, args, tmp: Path) -> None:
    base = tmp / "run-base"
    base.mkdir()
    _record_everything(base / "ingest-record.sqlite", f"s3://{BUCKET}/full/")
    warm = tmp / "warm-base"  # the first start of Prefect in a new home migrates its database: not measured
    warm.mkdir()
    _cli_run(f"s3://{BUCKET}/empty/", warm)
    os.replace(warm / "prefect-home", base / "prefect-home")
    try:
        _measured_runs(client, args, base)
    finally:
        _stop_background_server(base)


def _stop_background_server(base: Path) -> None:
    """The warm-up run started the background Prefect server of this home (the measured runs use it): stop it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(base / "prefect-home")
    subprocess.run([sys.executable, "-c", "import sys; from aodncore.cli import main; sys.exit(main())", "server",
                    "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def _measured_runs(client, args, base: Path) -> None:
    raw, listed = _raw(client, "full/")
    run = _cli_run(f"s3://{BUCKET}/full/", base, "--keep-landing")
    last = str(run["stdout"]).strip().splitlines()[-1:]
    print(f"re-scan, {listed} objects all already ingested (--keep-landing): raw listing {raw:.2f} s, "
          f"aodncore ingest {run['wall']:.2f} s, ratio {run['wall'] / raw:.2f} (target <= 1.5); peak RSS: ingest "
          f"process {run['peak_mib']:.0f} MiB (target <= 300), largest process it started "
          f"{run['peak_descendants_mib']:.0f} MiB (not the background Prefect server: the warm-up run started it);"
          f" last line: {last}")
    if args.drain:
        _fill(client, "drain/", args.drain)
        _record_everything(base / "ingest-record.sqlite", f"s3://{BUCKET}/drain/")
        raw, listed = _raw(client, "drain/")
        run = _cli_run(f"s3://{BUCKET}/drain/", base)
        remaining = _raw(client, "drain/")[1]
        print(f"drain, {listed} objects all already ingested (removed from the landing area): raw listing "
              f"{raw:.2f} s, aodncore ingest {run['wall']:.2f} s, ratio {run['wall'] / raw:.2f}, "
              f"{1000 * run['wall'] / listed:.2f} ms/object; {remaining} left; peak RSS {run['peak_mib']:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run", action="store_true", help="also time the whole re-scan (aodncore ingest)")
    parser.add_argument("--drain", type=int, default=0, help="with --run: also a run removing N ingested objects")
    args = parser.parse_args()
    print(f"load {proctree.load_average()}")

    server, url = _start_moto()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=url)
    try:
        import boto3

        from aodncore.ingest.ledger import IngestLedger

        client = boto3.client("s3", endpoint_url=url)
        client.create_bucket(Bucket=BUCKET)
        half = args.objects // 2
        _fill(client, "full/", args.objects)
        _fill(client, "half/", half)
        with tempfile.TemporaryDirectory() as tmp:
            record = Path(tmp) / "ingest-record.sqlite"
            for prefix in ("full/", "half/"):
                _record_everything(record, f"s3://{BUCKET}/{prefix}")
            ledger = IngestLedger(record, readonly=True)
            ratios = []
            for _ in range(args.repeat):
                raw, listed = _raw(client, "full/")
                plan, skipped, _ = _plan(f"s3://{BUCKET}/full", ledger)
                assert listed == skipped == args.objects, (listed, skipped)
                ratios.append(plan / raw)
                print(f"objects {listed}: raw listing {raw:.2f} s, plan {plan:.2f} s, ratio {plan / raw:.2f}")
            _, _, peak_full = _plan(f"s3://{BUCKET}/full", ledger, trace=True)
            _, _, peak_half = _plan(f"s3://{BUCKET}/half", ledger, trace=True)
            ledger.close()
            if args.run:
                _whole_runs(client, args, Path(tmp))
        print(f"median ratio plan/raw: {statistics.median(ratios):.2f} (target <= 1.5)")
        print(f"plan peak memory: {peak_half / 2**20:.1f} MiB at {half} objects, "
              f"{peak_full / 2**20:.1f} MiB at {args.objects} objects; load {proctree.load_average()}")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
