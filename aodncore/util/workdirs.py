"""Handler working folders: a new private folder per handler run, or, where a caller allows it, a reused one.

``HandlerBase.run()`` works in ``<tmp_dir>/<ClassName><random>/`` with the sub-folders ``collection``, ``products``
and ``temp``, and the folder is gone when ``run()`` returns (:func:`working_directory`: by default exactly
:class:`tempfile.TemporaryDirectory`). Making and removing those four folders is the costliest file-system work of
a handler run on an ext4 disk (measured: ~0.4 ms CPU and 1-2 ms wall per run, more with two processes at once —
removing a folder frees its block), so a caller that owns ``tmp_dir`` — the ingest flows' private run folder —
may let a thread reuse one folder there (:func:`reused_working_folders`):

* a *spare* folder, private to the thread and process, is renamed to the run's new ``<ClassName><random>`` name
  (a name that is free), so the handler sees a new folder of the usual name with its sub-folders;
* when the run ends the folder is emptied — every file unlinked, every other entry removed, the sub-folders kept
  empty — and renamed back to the spare name: the run's path is gone, as with a removed folder;
* a folder that cannot be emptied, whose mode or whose sub-folders' modes changed, or that gained or lost an
  entry of its own, is removed instead (``TemporaryDirectory``'s clean-up), and the next run makes a fresh spare.

Nothing of a run is left in the folder after it; the next run's folder holds only empty sub-folders.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SUBFOLDERS", "reused_working_folders", "working_directory"]

SUBFOLDERS = ("collection", "products", "temp")
"""The sub-folders a handler's working folder keeps between reuses (``HandlerBase`` makes them)."""

_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile's alphabet for its random names
_state = threading.local()


@contextmanager
def reused_working_folders(root: str | os.PathLike[str] | None) -> Iterator[None]:
    """Within the block, handler working folders this thread makes directly in ``root`` reuse one folder (see
    the module docstring). ``None``: no reuse (a no-op)."""
    previous = getattr(_state, "root", None)
    _state.root = None if root is None else os.path.normpath(os.fspath(root))
    try:
        yield
    finally:
        _state.root = previous


def working_directory(prefix: str, base_dir: str) -> Any:
    """A context manager holding a new private folder ``<base_dir>/<prefix><random>`` (its path on entry), gone
    after the block: :class:`tempfile.TemporaryDirectory`, or a reused folder inside
    :func:`reused_working_folders` of ``base_dir``."""
    root = getattr(_state, "root", None)
    if root is None or os.path.normpath(base_dir) != root:
        return tempfile.TemporaryDirectory(prefix=prefix, dir=base_dir)
    spares: dict[tuple[int, str], _Spare] = _state.__dict__.setdefault("spares", {})
    key = (os.getpid(), root)  # a forked child makes its own
    spare = spares.pop(key, None)  # taken while in use: a nested run gets a folder of its own
    if spare is None or not spare.ready():
        spare = _Spare.make(root)
        for other in [other for other, kept in spares.items() if not os.path.isdir(kept.path)]:
            del spares[other]  # those of earlier runs (their run folders are gone): kept worker processes
    return _ReusedFolder(spare, prefix, lambda: spares.setdefault(key, spare) is spare)


def _random_name() -> str:
    """Eight random characters of tempfile's alphabet, from one read of the system's random source (not one per
    character, as ``secrets.choice`` would: eight system calls)."""
    return "".join(_NAME_CHARACTERS[byte % len(_NAME_CHARACTERS)] for byte in secrets.token_bytes(8))


class _Spare:
    """A folder kept for the next handler run, and the modes it was made with."""

    def __init__(self, path: str, modes: dict[str, int]) -> None:
        self.path = path
        self.modes = modes

    @classmethod
    def make(cls, root: str) -> _Spare:
        path = tempfile.mkdtemp(prefix="w-", dir=root)  # 0o700, as TemporaryDirectory's folder
        for name in SUBFOLDERS:
            os.mkdir(os.path.join(path, name))  # as HandlerBase makes them (the process's umask applies)
        return cls(path, _modes(path))

    def ready(self) -> bool:
        """Still there, as it was left: only the empty sub-folders."""
        try:
            with os.scandir(self.path) as entries:
                return sorted(entry.name for entry in entries) == sorted(SUBFOLDERS)
        except OSError:
            return False


def _modes(path: str) -> dict[str, int]:
    modes = {"": os.lstat(path).st_mode}
    for name in SUBFOLDERS:
        modes[name] = os.lstat(os.path.join(path, name)).st_mode
    return modes


class _ReusedFolder:
    """The spare under the run's new name for the block; emptied and renamed back after it (or removed)."""

    def __init__(self, spare: _Spare, prefix: str, keep: Callable[[], bool]) -> None:
        self._spare, self._keep = spare, keep
        root = os.path.dirname(spare.path)
        for _attempt in range(100):
            name = os.path.join(root, prefix + _random_name())
            if not os.path.lexists(name):
                break
        else:  # pragma: no cover - as tempfile.mkdtemp after as many tries
            raise FileExistsError(f"no usable temporary folder name found in {root}")
        os.rename(spare.path, name)  # a free name in the caller's private folder: nothing replaced
        self.name = name

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc_info: object) -> None:
        if _emptied(self.name, self._spare.modes):
            try:
                os.rename(self.name, self._spare.path)
            except OSError:
                pass
            else:
                if not self._keep():  # a nested run's folder was kept meanwhile: one is enough
                    _remove(self._spare.path)
                return
        _remove(self.name)

    def cleanup(self) -> None:
        """As :meth:`tempfile.TemporaryDirectory.cleanup`: the folder is gone afterwards."""
        self.__exit__(None, None, None)


def _emptied(path: str, modes: dict[str, int]) -> bool:
    """Empty the working folder ``path`` (see the module docstring); True when only its unchanged, empty
    sub-folders are left."""
    try:
        with os.scandir(path) as entries:
            found = list(entries)
        kept = set()
        for entry in found:
            if entry.name in SUBFOLDERS and entry.is_dir(follow_symlinks=False):
                _empty(entry.path)
                kept.add(entry.name)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        return kept == set(SUBFOLDERS) and _modes(path) == modes
    except OSError:
        return False


def _empty(folder: str) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def _remove(path: str) -> None:
    """Remove ``path`` as :class:`tempfile.TemporaryDirectory` removes its folder (unreadable parts made
    readable first)."""
    def unlock(_function: Any, name: str, _error: Any) -> None:
        try:
            parent = os.path.dirname(name)
            if parent:
                os.chmod(parent, stat.S_IRWXU)
            os.chmod(name, stat.S_IRWXU)
            if os.path.isdir(name) and not os.path.islink(name):
                _rmtree(name, unlock)
            else:
                os.unlink(name)
        except FileNotFoundError:
            pass

    if os.path.lexists(path):
        _rmtree(path, unlock)


def _rmtree(path: str, handler: Any) -> None:
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=handler)
    else:
        shutil.rmtree(path, onerror=handler)
