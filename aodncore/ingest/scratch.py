"""Working folders of ingest runs, and the removal of those a killed run left behind.

Every run works in one folder of its own, ``<work dir>/aodncore-run-<time>-<pid>-<random>/``, holding:

* ``owner.lock`` — locked (``flock``, exclusive) by the run's process for as long as it lives; the kernel drops
  the lock when the process dies, however it dies (SIGKILL, OOM killer, power loss);
* ``owner.json`` — who made the folder: host name, process id, process start time, creation time;
* one sub-folder per landing object being processed (:func:`object_folder`: each worker thread reuses one, emptied
  after every object), and the handlers' own temporary folders.

A run that ends normally removes its folder. At start, every run sweeps the work dir: a run folder whose lock
can be taken has no live owner and is removed. A folder whose owner is alive is never touched — two concurrent
runs on one base dir leave each other alone. On the same host the owner marker is checked as well (process
``pid`` alive with the recorded start time), so even a file system with unreliable locks never loses a live
run's folder; a folder with no marker at all is left alone (it is not ours).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aodncore.ingest import sockdirs
from aodncore.ingest.liveness import process_alive, process_start_ticks

__all__ = ["RUN_PREFIX", "RunScratch", "is_run_folder", "object_folder", "run_scratch", "sweep_stale_scratch"]

logger = logging.getLogger(__name__)

RUN_PREFIX = "aodncore-run-"
_LOCK = "owner.lock"
_MARKER = "owner.json"


@dataclass
class RunScratch:
    """The working folder of one run (see the module docstring); ``path`` exists while the run holds it."""

    path: Path
    _lock_fd: int | None = None

    def object_dir(self) -> str:
        """A new, empty folder for one landing object (short name: never near the file-name limit)."""
        folder = self.path / f"o-{uuid.uuid4().hex[:12]}"
        folder.mkdir()
        return str(folder)

    def release(self) -> None:
        """Remove the folder and drop the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _create(root: Path) -> RunScratch:
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = root / f"{RUN_PREFIX}{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    lock_fd = os.open(path / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    marker = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_start": process_start_ticks(os.getpid()),
        "created": time.time(),
    }
    (path / _MARKER).write_text(json.dumps(marker))
    return RunScratch(path, lock_fd)


def _owner_alive_here(folder: Path) -> bool:
    """True when the folder's marker names a live process on this host."""
    try:
        marker = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("host") != socket.gethostname():
        return False
    return process_alive(int(marker.get("pid", -1)), marker.get("process_start"))


_UNLOCKED_GRACE_SECONDS = 60.0  # a run folder gets its lock right after it is made; without one after this, dead


def _try_take(folder: Path) -> int | None:
    """An fd holding the folder's lock when nobody else holds it; None when its owner is alive.

    A run folder without a lock file counts as unowned (the returned fd then locks nothing, -1) when it still has
    its owner marker (its run was removing it, and was killed there: :func:`sweep_stale_scratch` then asks the
    marker whether the owner lives), or else once it is a minute old (its run died between making and locking it).
    """
    try:
        fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        if (folder / _MARKER).exists():
            return -1  # the lock was made before the marker: its run was removing it (killed there?); ask the marker
        try:
            young = time.time() - folder.stat().st_mtime < _UNLOCKED_GRACE_SECONDS
        except OSError:
            return None
        return None if young else -1
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def sweep_stale_scratch(root: str | os.PathLike[str]) -> list[Path]:
    """Remove the run folders under ``root`` that no live run owns; return the folders removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(RUN_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        fd = _try_take(folder)
        if fd is None:
            continue
        try:
            if _owner_alive_here(folder):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            logger.info("removed the working folder %s left by an earlier run that did not finish", folder)
        finally:
            if fd >= 0:
                os.close(fd)
    return removed


@contextmanager
def run_scratch(root: str | os.PathLike[str]) -> Iterator[RunScratch]:
    """Sweep stale run folders under ``root`` (and the socket folders of killed runs' worker pools,
    :mod:`aodncore.ingest.sockdirs`), then hold a new run folder for the block."""
    sweep_stale_scratch(root)
    sockdirs.sweep_stale()  # also for a run with nothing to do, which starts no pool
    scratch = _create(Path(root))
    try:
        yield scratch
    finally:
        scratch.release()


_reusable = threading.local()


def is_run_folder(path: str) -> bool:
    """True for a run folder (see the module docstring): private to one live run."""
    return _is_run_folder(path)


def _is_run_folder(path: str) -> bool:
    return os.path.basename(os.path.normpath(path)).startswith(RUN_PREFIX) and \
        os.path.exists(os.path.join(path, _LOCK))


def _emptied(folder: str) -> bool:
    """Empty ``folder`` (its sub-folders' files unlinked, the sub-folders kept; anything deeper removed); True when
    it is empty but for empty sub-folders."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
                    continue
                with os.scandir(entry.path) as inner:
                    for item in inner:
                        if item.is_dir(follow_symlinks=False):
                            shutil.rmtree(item.path)
                        else:
                            os.unlink(item.path)
    except OSError:
        return False
    return True


@contextmanager
def object_folder(work_dir: str | None) -> Iterator[str]:
    """An empty private folder for one landing object, for the block; nothing of the object is left in it after.

    Inside a run folder (see the module docstring) each thread of each process reuses one folder for its objects,
    emptied after each (files unlinked, its sub-folders kept): making and removing three folders per object cost
    ~1 ms, half of it waiting for the file system. A folder that cannot be emptied is removed, and the next object
    gets a new one. Elsewhere (no run folder) every object gets a new folder, removed after it.
    """
    if work_dir is None or not _is_run_folder(work_dir):
        folder = tempfile.mkdtemp(prefix="o-", dir=work_dir)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    kept: dict[tuple[int, str], str] = _reusable.__dict__.setdefault("folders", {})
    key = (os.getpid(), work_dir)  # a forked child makes its own
    folder = kept.pop(key, None)  # taken while in use: a nested call gets a folder of its own
    if folder is None or not os.path.isdir(folder):
        folder = tempfile.mkdtemp(prefix="o-", dir=work_dir)
        for other in [other for other, path in kept.items() if not os.path.isdir(path)]:
            del kept[other]  # those of earlier runs (their run folders are gone): kept worker processes
    try:
        yield folder
    finally:
        if _emptied(folder):
            kept[key] = folder
        else:
            shutil.rmtree(folder, ignore_errors=True)
