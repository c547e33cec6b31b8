"""Benchmark the cost of the safety checks per file: capped compliance checks and the NetCDF integrity check.

Three ways of checking every real IMOS NetCDF file with ``cf:1.6``, measured in the same run:

* ``in-process`` — ``ComplianceCheckerCheckRunner.check_file`` (no caps; the baseline);
* ``capped fork`` — ``check_file_within_limits`` from this single-threaded process (a forked child per file);
* ``capped host`` — the same while another thread runs, so each check goes through the fork host.

Then the format check (``FormatCheckRunner``) with and without the header-based integrity check. The modes are
interleaved file by file; the table shows the median milliseconds per check over ``--repeat`` rounds and each
mode's ratio to the baseline. Nothing is asserted.

    /work/venv/bin/python benchmarks/bench_check_caps.py [--repeat 5] [--data tests/data/imos]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path


def _median_ms(function, paths, repeat: int) -> float:
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for path in paths:
            function(path)
        rounds.append((time.perf_counter() - start) * 1000.0 / len(paths))
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "tests/data/imos")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="bench-xdg-"))  # never fetch CF tables
    warnings.simplefilter("ignore")
    from aodncore.limits import CheckLimits
    from aodncore.pipeline.files import PipelineFile
    from aodncore.pipeline.steps import check
    from aodncore.util.ncintegrity import netcdf_integrity_problem

    paths = [str(p) for p in sorted(args.data.glob("*.nc")) if p.read_bytes()[:3] in (b"CDF", b"\x89HD")]
    runner = check.ComplianceCheckerCheckRunner(None, None, {"checks": ["cf:1.6"]})
    caps = CheckLimits()
    for path in paths:  # warm up every mode once
        runner.check_file(path)
        runner.check_file_within_limits(path, caps)
    warm = threading.Thread(target=time.sleep, args=(5,), daemon=True)
    warm.start()
    runner.check_file_within_limits(paths[0], caps)  # start and warm the fork host

    # the modes are interleaved file by file, so that load from other processes hits them alike
    samples: dict[str, list[float]] = {"in-process": [], "capped fork": [], "capped host": []}
    stop = threading.Event()
    for _ in range(args.repeat):
        for path in paths:
            for mode in samples:
                thread = None
                if mode == "capped host":  # another thread: the check goes through the fork host
                    stop.clear()
                    thread = threading.Thread(target=stop.wait, daemon=True)
                    thread.start()
                start = time.perf_counter()
                if mode == "in-process":
                    runner.check_file(path)
                else:
                    runner.check_file_within_limits(path, caps)
                samples[mode].append((time.perf_counter() - start) * 1000.0)
                if thread is not None:
                    stop.set()
                    thread.join()
    results = {mode: statistics.median(values) for mode, values in samples.items()}

    format_runner = check.FormatCheckRunner(None, None)

    def format_check(path):
        format_runner.run(PipelineFile(path))

    def format_without_integrity(path):
        original = check.netcdf_integrity_problem
        check.netcdf_integrity_problem = lambda _path: None
        try:
            format_runner.run(PipelineFile(path))
        finally:
            check.netcdf_integrity_problem = original

    format_results = {
        "format check without integrity": _median_ms(format_without_integrity, paths, args.repeat * 4),
        "format check with integrity": _median_ms(format_check, paths, args.repeat * 4),
        "integrity check alone": _median_ms(netcdf_integrity_problem, paths, args.repeat * 4),
    }

    print(f"{len(paths)} NetCDF files, cf:1.6, {args.repeat} rounds, median ms per check")
    base = results["in-process"]
    for name, value in results.items():
        print(f"  {name:32s} {value:8.1f} ms   x{value / base:5.2f}")
    base = format_results["format check without integrity"]
    for name, value in format_results.items():
        print(f"  {name:32s} {value:8.3f} ms   x{value / base:5.2f}")


if __name__ == "__main__":
    main()
