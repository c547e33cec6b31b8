"""Private copies a run declares, so that the archive step may hard-link them instead of copying them.

The ingest runner fetches each landing object into a private copy (:func:`aodncore.ingest.sources.fetch`) and hands
the handler a hard link of it (``processing/<name>`` in the object's folder). That file is the run's own: the
landing area's writer cannot change it, nothing writes it in place, and the object folder is emptied after the
object by unlinking its names. Archiving it by a hard link (:func:`link_private_copy`) gives the archive the same
file the copy path writes — same bytes, same permission bits, a modification time of the moment it was archived —
for a link, a time stamp and a rename instead of a create, a copy and a rename. The archived file shares its inode
with the private copy until the object folder is emptied.

Both conditions are context variables, set for a block and reset after it (a thread or a nested run never sees
another's):

* :func:`private_sources` — the runner declares the handler's input around the handler run, with the device and
  inode it had then (a path replaced meanwhile, or turned into a symlink, is no longer the declared file);
* :func:`archive_uploads` — the archive step (``StoreRunner`` in archive mode) around its uploads: the publish
  store, the error store and every other caller copy as before.

``AODNCORE_ARCHIVE_BY_LINK=0`` (read when a block starts) declares nothing: every archive is a copy.
"""

from __future__ import annotations

import contextlib
import os
import random
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["ARCHIVE_BY_LINK_ENV", "archive_by_link_enabled", "archive_uploads", "link_private_copy",
           "private_sources"]

#: set to ``0`` to archive every input by a copy (the behaviour before this module)
ARCHIVE_BY_LINK_ENV = "AODNCORE_ARCHIVE_BY_LINK"

_LINK_NAME_TRIES = 100
#: the links' temporary names (a clash only costs a retry: ``os.link`` never replaces or follows an existing name);
#: no system call per name as ``secrets`` makes, reseeded in a forked child so that workers draw their own names
_names = random.Random()
os.register_at_fork(after_in_child=_names.seed)


@dataclass
class _Declared:
    files: dict[str, tuple[int, int]]  # absolute path -> (st_dev, st_ino) when declared
    linked: set[str] = field(default_factory=set)  # absolute targets this block linked to one of them


_DECLARED: ContextVar[_Declared | None] = ContextVar("aodncore_private_sources", default=None)
_ARCHIVING: ContextVar[bool] = ContextVar("aodncore_archive_uploads", default=False)


def archive_by_link_enabled() -> bool:
    """False when ``AODNCORE_ARCHIVE_BY_LINK=0`` (or ``false``/``no``/``off``)."""
    return os.environ.get(ARCHIVE_BY_LINK_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def private_sources(*paths: str) -> Iterator[None]:
    """Declare ``paths`` the block's private regular files (nobody else writes them) for the block.

    A path that is not a regular file now (missing, a symlink, a folder) is not declared. Nothing is declared when
    the switch :data:`ARCHIVE_BY_LINK_ENV` is off.
    """
    files: dict[str, tuple[int, int]] = {}
    if archive_by_link_enabled():
        for path in paths:
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                files[os.path.abspath(path)] = (info.st_dev, info.st_ino)
    token = _DECLARED.set(_Declared(files) if files else None)
    try:
        yield
    finally:
        _DECLARED.reset(token)


@contextlib.contextmanager
def archive_uploads() -> Iterator[None]:
    """The block uploads to an archive store: a local store may link a declared private source."""
    token = _ARCHIVING.set(True)
    try:
        yield
    finally:
        _ARCHIVING.reset(token)


def link_private_copy(source: str, target: str, mode: int | None = None) -> bool:
    """Put ``source`` at ``target`` as a hard link when that gives what a copy would; True if it did.

    Only inside :func:`archive_uploads` and for a ``source`` declared by :func:`private_sources` that is still the
    declared regular file (same device and inode, not a symlink) with permission bits ``mode`` (when given). The
    link is made under a name of its own beside ``target`` (never the shared temporary name of
    :func:`~aodncore.util.fileops.safe_copy_file`, which a concurrent copy truncates and rewrites), gets the
    current modification time, and is renamed over ``target``. False — nothing changed, copy instead — when any
    condition fails, when ``target`` is the source itself (the copy reports that) or on any ``OSError`` (another
    file system, no hard links, a link limit, …).
    """
    declared = _DECLARED.get()
    if declared is None or not _ARCHIVING.get():
        return False
    abs_source = os.path.abspath(source)
    identity = declared.files.get(abs_source)
    if identity is None:
        return False
    abs_target = os.path.abspath(target)
    if abs_target == abs_source:
        return False
    try:
        current = os.stat(abs_target)
    except FileNotFoundError:
        current = None
    except OSError:
        return False
    if current is not None and (current.st_dev, current.st_ino) == identity:
        if abs_target not in declared.linked:
            return False  # a link someone else made: the copy path's same-file error
        # archived again by this block: a copy would give the same bytes, mode and a new time
        return _is_declared_file(abs_target, identity, mode) and _touched(abs_target)
    temp = _link_beside(abs_source, abs_target)
    if temp is None:
        return False
    try:
        if not _is_declared_file(temp, identity, mode):  # replaced, a symlink, another mode: copy it
            raise OSError("not the declared file")
        os.utime(temp)  # a copy's time: the moment it was archived (the private copy has the landing file's)
        os.replace(temp, abs_target)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(temp)
        return False
    declared.linked.add(abs_target)
    return True


def _is_declared_file(path: str, identity: tuple[int, int], mode: int | None) -> bool:
    """True when ``path`` (not followed) is the declared regular file, with permission bits ``mode`` if given."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == identity
            and (mode is None or stat.S_IMODE(info.st_mode) == mode))


def _touched(path: str) -> bool:
    try:
        os.utime(path)
    except OSError:
        return False
    return True


def _link_beside(source: str, target: str) -> str | None:
    """A new hard link of ``source`` under a unique hidden name in ``target``'s folder; None if none can be made."""
    folder, name = os.path.split(target)
    for _ in range(_LINK_NAME_TRIES):
        temp = os.path.join(folder, f".{name[:40]}.{_names.getrandbits(48):012x}.link")
        try:
            os.link(source, temp, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:
            return None
        return temp
    return None
