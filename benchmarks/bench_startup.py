"""Start-up of ``aodncore ingest`` on an empty folder (whole process, wall time) against ``python -c "import prefect"``.

Every measurement is a fresh process of the installed ``aodncore`` command, its output captured (as a CI job
would), in a clean environment (no ``PREFECT_*``/``AODNCORE_*`` variables) with its own ``PREFECT_HOME``. Each
round, interleaved so that background load hits every variant alike:

* ``import prefect`` — ``python -c "import prefect"``, the baseline (three times; the round's median is used);
* ``first run``  — a new, empty ``PREFECT_HOME``: the run starts the background server (database from the
  template) and runs its flow against it;
* ``later run``  — the same home again, once the warm runner is ready (the normal case for the next run);
* ``later, no warm runner`` — the same with ``AODNCORE_WARM_RUNNER=0``: the command imports Prefect itself and
  runs against the running server (what a run does right after the first, before the warm runner is up);
* ``ephemeral``  — ``AODNCORE_PREFECT_SERVER=ephemeral`` on the same (existing) home: a private server per run,
  for reference;
* ``server floor`` — ``python -c "import prefect.server.api.server as s; s.create_app()"``: what any fresh
  Prefect server process costs before it can answer (the first run cannot be faster than this).

Each run is checked: exit code 0, "no files found", and the flow run recorded as COMPLETED in the server.
Printed: per-round seconds, then median seconds and median ratio to ``import prefect`` per variant, with the
targets (issue 9: first run <= 3x, later runs <= 1.5x). Usage::

    python benchmarks/bench_startup.py [--rounds 5] [--later 3]
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
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
AODNCORE = shutil.which("aodncore", path=str(Path(sys.executable).parent)) or "aodncore"
sys.path.insert(0, str(HERE.parent))

from aodncore.prefect.localserver.control import server_status, stop_server  # noqa: E402
from aodncore.prefect.localserver.state import ServerPaths, read_state  # noqa: E402


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "AODNCORE_"))}
    env.update(PREFECT_HOME=str(home), **extra)
    return env


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - start, done


def completed_runs(home: Path) -> int:
    state = read_state(ServerPaths(home))
    request = urllib.request.Request(f"{state.api_url}/flow_runs/count", data=json.dumps(
        {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return int(json.load(response))


def ingest(home: Path, empty: Path, work: Path, **extra: str) -> float:
    seconds, done = timed([AODNCORE, "ingest", str(empty)], clean_env(home, **extra), work)
    if done.returncode != 0 or "no files found" not in done.stdout:
        raise RuntimeError(f"ingest failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-2000:]}")
    return seconds


def server_answered_after(home: Path, run_started: float) -> float:
    """Seconds from the start of the run that launched the server until the server answered."""
    return server_status(home).identity["ready"] - run_started


def wait_for_warm_runner(home: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server_status(home).runner_ready():
            return
        time.sleep(0.2)
    raise RuntimeError("the warm runner did not become ready")


def one_round(work: Path, later: int) -> dict[str, list[float]]:
    empty = work / "empty"
    empty.mkdir(exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    base_env = clean_env(home)
    times: dict[str, list[float]] = {}

    def baseline() -> None:
        seconds, done = timed([sys.executable, "-c", "import prefect"], base_env, work)
        assert done.returncode == 0, done.stderr
        times.setdefault("import prefect", []).append(seconds)

    try:
        baseline()
        started = time.time()
        times["first run"] = [ingest(home, empty, work)]
        times["  server answered at"] = [server_answered_after(home, started)]
        recorded = completed_runs(home)
        baseline()
        wait_for_warm_runner(home)
        time.sleep(1.0)  # let the server's deferred start-up work (block registration) finish
        times["later run"] = [ingest(home, empty, work) for _ in range(later)]
        times["later, no warm runner"] = [ingest(home, empty, work, AODNCORE_WARM_RUNNER="0")]
        baseline()
        if completed_runs(home) != recorded + later + 1:
            raise RuntimeError("a run was not recorded in the background server")
        stop_server(home)
        times["ephemeral"] = [ingest(home, empty, work, AODNCORE_PREFECT_SERVER="ephemeral")]
        seconds, done = timed([sys.executable, "-c", "import prefect.server.api.server as s; s.create_app()"],
                              base_env, work)
        assert done.returncode == 0, done.stderr
        times["server floor"] = [seconds]
    finally:
        stop_server(home)
        shutil.rmtree(home, ignore_errors=True)
    return times


TARGETS = {"first run": 3.0, "later run": 1.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--later", type=int, default=3, help="later runs per round")
    args = parser.parse_args()
    print(f"aodncore: {AODNCORE}; cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as folder:
        for number in range(1, args.rounds + 1):
            times = one_round(Path(folder), args.later)
            rounds.append(times)
            print(f"round {number}: " + "; ".join(
                f"{name} {' '.join(f'{value:.2f}' for value in values)}" for name, values in times.items()), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'variant':24s} {'median s':>9s} {'ratio':>7s} {'ratio range':>13s}  target")
    for name in rounds[0]:
        seconds = [value for times in rounds for value in times[name]]
        ratios = [value / statistics.median(times["import prefect"]) for times in rounds for value in times[name]]
        target = TARGETS.get(name)
        met = target is not None and statistics.median(ratios) <= target
        verdict = "" if target is None else f"<= {target}x: {'met' if met else 'NOT met'}"
        print(f"{name:24s} {statistics.median(seconds):9.2f} {statistics.median(ratios):6.2f}x "
              f"{min(ratios):5.2f}-{max(ratios):5.2f}x  {verdict}")


if __name__ == "__main__":
    main()
