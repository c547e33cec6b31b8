"""Benchmark the IMOS compliance suites: milliseconds per file per suite over the real IMOS files.

Each suite is run in-process (``CheckSuite.run_all`` on an already opened dataset, as compliance-checker does)
``--repeat`` times per file; the table shows the median per file, then the mean of those medians per suite and
its ratio to ``cf:1.6`` measured in the same run. Nothing is asserted: speed is recorded in docs/imos-checks.md.

    /work/venv/bin/python benchmarks/bench_imos_suites.py [--repeat 5] [--data tests/data/imos]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

SUITES = ("cf:1.6", "imos:1.3", "imos:1.4", "ghrsst:1.0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "tests/data/imos")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="bench-xdg-"))  # never fetch CF tables
    warnings.simplefilter("ignore")
    from compliance_checker.runner import CheckSuite

    CheckSuite.load_all_available_checkers()
    suite = CheckSuite()
    files = []
    for path in sorted(args.data.glob("*.nc")):
        try:
            suite.load_dataset(str(path)).close()
        except OSError:
            continue  # not a NetCDF file
        files.append(path)

    table: dict[str, dict[str, float]] = {}
    for path in files:
        ds = suite.load_dataset(str(path))
        try:
            suite.run_all(ds, list(SUITES))  # warm-up (CF standard-name table, caches)
            row = {}
            for name in SUITES:
                samples = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    suite.run_all(ds, [name])
                    samples.append((time.perf_counter() - start) * 1000.0)
                row[name] = statistics.median(samples)
            table[path.name] = row
        finally:
            ds.close()

    width = max(len(n) for n in table) if table else 10
    width = min(width, 60)
    print(f"{'file':{width}} " + " ".join(f"{s:>11}" for s in SUITES))
    for name, row in table.items():
        short = name if len(name) <= width else name[: width - 1] + "…"
        print(f"{short:{width}} " + " ".join(f"{row[s]:11.1f}" for s in SUITES))
    means = {s: statistics.mean(row[s] for row in table.values()) for s in SUITES}
    print(f"{'mean ms/file':{width}} " + " ".join(f"{means[s]:11.1f}" for s in SUITES))
    print(f"{'ratio vs cf:1.6':{width}} " + " ".join(f"{means[s] / means['cf:1.6']:11.3f}" for s in SUITES))
    print(f"\n{len(table)} files, median of {args.repeat} runs per file and suite (ms)")


if __name__ == "__main__":
    main()
