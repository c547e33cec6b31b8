"""Memory per file over a long run: ``aodncore ingest`` of 1,000 and of 3,000 files, peak RSS of each process.

Both runs ingest real IMOS NetCDF files (``tests/data/imos``, replicated under unique names, format checks only)
from a local landing folder into the embedded default stores, exactly as a user runs the CLI, each in a fresh
process (the Prefect home warmed by an untimed empty run first). The peak resident set size (``VmHWM``) of the
ingest process, of the largest worker process and of the Prefect server is sampled while the run lasts. Flat
memory means the 3,000-file peaks are close to the 1,000-file peaks: the growth per file is
``(peak at 3,000 - peak at 1,000) / 2,000``. A run keeps nothing per file by design: the result lists the first
few published files and counts the rest (every one is in the run's report, ``--report``), and the listing, log
records, ingest-record writes and events are streamed or batched. ``--report`` runs both with ``--report FILE``
(and checks the report has one line per file). To compare two checkouts in the same session, run the script once
with ``PYTHONPATH=/path/to/other/checkout`` (the ingest processes inherit it). Usage::

    .venv/bin/python benchmarks/bench_memory.py --small 1000 --large 3000 [--report]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import proctree  # noqa: E402
from bench_throughput import make_files  # noqa: E402


def _ingest(landing: Path, base: Path, home: Path, workers: int, report: Path | None = None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    command = [sys.executable, "-c", "import sys; from aodncore.cli import main; sys.exit(main())", "ingest",
               str(landing), "--base-dir", str(base), "--settle", "0", "--workers", str(workers)]
    if report is not None:
        command += ["--report", str(report)]
    result = proctree.run_measured(command, env=env)
    if result["returncode"] != 0:
        raise RuntimeError(f"aodncore ingest exited {result['returncode']}: {str(result['stdout'])[-2000:]}")
    return result


def _stop_server(home: Path) -> None:
    """Stop the background server this benchmark started (its home is about to be removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    subprocess.run([sys.executable, "-c", "import sys; from aodncore.cli import main; sys.exit(main())", "server",
                    "stop"], env=env, capture_output=True, timeout=120, check=False)


def _worker_peak(result: dict[str, object]) -> float:
    return float(result["peak_descendants_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", action="store_true", help="run with --report FILE (every entry to a file)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aodncore-bench-memory-"))
    import aodncore

    print(f"working in {tmp}; aodncore from {Path(aodncore.__file__).parent}; load {proctree.load_average()}",
          flush=True)
    try:
        home = tmp / "prefect-home"
        (tmp / "empty").mkdir()
        _ingest(tmp / "empty", tmp / "warm-base", home, args.workers)
        peaks = {}
        for count in (args.small, args.large):
            landing = tmp / f"landing-{count}"
            make_files(landing, count, f"m{count}")
            report = tmp / f"report-{count}.jsonl" if args.report else None
            result = _ingest(landing, tmp / f"base-{count}", home, args.workers, report)
            if report is not None:
                lines = report.read_text(encoding="utf-8").count("\n")
                if lines != count:
                    raise RuntimeError(f"the report {report} has {lines} lines for {count} files")
            left = sum(1 for _ in landing.iterdir())
            peaks[count] = result
            print(f"{count} files in {result['wall']:.1f} s ({count / result['wall']:.1f} files/s), {left} left in "
                  f"the landing folder; peak RSS: ingest process {result['peak_mib']:.1f} MiB, largest process it "
                  f"started (Prefect server or a worker) {_worker_peak(result):.1f} MiB; load "
                  f"{proctree.load_average()}", flush=True)
            shutil.rmtree(landing, ignore_errors=True)
            shutil.rmtree(tmp / f"base-{count}", ignore_errors=True)
        small, large = peaks[args.small], peaks[args.large]
        extra = args.large - args.small
        growth = 1024 * (float(large["peak_mib"]) - float(small["peak_mib"])) / extra
        print(f"growth per file, ingest process: {growth:.1f} KiB/file "
              f"({small['peak_mib']:.1f} -> {large['peak_mib']:.1f} MiB); largest child: "
              f"{1024 * (_worker_peak(large) - _worker_peak(small)) / extra:.1f} KiB/file")
    finally:
        _stop_server(tmp / "prefect-home")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
