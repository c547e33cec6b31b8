"""Hardened extraction of untrusted zip and gzip files.

Archives land from people and programs we do not control, so extraction is bounded and confined:

* zip members are validated before anything is written: no absolute names, no ``..`` escapes, no symlink or
  device members, no encrypted members, no duplicate names, at most ``max_members`` entries, and the sizes and
  compression ratios the headers *declare* must be within the caps;
* the caps are enforced again on the bytes actually decompressed, **while streaming**: extraction stops at the cap
  (a lying header or a gzip bomb never writes more than the cap plus one chunk), and everything written so far is
  removed;
* the caps (see :mod:`aodncore.limits`): total output of the archive, output per member (the content of a gzip
  file is its one member), and the decompressed:compressed ratio of each member and of the whole archive, the
  ratio applying once the output passes a small threshold.

Violations raise :class:`~aodncore.pipeline.exceptions.InvalidFileFormatError` naming the archive, the member, the
limit and its configuration key.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

from aodncore.limits import (
    ARCHIVE_MAX_MEMBER_BYTES,
    ARCHIVE_MAX_MEMBERS,
    ARCHIVE_MAX_RATIO,
    ARCHIVE_MAX_TOTAL_BYTES,
    ArchiveLimits,
    format_size,
)

__all__ = ["extract_gzip", "extract_zip"]

_CHUNK_SIZE = 1024 ** 2


def _invalid_format(message: str) -> Exception:
    # imported lazily: aodncore.pipeline imports this module (through aodncore.util.fileops)
    from aodncore.pipeline.exceptions import InvalidFileFormatError

    return InvalidFileFormatError(message)


def _rm_f(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _effective_limits(limits: ArchiveLimits | None, **overrides: Any) -> ArchiveLimits:
    base = limits or ArchiveLimits()
    changes = {name: value for name, value in overrides.items() if value is not None}
    if not changes:
        return base
    values = {name: getattr(base, name) for name in ArchiveLimits.__dataclass_fields__}
    values.update(changes)
    return ArchiveLimits(**values)


class _Budget:
    """Counts decompressed bytes of one archive and refuses the chunk that would pass a cap."""

    def __init__(self, label: str, archive_size: int, limits: ArchiveLimits, describe: Callable[[str], str]):
        self.label = label  # "zip file '<path>'"
        self.archive_size = max(archive_size, 1)
        self.limits = limits
        self.describe = describe  # member name -> "member 'x'" / "the content"
        self.total = 0

    def _refuse(self, member: str, what: str) -> Exception:
        return _invalid_format(f"refusing to extract {self.label}: {self.describe(member)} {what}")

    def check_declared(self, member: str, size: int, compressed: int, declared_total: int) -> None:
        """Refuse, before anything is written, an archive whose headers declare sizes beyond the caps."""
        limits = self.limits
        if size > limits.max_member_bytes:
            raise self._refuse(member, f"declares {size} bytes, more than the per-member limit of "
                                       f"{format_size(limits.max_member_bytes)} ({ARCHIVE_MAX_MEMBER_BYTES.key})")
        if declared_total > limits.max_total_bytes:
            raise _invalid_format(
                f"refusing to extract {self.label}: its members declare {declared_total} bytes, more than the "
                f"limit of {format_size(limits.max_total_bytes)} ({ARCHIVE_MAX_TOTAL_BYTES.key}) "
                f"(at member '{member}')")
        if size > limits.ratio_threshold_bytes and size > limits.max_ratio * max(compressed, 1):
            raise self._refuse(member, f"has a compression ratio above the limit of {limits.max_ratio}:1 "
                                       f"({ARCHIVE_MAX_RATIO.key})")
        if declared_total > limits.ratio_threshold_bytes and declared_total > limits.max_ratio * self.archive_size:
            raise _invalid_format(
                f"refusing to extract {self.label}: it declares {declared_total} bytes from "
                f"{self.archive_size}, a compression ratio above the limit of {limits.max_ratio}:1 "
                f"({ARCHIVE_MAX_RATIO.key})")

    def copy(self, member: str, source: IO[bytes], out: IO[bytes], compressed: int) -> int:
        """Stream ``source`` into ``out``, stopping (with an error) before a cap is passed; returns the size."""
        limits = self.limits
        written = 0
        while True:
            chunk = source.read(_CHUNK_SIZE)
            if not chunk:
                return written
            written += len(chunk)
            self.total += len(chunk)
            if written > limits.max_member_bytes:
                raise self._refuse(member, f"decompresses to more than the per-member limit of "
                                           f"{format_size(limits.max_member_bytes)} ({ARCHIVE_MAX_MEMBER_BYTES.key})")
            if self.total > limits.max_total_bytes:
                raise _invalid_format(
                    f"refusing to extract {self.label}: it decompresses to more than the limit of "
                    f"{format_size(limits.max_total_bytes)} ({ARCHIVE_MAX_TOTAL_BYTES.key}) "
                    f"(at {self.describe(member)})")
            if written > limits.ratio_threshold_bytes and written > limits.max_ratio * max(compressed, 1):
                raise self._refuse(member, f"has a compression ratio above the limit of {limits.max_ratio}:1 "
                                           f"({ARCHIVE_MAX_RATIO.key}): {written} bytes decompressed from "
                                           f"{compressed}")
            if self.total > limits.ratio_threshold_bytes and self.total > limits.max_ratio * self.archive_size:
                raise _invalid_format(
                    f"refusing to extract {self.label}: {self.total} bytes decompressed from "
                    f"{self.archive_size} exceed the compression ratio limit of {limits.max_ratio}:1 "
                    f"({ARCHIVE_MAX_RATIO.key}) (at {self.describe(member)})")
            out.write(chunk)


# ---------------------------------------------------------------------------------------------------------------------
# gzip
# ---------------------------------------------------------------------------------------------------------------------

def _default_gzip_dest_name(gzip_path: str) -> str:
    # QUIRK kept from upstream: every trailing '.', 'g' and 'z' character is stripped ('log.gz' -> 'lo')
    return os.path.basename(gzip_path).rstrip(".gz")


def extract_gzip(gzip_path: str, dest_dir: str, dest_name: str | None = None, max_bytes: int | None = None,
                 limits: ArchiveLimits | None = None) -> str:
    """Decompress a gzip file into ``dest_dir``, within the decompression caps.

    :param gzip_path: the ``.gz`` file
    :param dest_dir: existing output directory
    :param dest_name: output file name (a bare name); by default the basename of ``gzip_path`` with all trailing
        ``.``/``g``/``z`` characters removed (upstream quirk: ``x.nc.gz`` -> ``x.nc`` but ``log.gz`` -> ``lo``)
    :param max_bytes: decompressed size cap, overriding ``limits`` (the smaller of the total and per-member caps
        applies to a gzip's one member)
    :param limits: the caps (default: :class:`aodncore.limits.ArchiveLimits` defaults)
    :return: the path of the decompressed file
    """
    caps = _effective_limits(limits, max_total_bytes=max_bytes,
                             max_member_bytes=max_bytes if max_bytes is not None else None)
    name = _default_gzip_dest_name(gzip_path) if dest_name is None else dest_name
    if name in ("", ".", "..") or os.path.basename(name) != name or "\\" in name:
        raise _invalid_format(f"cannot extract gzip file '{gzip_path}': invalid output name '{name}'")
    dest_path = os.path.join(dest_dir, name)
    archive_size = os.path.getsize(gzip_path)
    budget = _Budget(f"gzip file '{gzip_path}'", archive_size, caps, lambda _member: "its content")

    with open(gzip_path, "rb") as raw:
        fd, temp_path = tempfile.mkstemp(dir=dest_dir, prefix=f".{name[:40]}.", suffix=".part")  # fits NAME_MAX
        try:
            with os.fdopen(fd, "wb") as out, gzip.GzipFile(fileobj=raw, mode="rb") as source:
                budget.copy(name, source, out, archive_size)
            os.chmod(temp_path, 0o644)
            os.replace(temp_path, dest_path)
        except (OSError, EOFError, zlib.error) as e:
            _rm_f(temp_path)
            if isinstance(e, (gzip.BadGzipFile, EOFError, zlib.error)):
                raise _invalid_format(f"invalid gzip file '{gzip_path}': {e}") from e
            raise
        except BaseException:
            _rm_f(temp_path)
            raise
    return dest_path


# ---------------------------------------------------------------------------------------------------------------------
# zip
# ---------------------------------------------------------------------------------------------------------------------

def _member_error(zip_path: str, member: str, reason: str) -> Exception:
    return _invalid_format(f"refusing to extract zip file '{zip_path}': member '{member}' {reason}")


def _safe_member_path(zip_path: str, info: zipfile.ZipInfo) -> str:
    """Return the normalised relative path of a member, or raise if it is unsafe."""
    raw_name = info.filename
    name = raw_name.replace("\\", "/")
    if "\x00" in name:
        raise _member_error(zip_path, raw_name, "has a NUL byte in its name")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _member_error(zip_path, raw_name, "has an absolute path")
    normalised = posixpath.normpath(name)
    if normalised == ".." or normalised.startswith("../"):
        raise _member_error(zip_path, raw_name, "escapes the destination directory")
    if normalised == ".":
        return ""
    return normalised


def _validate_zip_members(zip_path: str, infos: list[zipfile.ZipInfo], budget: _Budget
                          ) -> list[tuple[zipfile.ZipInfo, str]]:
    max_members = budget.limits.max_members
    if len(infos) > max_members:
        raise _invalid_format(
            f"refusing to extract zip file '{zip_path}': {len(infos)} members exceed the limit of {max_members} "
            f"({ARCHIVE_MAX_MEMBERS.key})")
    members = []
    seen: set[str] = set()
    declared_total = 0
    for info in infos:
        relative = _safe_member_path(zip_path, info)
        mode = info.external_attr >> 16
        file_type = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise _member_error(zip_path, info.filename, "is a symbolic link")
        if file_type and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise _member_error(zip_path, info.filename, "is not a regular file or directory")
        if info.flag_bits & 0x1:
            raise _member_error(zip_path, info.filename, "is encrypted")
        if not info.is_dir():
            if not relative:
                raise _member_error(zip_path, info.filename, "has an empty name")
            if relative in seen:
                raise _member_error(zip_path, info.filename, "appears more than once")
            seen.add(relative)
            declared_total += info.file_size
            budget.check_declared(info.filename, info.file_size, info.compress_size, declared_total)
        members.append((info, relative))
    return members


def extract_zip(zip_path: str, dest_dir: str, max_bytes: int | None = None, max_members: int | None = None,
                max_ratio: float | None = None, limits: ArchiveLimits | None = None) -> list[str]:
    """Safely extract every member of a zip archive into ``dest_dir``, within the decompression caps.

    All members are validated before anything is written (see the module docstring); the caps are enforced again
    while streaming, and if one trips, everything written so far is removed.

    :param max_bytes: total decompressed size cap (overrides ``limits.max_total_bytes``)
    :param max_members: entry count cap (overrides ``limits.max_members``)
    :param max_ratio: compression ratio cap (overrides ``limits.max_ratio``)
    :param limits: the caps (default: :class:`aodncore.limits.ArchiveLimits` defaults)
    :return: the paths of the extracted regular files, in archive order
    """
    caps = _effective_limits(limits, max_total_bytes=max_bytes, max_members=max_members, max_ratio=max_ratio)
    dest_root = os.path.realpath(dest_dir)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise _invalid_format(f"invalid zip file '{zip_path}': {e}") from e

    budget = _Budget(f"zip file '{zip_path}'", os.path.getsize(zip_path), caps, lambda member: f"member '{member}'")
    with archive:
        members = _validate_zip_members(zip_path, archive.infolist(), budget)
        created_files: list[str] = []
        created_dirs: list[str] = []

        def make_dirs(path: str) -> None:
            missing = []
            current = path
            while not os.path.isdir(current):
                missing.append(current)
                current = os.path.dirname(current)
            for directory in reversed(missing):
                os.mkdir(directory)
                created_dirs.append(directory)

        try:
            for info, relative in members:
                target = os.path.join(dest_root, *relative.split("/")) if relative else dest_root
                if os.path.commonpath([dest_root, os.path.realpath(target)]) != dest_root:
                    raise _member_error(zip_path, info.filename, "escapes the destination directory")
                if info.is_dir():
                    make_dirs(target)
                    continue
                make_dirs(os.path.dirname(target))
                with archive.open(info) as source, open(target, "xb") as out:
                    created_files.append(target)
                    budget.copy(info.filename, source, out, info.compress_size)
        except BaseException as e:
            for path in reversed(created_files):
                _rm_f(path)
            for directory in reversed(created_dirs):
                try:
                    os.rmdir(directory)
                except OSError:
                    pass
            if isinstance(e, (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)):
                raise _invalid_format(f"invalid zip file '{zip_path}': {e}") from e
            if isinstance(e, (FileExistsError, NotADirectoryError, IsADirectoryError)):
                raise _invalid_format(f"refusing to extract zip file '{zip_path}': conflicting member paths "
                                      f"({e})") from e
            raise
    return created_files
