"""Benchmark capped compliance checks: a freshly forked child per file against one long-lived child for all.

Every real IMOS NetCDF file goes through the check step's capped call (``check_in_capped_child``, ``cf:1.6``,
default caps) from this single-threaded process — as a pool worker or a classic ``HandlerBase.run()`` script
does — in two modes, alternating round by round in the same run:

* ``fresh fork`` — a child forked for each file (the classic path; ``reuse_child(False)``);
* ``reused child`` — one long-lived child, forked once (``reuse_child(True)``: pool workers, the fork host).

CPU per file counts this process *and* its children (``getrusage`` of both; the long-lived child is retired at the
end of each round, so its CPU is counted), user and system apart. The results of both modes are compared file by
file (they must be identical). Nothing is asserted about speed.

    python benchmarks/bench_capped.py [--rounds 5] [--repeat 2] [--data tests/data/imos] [--checks cf:1.6]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "tests/data/imos")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per mode (alternating)")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the files per round")
    parser.add_argument("--checks", default="cf:1.6")
    args = parser.parse_args()

    os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="bench-xdg-"))  # never fetch CF tables
    warnings.simplefilter("ignore")
    from aodncore.limits import CheckLimits
    from aodncore.pipeline.steps import check
    from aodncore.pipeline.steps.checklimits import check_in_capped_child
    from aodncore.util import capped

    paths = [str(p) for p in sorted(args.data.glob("*.nc")) if p.read_bytes()[:3] in (b"CDF", b"\x89HD")]
    params = {"checks": args.checks.split(",")}
    caps = CheckLimits()
    runner_class = check.ComplianceCheckerCheckRunner
    work = tempfile.mkdtemp(prefix="bench-capped-")

    def one_round(reuse: bool) -> tuple[float, float, float, list]:
        capped.reuse_child(reuse)
        user0, system0 = _cpu()
        wall0 = time.perf_counter()
        results = []
        for _ in range(args.repeat):
            for path in paths:
                result = check_in_capped_child(runner_class, params, path, caps, work_dir=work)
                log = tuple(line for line in result.log if "Report generated" not in line)  # a timestamp
                results.append((type(result).__name__, result.compliant, result.errors, log))
        capped.reuse_child(False)  # retires the long-lived child: its CPU is now in RUSAGE_CHILDREN
        user1, system1 = _cpu()
        count = len(paths) * args.repeat
        return ((user1 - user0) * 1000 / count, (system1 - system0) * 1000 / count,
                (time.perf_counter() - wall0) * 1000 / count, results)

    one_round(False)  # warm this process up (suites loaded, standard-name table parsed)
    samples: dict[str, list[tuple[float, float, float]]] = {"fresh fork": [], "reused child": []}
    reference = None
    for index in range(args.rounds * 2):
        mode = ("fresh fork", "reused child")[index % 2 if (index // 2) % 2 == 0 else 1 - index % 2]
        user, system, wall, results = one_round(mode == "reused child")
        samples[mode].append((user, system, wall))
        if reference is None:
            reference = results
        elif results != reference:
            raise SystemExit(f"results differ between modes ({mode}, round {index})")

    load = os.getloadavg()
    print(f"{len(paths)} NetCDF files x {args.repeat}, {args.checks}, {args.rounds} rounds per mode, "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; medians, ms per file (this process + children)")
    print(f"  {'mode':14s} {'user':>8s} {'system':>8s} {'CPU':>8s} {'wall':>8s}")
    medians = {}
    for mode, values in samples.items():
        user, system, wall = (statistics.median(v[i] for v in values) for i in range(3))
        medians[mode] = (user, system, user + system, wall)
        print(f"  {mode:14s} {user:8.1f} {system:8.1f} {user + system:8.1f} {wall:8.1f}")
    fresh, reused = medians["fresh fork"], medians["reused child"]
    print(f"  reused / fresh: CPU x{reused[2] / fresh[2]:.2f}, system x{reused[1] / max(fresh[1], 1e-9):.2f}, "
          f"wall x{reused[3] / fresh[3]:.2f}; results identical in every round")


if __name__ == "__main__":
    main()
