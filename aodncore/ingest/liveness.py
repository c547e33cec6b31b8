"""Is a process still running, and is it still the same one: the owner checks of what a run leaves behind.

A run records its pid and the kernel's start time of its process (clock ticks since boot, field 22 of
``/proc/<pid>/stat``); a pid alone may name another process by the time anyone looks. Used by the run folders'
sweep (:mod:`aodncore.ingest.scratch`) and the socket folders' sweep (:mod:`aodncore.ingest.sockdirs`). (The
background server's state, :mod:`aodncore.prefect.localserver.state`, keeps its own standard-library copy: it runs
before anything of this layer may be imported.)
"""

from __future__ import annotations

import os

__all__ = ["process_alive", "process_start_ticks"]


def process_start_ticks(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (clock ticks since boot, from ``/proc``); None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            return stream.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def process_alive(pid: int, start: str | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, where both start times are known, is still the same process."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            fields = stream.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, somebody else's
        return True
    if fields[0] == b"Z":
        return False
    return start is None or len(fields) < 20 or fields[19].decode() == start
