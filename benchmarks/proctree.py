"""CPU time and memory of a process tree, read from ``/proc`` (Linux), for the benchmarks.

``tree_cpu(pid)`` adds up, over ``pid`` and every live descendant, user + system time *including* the children
each of them has already waited for (``cutime``/``cstime``): processes that came and went during a measurement
(worker processes, capped-check children) are counted through the parent that reaped them. The difference of two
readings is the CPU the whole tree spent in between.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            text = stream.read().decode()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as stream:
                found.extend(int(value) for value in stream.read().split())
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    result = [pid]
    index = 0
    while index < len(result):
        result.extend(children(result[index]))
        index += 1
    return result


def process_cpu(pid: int, *, with_reaped: bool = True) -> float:
    """CPU seconds of one process (plus the children it reaped, unless ``with_reaped`` is False)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def tree_cpu(pid: int | None = None, exclude: Iterable[int] = ()) -> float:
    """CPU seconds of the tree below ``pid`` (default: this process), leaving out the subtrees of ``exclude``."""
    skip: set[int] = set()
    for excluded in exclude:
        skip.update(descendants(excluded))
    return sum(process_cpu(member) for member in descendants(pid or os.getpid()) if member not in skip)


def subtree_cpu(pid: int) -> float:
    """CPU seconds of ``pid``'s whole subtree."""
    return sum(process_cpu(member) for member in descendants(pid))


def peak_rss_mib(pid: int | None = None) -> float:
    """The process's peak resident set size (``VmHWM``) in MiB."""
    with open(f"/proc/{pid or 'self'}/status") as stream:
        for line in stream:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mib(pid: int | None = None) -> float:
    """The process's current resident set size in MiB."""
    with open(f"/proc/{pid or 'self'}/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_until_idle(pids: Iterable[int], *, quiet_seconds: float = 0.5, threshold: float = 0.03,
                    timeout: float = 20.0) -> None:
    """Wait until the given processes spent less than ``threshold`` CPU seconds in ``quiet_seconds`` (e.g. a
    Prefect server still writing what a run sent it)."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    last = sum(subtree_cpu(pid) for pid in pids)
    while time.monotonic() < deadline:
        time.sleep(quiet_seconds)
        now = sum(subtree_cpu(pid) for pid in pids)
        if now - last < threshold:
            return
        last = now


def load_average() -> str:
    """The 1/5/15-minute load averages, as text."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} {five:.1f} {fifteen:.1f}"


def run_measured(command: list[str], *, env: dict[str, str] | None = None, interval: float = 0.2,
                 timeout: float = 3600.0) -> dict[str, object]:
    """Run ``command``, sampling the peak RSS (``VmHWM``) of it and of every descendant until it exits.

    Returns ``wall`` seconds, ``returncode``, ``stdout`` text, ``peak_mib`` of the command's own process and
    ``peak_descendants_mib`` (the largest of its descendants, e.g. a Prefect server it started).
    """
    import subprocess
    import tempfile

    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        peaks: dict[int, float] = {}
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            for member in descendants(process.pid):
                try:
                    peaks[member] = max(peaks.get(member, 0.0), peak_rss_mib(member))
                except (OSError, ValueError):
                    continue
            if time.monotonic() > deadline:
                process.kill()
            time.sleep(interval)
        wall = time.perf_counter() - start
        out.seek(0)
        text = out.read().decode(errors="replace")
    own = peaks.pop(process.pid, 0.0)
    return {"wall": wall, "returncode": process.returncode, "stdout": text, "peak_mib": own,
            "peak_descendants_mib": max(peaks.values(), default=0.0)}
