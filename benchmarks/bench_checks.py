"""Benchmark the compliance check step against plain compliance-checker: CPU time per file, interleaved rounds.

Worker processes are started (spawn) and fed the same files in turn, file by file, round after round, in rotating
order:

* ``plain``      — compliance-checker exactly as users run it: ``CheckSuite.load_dataset`` + ``run_all`` + close,
  one ``run_all`` per suite (as the check step runs suites); this process never imports aodncore's fast path;
* ``step``       — our check step as the pipeline runs it: ``ComplianceCheckerCheckRunner.check_file_within_limits``
  (fast path on, the default), i.e. each file checked in a child forked under the check memory/time caps, with
  NetCDF integrity sniffing, report files and result assembly — the forked child's CPU is counted too;
* ``step-inproc`` — the same checks in the worker process itself (``check_file``, no capped child);
* ``step-plain`` — the in-process step with the fast path switched off (``AODNCORE_CC_FAST=0``).

Each worker measures its own CPU time plus that of the children it waited for (``getrusage`` self + children)
around each file, after one untimed warm-up pass. The ratios printed are mean CPU/file over mean CPU/file of
``plain`` (same files, same run). Suite sets: ``cf:1.6``, ``cf`` (compliance-checker's default CF version) and
``cf:1.6,imos:1.4`` (as the IMOS pipeline runs them). ``--profile`` prints where each worker's own time goes
(cProfile, one pass; a capped child's work is not in its parent's profile, so profile ``step-inproc``).

    /work/venv/bin/python benchmarks/bench_checks.py [--rounds 3] [--data DIR ...] [--profile]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import statistics
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = [ROOT / "tests/data/imos", Path("/work/shared/data/imos")]
SUITE_SETS = (("cf:1.6",), ("cf",), ("cf:1.6", "imos:1.4"))
PATHS = ("plain", "step", "step-inproc", "step-plain")


# ------------------------------------------------------------------------------------------------------------------
# workers
# ------------------------------------------------------------------------------------------------------------------

def _plain_check(suites):
    from compliance_checker.runner import CheckSuite

    CheckSuite.load_all_available_checkers()

    def check(path: str) -> None:
        for name in suites:  # one run_all per suite, like the check step (and like run_checker per suite)
            suite = CheckSuite()
            ds = suite.load_dataset(path)
            try:
                suite.run_all(ds, [name])
            finally:
                ds.close()

    return check


def _step_check(suites, capped: bool):
    from aodncore.pipeline.steps.check import ComplianceCheckerCheckRunner

    runner = ComplianceCheckerCheckRunner(None, None, {"checks": list(suites)})
    expected = os.environ.get("AODNCORE_CC_FAST") != "0"
    assert runner.fast_path is expected, "fast path switch not as expected"
    return runner.check_file_within_limits if capped else runner.check_file


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _worker(kind: str, conn) -> None:
    os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="bench-xdg-"))
    if kind == "step-plain":
        os.environ["AODNCORE_CC_FAST"] = "0"
    warnings.simplefilter("ignore")
    checkers: dict[tuple, object] = {}
    while True:
        message = conn.recv()
        if message is None:
            break
        command, suites, paths = message
        suites = tuple(suites)
        if suites not in checkers:
            checkers[suites] = _plain_check(suites) if kind == "plain" else _step_check(suites, kind == "step")
        check = checkers[suites]
        if command == "time":
            times = []
            for path in paths:
                start = _cpu_seconds()
                check(path)
                times.append((_cpu_seconds() - start) * 1000.0)
            conn.send(times)
        elif command == "profile":
            import cProfile
            import io
            import pstats

            profile = cProfile.Profile()
            profile.enable()
            for path in paths:
                check(path)
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(14)
            conn.send(out.getvalue())


# ------------------------------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------------------------------

def _netcdf_files(directories: list[Path]) -> list[str]:
    """Distinct (by content) NetCDF files of the given folders, sorted by name."""
    import netCDF4

    seen: dict[str, str] = {}
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.nc")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                continue
            try:
                netCDF4.Dataset(str(path)).close()
            except OSError:
                continue
            seen[digest] = str(path)
    return sorted(seen.values(), key=lambda p: Path(p).name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="folder of NetCDF files (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--suites", action="append", help="comma-separated suite set (repeatable)")
    parser.add_argument("--no-step-plain", action="store_true", help="skip the step with the fast path off")
    parser.add_argument("--profile-paths", default="plain,step-inproc", help="workers to profile (comma-separated)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary per worker and suite set")
    args = parser.parse_args()

    files = _netcdf_files(args.data or DEFAULT_DATA)
    suite_sets = [tuple(s.split(",")) for s in args.suites] if args.suites else list(SUITE_SETS)
    kinds = [k for k in PATHS if not (args.no_step_plain and k == "step-plain")]
    context = multiprocessing.get_context("spawn")
    workers = {}
    for kind in kinds:
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(kind, child), daemon=True)
        process.start()
        workers[kind] = (process, parent)

    import compliance_checker

    print(f"compliance-checker {compliance_checker.__version__}; {len(files)} distinct NetCDF files; "
          f"{args.rounds} interleaved rounds; CPU ms per file (mean over files and rounds)")
    try:
        for suites in suite_sets:
            for kind in kinds:  # untimed warm-up pass
                workers[kind][1].send(("time", suites, files))
            for kind in kinds:
                workers[kind][1].recv()
            per_round: dict[str, list[float]] = {kind: [] for kind in kinds}
            for round_number in range(args.rounds):
                order = kinds[round_number % len(kinds):] + kinds[:round_number % len(kinds)]
                for path in files:  # interleave file by file
                    for kind in order:
                        workers[kind][1].send(("time", suites, [path]))
                        per_round[kind].append(workers[kind][1].recv()[0])
            means = {kind: statistics.mean(values) for kind, values in per_round.items()}
            round_ratios = []
            n = len(files)
            for r in range(args.rounds):
                plain = sum(per_round["plain"][r * n:(r + 1) * n])
                step = sum(per_round["step"][r * n:(r + 1) * n])
                round_ratios.append(step / plain)
            label = ",".join(suites)
            cells = "  ".join(f"{kind} {means[kind]:7.1f}" for kind in kinds)
            ratios = "  ".join(f"{kind}/plain {means[kind] / means['plain']:.3f}" for kind in kinds if kind != "plain")
            print(f"{label:18} {cells}\n{'':18} {ratios}   (step/plain by round: "
                  f"{', '.join(f'{r:.3f}' for r in round_ratios)})")
            if args.profile:
                for kind in [k for k in kinds if k in args.profile_paths.split(",")]:
                    workers[kind][1].send(("profile", suites, files))
                    print(f"\n--- profile: {kind}, {label} ({len(files)} files) ---")
                    print(workers[kind][1].recv())
    finally:
        for process, conn in workers.values():
            conn.send(None)
            process.join(timeout=30)


if __name__ == "__main__":
    main()
