"""Time from process start to the first completed trivial Prefect flow on the *ephemeral* server.

Each measurement is a fresh Python process (no ``PREFECT_API_URL``) with its own ``PREFECT_HOME``:

* ``cold``: a new, empty ``PREFECT_HOME`` (database created and migrated in that run);
* ``warm``: the same home after one earlier run.

Scenarios: ``default`` (Prefect's defaults), ``ours`` (:func:`aodncore.prefect.runtime.prepare_prefect_environment`)
``ours+bg`` (the same plus :func:`warm_up_server_in_background` started first) and ``ours+early``
(:func:`start_server_early`: the server child is launched before Prefect is imported and the parent never imports
``prefect.server``). Every scenario does ``--overlap-work`` seconds of simulated other start-up work (e.g. listing
the landing area) before the flow, which the background variants overlap with the server start.

Usage::

    python benchmarks/bench_prefect_startup.py [--repeat 2] [--scenarios default,ours,ours+bg] [--overlap-work 1.0]
    python benchmarks/bench_prefect_startup.py --phases     # where the time goes inside the server child

Reported per run: ``import`` (process start → ``import prefect`` done), ``flow`` (process start → first flow
returned), ``exit`` (process start → process gone; includes stopping the server).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, sys, time
t0 = float(os.environ["BENCH_T0"])
marks = {"python": time.time() - t0}
scenario = os.environ["BENCH_SCENARIO"]
if scenario.startswith("ours"):
    # Load runtime.py by path: ``aodncore.prefect/__init__`` imports Prefect (flows), which would defeat the point.
    import importlib.util
    _spec = importlib.util.spec_from_file_location("aodncore_prefect_runtime", os.environ["BENCH_RUNTIME"])
    runtime = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(runtime)
    prepare_prefect_environment = runtime.prepare_prefect_environment
    start_server_early = runtime.start_server_early
    warm_up_server_in_background = runtime.warm_up_server_in_background
    wait_for_server = runtime.wait_for_server
    if scenario == "ours+early":
        start_server_early()
    prepare_prefect_environment()
    if scenario == "ours+bg":
        warm_up_server_in_background()
    work = float(os.environ.get("BENCH_OVERLAP", "0"))
    if work:
        time.sleep(work)  # stands for listing the landing area / importing the checkers
        marks["work"] = time.time() - t0
    if scenario in ("ours+bg", "ours+early"):
        from prefect import flow  # noqa: F401  (import first, as the product would, then wait)
        wait_for_server()
else:
    work = float(os.environ.get("BENCH_OVERLAP", "0"))
    if work:
        time.sleep(work)
        marks["work"] = time.time() - t0
from prefect import flow, task
marks["import"] = time.time() - t0

@task
def one():
    return 1

@flow
def trivial():
    return one()

assert trivial() == 1
marks["flow"] = time.time() - t0
print("BENCH " + json.dumps(marks), flush=True)
"""

PHASES = r"""
import time
t0 = time.time()
import prefect.server.api.server as s
t1 = time.time()
app = s.create_app(ephemeral=True)
t2 = time.time()
print(f"PHASE import_server={t1 - t0:.2f} create_app={t2 - t1:.2f}", flush=True)
"""


def _clean_env(home: str, scenario: str, overlap: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["BENCH_SCENARIO"] = scenario
    env["BENCH_OVERLAP"] = str(overlap)
    env["PREFECT_HOME"] = home
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"  # a loaded machine must not fail the run
    env["BENCH_RUNTIME"] = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                        "aodncore", "prefect", "runtime.py")
    return env


def run_once(home: str, scenario: str, overlap: float) -> dict[str, float]:
    env = _clean_env(home, scenario, overlap)
    t0 = time.time()
    env["BENCH_T0"] = repr(t0)
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    total = time.time() - t0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if proc.returncode or line is None:
        raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    marks = json.loads(line[6:])
    marks["exit"] = total
    return marks


def phases(repeat: int) -> None:
    """Break the server child's start-up into import and app creation, and time the whole server start."""
    for _ in range(repeat):
        home = tempfile.mkdtemp(prefix="bench-prefect-")
        try:
            env = _clean_env(home, "default", 0)
            t0 = time.time()
            out = subprocess.run([sys.executable, "-c", "import prefect"], env=env, capture_output=True, text=True)
            t_prefect = time.time() - t0
            t0 = time.time()
            out = subprocess.run([sys.executable, "-c", PHASES], env=env, capture_output=True, text=True)
            t_phase = time.time() - t0
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PHASE")), out.stderr[-500:])
            for label, extra in (("cold", {}), ("warm", {}), ("warm-nomigrate", {
                "PREFECT_API_DATABASE_MIGRATE_ON_START": "false"})):
                code = (
                    "import time; t0=time.time()\n"
                    "from prefect.server.api.server import SubprocessASGIServer\n"
                    "t1=time.time(); s=SubprocessASGIServer(); s.start(); t2=time.time()\n"
                    "print(f'SERVER import={t1-t0:.2f} start_until_healthy={t2-t1:.2f}'); s.stop()\n"
                )
                out2 = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True,
                                      text=True)
                line2 = next((ln for ln in out2.stdout.splitlines() if ln.startswith("SERVER")), out2.stderr[-500:])
                print(f"server start {label:15s}: {line2}")
            print(f"python -c 'import prefect': {t_prefect:.2f}s; server child: {line} (process {t_phase:.2f}s)")
        finally:
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--scenarios", default="default,ours,ours+bg,ours+early")
    parser.add_argument("--overlap-work", type=float, default=1.0,
                        help="seconds of simulated other start-up work in every scenario")
    parser.add_argument("--phases", action="store_true")
    args = parser.parse_args()
    if args.phases:
        phases(args.repeat)
        return
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for _ in range(args.repeat):
        for scenario in args.scenarios.split(","):  # interleaved, so background load hits all scenarios alike
            home = tempfile.mkdtemp(prefix="bench-prefect-")
            try:
                results.setdefault((scenario, "cold"), []).append(run_once(home, scenario, args.overlap_work))
                results.setdefault((scenario, "warm"), []).append(run_once(home, scenario, args.overlap_work))
                results.setdefault((scenario, "warm2"), []).append(run_once(home, scenario, args.overlap_work))
            finally:
                shutil.rmtree(home, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"overlap work in every run: {args.overlap_work:.1f} s (subtract it for the pure Prefect cost)")
    print(f"{'scenario':10s} {'home':6s} {'import':>14s} {'first flow':>20s} {'exit':>20s}")
    for (scenario, state), rows in results.items():
        def fmt(key: str, rows: list[dict[str, float]] = rows) -> str:
            values = [r[key] for r in rows]
            return f"{statistics.median(values):5.2f} ({min(values):.2f}-{max(values):.2f})"
        print(f"{scenario:10s} {state:6s} {fmt('import'):>14s} {fmt('flow'):>20s} {fmt('exit'):>20s}")


if __name__ == "__main__":
    main()
