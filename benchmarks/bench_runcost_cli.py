"""Wall time of a warm ``aodncore ingest`` with a few files, forked from the warm runner: this checkout's code
against other code (``--baseline PATH``: a checkout put first on ``PYTHONPATH``, e.g. main's), in the same run.

Each variant gets its own background server (fresh ``PREFECT_HOME``, warm runner on); after its warm runner is
ready, the variants alternate, each ingesting ``--files`` fresh copies of the real IMOS files with ``--workers 2``.
Printed: each run's wall time and summary line, the medians, and whether each warm runner started a fork server.
Run it from a folder with no ``aodncore/`` in it (the baseline must not import this checkout)::

    cd /tmp && python /path/to/benchmarks/bench_runcost_cli.py --baseline /work/main --rounds 4 --files 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "imos"
AODNCORE = shutil.which("aodncore", path=str(Path(sys.executable).parent)) or "aodncore"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="checkout whose code is the baseline (PYTHONPATH)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    files = sorted(p for p in DATA.glob("*.nc") if p.stat().st_size > 1000)[:args.files]
    tmp = Path(tempfile.mkdtemp(prefix="aodncore-runcost-cli-"))
    paths = {"baseline": args.baseline, "this": str(REPO)}

    def env_for(variant: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AODNCORE_"))}
        env.update(PREFECT_HOME=str(tmp / f"home-{variant}"), AODNCORE_SERVER_IDLE_TIMEOUT="600",
                   PYTHONPATH=paths[variant])
        return env

    def log(variant: str) -> str:
        return "".join(p.read_text(errors="replace") for p in (tmp / f"home-{variant}").rglob("*.log"))

    try:
        for variant in paths:
            empty = tmp / f"empty-{variant}"
            empty.mkdir()
            subprocess.run([AODNCORE, "ingest", str(empty)], env=env_for(variant), capture_output=True, cwd=tmp,
                           check=True)
        for variant in paths:
            deadline = time.monotonic() + 180
            while "warm runner ready" not in log(variant) and time.monotonic() < deadline:
                time.sleep(0.5)
            print(f"{variant}: warm runner ready; fork server started there: {'fork server started' in log(variant)}")
        time.sleep(3)
        walls: dict[str, list[float]] = {variant: [] for variant in paths}
        for index in range(args.rounds):
            for variant in (list(paths) if index % 2 == 0 else list(reversed(paths))):
                landing = tmp / f"landing-{variant}-{index}"
                landing.mkdir()
                for number, path in enumerate(files):
                    shutil.copy(path, landing / f"{path.stem}-cli{index}{number}.nc")
                start = time.perf_counter()
                result = subprocess.run(
                    [AODNCORE, "ingest", str(landing), "--base-dir", str(tmp / f"base-{variant}-{index}"),
                     "--workers", str(args.workers), "--settle", "0"],
                    env=env_for(variant), capture_output=True, text=True, cwd=tmp)
                wall = time.perf_counter() - start
                walls[variant].append(wall)
                summary = (result.stdout.strip().splitlines() or [result.stderr[-200:]])[-1]
                print(f"round {index} {variant:<8} {wall:6.2f} s  exit {result.returncode}  {summary[:80]}", flush=True)
        for variant, found in walls.items():
            forked = log(variant).count("run forked")
            print(f"{variant}: median {statistics.median(found):.2f} s wall; runs forked {forked}")
    finally:
        for variant in paths:
            subprocess.run([AODNCORE, "server", "stop"], env=env_for(variant), capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
