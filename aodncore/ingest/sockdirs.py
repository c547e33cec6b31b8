"""Private folders for the worker links' Unix sockets, and the removal of those a killed run left behind.

A pool's caller listens for each worker's connection on a socket *file* (never Linux's abstract socket namespace,
which any local user may connect to). Each connection gets a folder of its own,
``<temp dir>/aodncore-pool-<pid>-<start>-<random>/`` (``tempfile.mkdtemp``: 0700, only this user may enter it;
``pid`` and ``start``, the kernel's start time of that process, name the process that made it), which exists
only while that one connection is being made: made before ``listen``, removed right after ``accept``. Its maker
holds an ``flock`` on the folder itself meanwhile; the kernel drops it when the process dies, however it dies.
The fork server's socket file lives in multiprocessing's private folder of the process that started it; that
folder is made the same way (:func:`use_for_multiprocessing`), held for the process's life.

A run SIGKILLed (OOM killer, ``kill -9``) inside that window leaves its folder behind, so every pool start sweeps
the temporary folder (:func:`sweep_stale`). A folder is removed only when all of these hold: its name is ours
(``aodncore-pool-<pid>-<start>-…``), it is a real folder (never a symlink, never followed) owned by this user,
the process its name records is gone or is another process now (start time), and its lock is free. So another
live run's folder is never touched (its process runs; in another PID namespace sharing ``/tmp``, its lock is
held), nor another user's, nor anything else. Only its entries (the socket files) are removed, through the
folder's own descriptor; a folder holding a sub-folder is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from aodncore.ingest.liveness import process_alive, process_start_ticks

__all__ = ["PREFIX", "SOCKET_NAME", "process_alive", "process_start_ticks", "socket_folder", "sweep_stale",
           "use_for_multiprocessing"]

logger = logging.getLogger(__name__)

PREFIX = "aodncore-pool-"
SOCKET_NAME = "s"
"""The socket file's name in its folder (one socket a folder)."""

FALLBACK_ROOT = "/tmp"
"""Where the folder is made when the temporary folder's path is too long for a socket address."""

_MAX_FOLDER = 107
"""A socket's path must fit in 108 bytes on Linux, with its terminating NUL."""

_own: tuple[int, str] | None = None


def _own_name() -> str:
    """``<prefix><pid>-<start>-`` of this process (recomputed after a fork)."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        _own = (pid, process_start_ticks(pid) or "0")
    return f"{PREFIX}{pid}-{_own[1]}-"


def _locked_folder(longest: int) -> tuple[str, int]:
    """A new folder of ours (path at most ``longest`` long, else under ``/tmp``) and a descriptor locking it."""
    for _attempt in range(3):
        folder = tempfile.mkdtemp(prefix=_own_name())
        if len(folder) > longest:
            os.rmdir(folder)
            folder = tempfile.mkdtemp(prefix=_own_name(), dir=FALLBACK_ROOT)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with contextlib.suppress(OSError):
                if os.stat(folder, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                    return folder, fd  # still ours: no sweep of another PID namespace took it before the lock
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise FileNotFoundError(f"the folder {folder} was removed as it was made")  # pragma: no cover - 3 in a row


@contextmanager
def socket_folder() -> Iterator[str]:
    """A new private folder for one listening socket (see the module doc), locked while the block runs and
    removed, with what is in it, when it ends."""
    folder, fd = _locked_folder(_MAX_FOLDER - len(SOCKET_NAME) - 1)
    try:
        yield folder
    finally:
        try:
            _empty(fd)
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(folder)  # before the lock is dropped: a sweep never sees it unlocked while it is ours
        finally:
            os.close(fd)


_process_folder_lock: int | None = None


def use_for_multiprocessing() -> str:
    """Make multiprocessing's private temporary folder of this process (where the fork server's socket file
    lives) a folder of ours, locked for the process's life, so that a killed run's is swept too; the folder.

    Called before the fork server starts; a process whose multiprocessing already has its folder keeps it. Like
    multiprocessing's own, it is removed when the process exits normally.
    """
    global _process_folder_lock
    from multiprocessing import process, util

    config = process.current_process()._config
    current = config.get("tempdir")
    if current is not None:
        return current
    folder, fd = _locked_folder(_MAX_FOLDER - len("/listener-xxxxxxxx"))  # multiprocessing's socket name
    if _process_folder_lock is not None:  # the folder multiprocessing removed at its finalizers' run
        os.close(_process_folder_lock)
    _process_folder_lock = fd
    util.Finalize(None, util._remove_temp_dir, args=(shutil.rmtree, folder), exitpriority=-100)
    config["tempdir"] = folder
    return folder


def _empty(fd: int) -> bool:
    """Unlink the entries of the folder open on ``fd`` (no sub-folder is followed); True when it is empty now."""
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError:  # a sub-folder: nothing of ours
            return False
    return True


def _owner(name: str) -> tuple[int, str | None] | None:
    """The (pid, start) a folder's name records; None when the name is not of our form."""
    parts = name[len(PREFIX):].split("-", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), (parts[1] if parts[1] != "0" else None)  # "0": its start time was unknown


def _remove_if_stale(root_fd: int, name: str, uid: int) -> bool:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
    except OSError:  # a symlink, not a folder, gone, or not ours to enter
        return False
    try:
        info = os.fstat(fd)
        if info.st_uid != uid or not stat.S_ISDIR(info.st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its maker holds it: alive (e.g. another PID namespace sharing this folder)
            return False
        if not _empty(fd):
            return False
        os.rmdir(name, dir_fd=root_fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _roots() -> list[str]:
    root = tempfile.gettempdir()
    return [root] if os.path.realpath(root) == os.path.realpath(FALLBACK_ROOT) else [root, FALLBACK_ROOT]


def sweep_stale(roots: list[str] | None = None) -> list[str]:
    """Remove the socket folders under ``roots`` (default: the temporary folder and ``/tmp``) whose run is gone
    (see the module doc); the paths removed."""
    removed: list[str] = []
    uid = os.getuid()
    for root in roots if roots is not None else _roots():
        try:
            root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            with os.scandir(root_fd) as entries:
                names = [entry.name for entry in entries if entry.name.startswith(PREFIX)]
            for name in names:
                owner = _owner(name)
                if owner is None or process_alive(*owner) or not _remove_if_stale(root_fd, name, uid):
                    continue
                removed.append(os.path.join(root, name))
                logger.debug("removed the socket folder %s left by a run that did not finish", removed[-1])
        finally:
            os.close(root_fd)
    return removed
