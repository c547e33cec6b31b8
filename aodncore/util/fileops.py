"""File-system helpers: type sniffing, safe copy/move, directory listing and hardened archive extraction.

Design notes:

* The process locale is never changed. :func:`filesystem_sort_key` orders names by Unicode code point, which is the
  order the ``C`` locale gives (``A B a b``, ASCII before non-ASCII).
* Image/PDF detection reads the file's leading "magic" bytes directly instead of using libmagic (python-magic), so
  there is no native dependency; the answers agree with libmagic for the formats we care about.
* Archives are untrusted input. :func:`extract_zip` validates every member before writing anything (no absolute
  names, no ``..`` escapes, no symlink or device members, bounded member count, declared size and compression ratio)
  and enforces the size and ratio limits again while streaming; :func:`extract_gzip` streams with a size limit.
  Violations raise :class:`~aodncore.pipeline.exceptions.InvalidFileFormatError` naming the archive and the reason,
  and partially written output is removed.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "TemporaryDirectory",
    "extract_gzip",
    "extract_zip",
    "filesystem_sort_key",
    "find_file",
    "get_file_checksum",
    "is_dir_writable",
    "is_file_writable",
    "is_gzip_file",
    "is_jpeg_file",
    "is_json_file",
    "is_netcdf_file",
    "is_nonempty_file",
    "is_pdf_file",
    "is_png_file",
    "is_tiff_file",
    "is_zip_file",
    "list_regular_files",
    "mkdir_p",
    "rm_f",
    "rm_r",
    "rm_rf",
    "safe_copy_file",
    "safe_move_file",
    "validate_dir_writable",
    "validate_file_writable",
]

#: Upper bound on the total number of bytes written when extracting one archive.
MAX_EXTRACTED_BYTES = 10 * 1024 ** 3
#: Upper bound on the number of members of a zip archive.
MAX_MEMBERS = 100_000
#: Highest accepted uncompressed:compressed ratio of a zip member larger than :data:`RATIO_THRESHOLD_BYTES`.
MAX_COMPRESSION_RATIO = 1000
#: Members smaller than this are exempt from the ratio limit (tiny files compress absurdly well).
RATIO_THRESHOLD_BYTES = 1024 ** 2

_CHUNK_SIZE = 1024 ** 2

_TemporaryDirectory = TemporaryDirectory


def filesystem_sort_key(name: str) -> str:
    """Sort key giving code-point order (``'A' < 'B' < 'a' < 'b' < 'Ä'``) without touching the process locale."""
    return name


def _invalid_format(message: str) -> Exception:
    # imported lazily: aodncore.pipeline imports this module
    from aodncore.pipeline.exceptions import InvalidFileFormatError

    return InvalidFileFormatError(message)


# ---------------------------------------------------------------------------------------------------------------------
# archives
# ---------------------------------------------------------------------------------------------------------------------

def _default_gzip_dest_name(gzip_path: str) -> str:
    # QUIRK kept from upstream: every trailing '.', 'g' and 'z' character is stripped ('log.gz' -> 'lo')
    return os.path.basename(gzip_path).rstrip(".gz")


def extract_gzip(gzip_path: str, dest_dir: str, dest_name: str | None = None,
                 max_bytes: int | None = None) -> str:
    """Decompress a gzip file into ``dest_dir``.

    :param gzip_path: the ``.gz`` file
    :param dest_dir: existing output directory
    :param dest_name: output file name (a bare name); by default the basename of ``gzip_path`` with all trailing
        ``.``/``g``/``z`` characters removed (upstream quirk: ``x.nc.gz`` -> ``x.nc`` but ``log.gz`` -> ``lo``)
    :param max_bytes: decompressed size limit (default :data:`MAX_EXTRACTED_BYTES`)
    :return: the path of the decompressed file
    """
    limit = MAX_EXTRACTED_BYTES if max_bytes is None else max_bytes
    name = _default_gzip_dest_name(gzip_path) if dest_name is None else dest_name
    if name in ("", ".", "..") or os.path.basename(name) != name or "\\" in name:
        raise _invalid_format(f"cannot extract gzip file '{gzip_path}': invalid output name '{name}'")
    dest_path = os.path.join(dest_dir, name)

    with open(gzip_path, "rb") as raw:
        fd, temp_path = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".part")
        try:
            written = 0
            with os.fdopen(fd, "wb") as out, gzip.GzipFile(fileobj=raw, mode="rb") as source:
                while True:
                    chunk = source.read(_CHUNK_SIZE)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > limit:
                        raise _invalid_format(
                            f"gzip file '{gzip_path}' decompresses to more than the limit of {limit} bytes")
                    out.write(chunk)
            os.chmod(temp_path, 0o644)
            os.replace(temp_path, dest_path)
        except (OSError, EOFError, zlib.error) as e:
            rm_f(temp_path)
            if isinstance(e, (gzip.BadGzipFile, EOFError, zlib.error)):
                raise _invalid_format(f"invalid gzip file '{gzip_path}': {e}") from e
            raise
        except BaseException:
            rm_f(temp_path)
            raise
    return dest_path


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


def _validate_zip_members(zip_path: str, infos: list[zipfile.ZipInfo], max_bytes: int, max_members: int,
                          max_ratio: float) -> list[tuple[zipfile.ZipInfo, str]]:
    if len(infos) > max_members:
        raise _invalid_format(
            f"refusing to extract zip file '{zip_path}': {len(infos)} members exceed the limit of {max_members}")
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
            if declared_total > max_bytes:
                raise _invalid_format(f"refusing to extract zip file '{zip_path}': uncompressed size exceeds the "
                                      f"limit of {max_bytes} bytes (at member '{info.filename}')")
            if info.file_size > RATIO_THRESHOLD_BYTES and \
                    info.file_size > max_ratio * max(info.compress_size, 1):
                raise _member_error(zip_path, info.filename,
                                    f"has a compression ratio above the limit of {max_ratio}:1")
        members.append((info, relative))
    return members


def extract_zip(zip_path: str, dest_dir: str, max_bytes: int | None = None, max_members: int | None = None,
                max_ratio: float | None = None) -> list[str]:
    """Safely extract every member of a zip archive into ``dest_dir``.

    All members are validated before anything is written. Unsafe archives raise
    :class:`~aodncore.pipeline.exceptions.InvalidFileFormatError` naming the archive and the offending member:
    absolute member names, names escaping ``dest_dir`` through ``..``, symlink/device members, encrypted members,
    duplicate names, more than ``max_members`` members, a total uncompressed size above ``max_bytes`` or a member
    (larger than 1 MiB) whose compression ratio exceeds ``max_ratio``. Sizes and ratios are checked again on the
    bytes actually decompressed; if a limit trips during streaming everything written so far is removed.

    The limits default to the module constants :data:`MAX_EXTRACTED_BYTES`, :data:`MAX_MEMBERS` and
    :data:`MAX_COMPRESSION_RATIO` (read at call time).

    :return: the paths of the extracted regular files, in archive order
    """
    max_bytes = MAX_EXTRACTED_BYTES if max_bytes is None else max_bytes
    max_members = MAX_MEMBERS if max_members is None else max_members
    max_ratio = MAX_COMPRESSION_RATIO if max_ratio is None else max_ratio

    dest_root = os.path.realpath(dest_dir)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise _invalid_format(f"invalid zip file '{zip_path}': {e}") from e

    with archive:
        members = _validate_zip_members(zip_path, archive.infolist(), max_bytes, max_members, max_ratio)

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

        total = 0
        try:
            for info, relative in members:
                target = os.path.join(dest_root, *relative.split("/")) if relative else dest_root
                if os.path.commonpath([dest_root, os.path.realpath(target)]) != dest_root:
                    raise _member_error(zip_path, info.filename, "escapes the destination directory")
                if info.is_dir():
                    make_dirs(target)
                    continue
                make_dirs(os.path.dirname(target))
                member_written = 0
                with archive.open(info) as source, open(target, "wb") as out:
                    created_files.append(target)
                    while True:
                        chunk = source.read(_CHUNK_SIZE)
                        if not chunk:
                            break
                        member_written += len(chunk)
                        total += len(chunk)
                        if total > max_bytes:
                            raise _invalid_format(f"refusing to extract zip file '{zip_path}': uncompressed size "
                                                  f"exceeds the limit of {max_bytes} bytes (at member "
                                                  f"'{info.filename}')")
                        if member_written > RATIO_THRESHOLD_BYTES and \
                                member_written > max_ratio * max(info.compress_size, 1):
                            raise _member_error(zip_path, info.filename,
                                                f"has a compression ratio above the limit of {max_ratio}:1")
                        out.write(chunk)
        except BaseException as e:
            for path in reversed(created_files):
                rm_f(path)
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


# ---------------------------------------------------------------------------------------------------------------------
# checksums and type sniffing
# ---------------------------------------------------------------------------------------------------------------------

def get_file_checksum(filepath: str, block_size: int = 65536, algorithm: str = "sha256") -> str:
    """Return the hex digest of a file computed with the named :mod:`hashlib` algorithm."""
    digest = hashlib.new(algorithm)
    with open(filepath, "rb") as f:
        for block in iter(lambda: f.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


def is_gzip_file(filepath: str) -> bool:
    """True if at least one byte can be decompressed from the file with gzip."""
    try:
        with gzip.open(filepath, "rb") as f:
            f.read(1)
    except (OSError, EOFError, zlib.error):
        return False
    return True


def is_json_file(filepath: str) -> bool:
    """True if the file parses as JSON (a missing file raises :class:`OSError`)."""
    with open(filepath, "rb") as f:
        content = f.read()
    try:
        json.loads(content)
    except ValueError:
        return False
    return True


def is_netcdf_file(filepath: str) -> bool:
    """True if netCDF4 can open the file (False for other files, including missing ones)."""
    import netCDF4

    try:
        with netCDF4.Dataset(filepath, mode="r"):
            pass
    except OSError:
        return False
    return True


def is_nonempty_file(filepath: str) -> bool:
    """True if the file size is above zero (a missing file raises :class:`OSError`)."""
    return os.path.getsize(filepath) > 0


def is_zip_file(filepath: str) -> bool:
    """True if the file is a zip archive."""
    return zipfile.is_zipfile(filepath)


# leading signatures -> MIME type (checked in order)
_MAGIC_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"II+\x00", "image/tiff"),
    (b"MM\x00+", "image/tiff"),
    (b"\x1f\x8b", "application/gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"PK\x05\x06", "application/zip"),
    (b"CDF\x01", "application/x-netcdf"),
    (b"CDF\x02", "application/x-netcdf"),
    (b"CDF\x05", "application/x-netcdf"),
    (b"\x89HDF\r\n\x1a\n", "application/x-hdf5"),
)


def _sniff_mime_type(filepath: str) -> str:
    """Return a MIME type for the file based on its leading bytes (missing files raise :class:`OSError`)."""
    with open(filepath, "rb") as f:
        head = f.read(512)
    if not head:
        return "inode/x-empty"
    for signature, mime_type in _MAGIC_SIGNATURES:
        if head.startswith(signature):
            return mime_type
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def validate_mime_type(mime_type: str) -> Callable[[str], None]:
    """Return a validator raising :class:`TypeError` unless a file's sniffed MIME type is ``mime_type``."""

    def validator(filepath: str) -> None:
        detected = _sniff_mime_type(filepath)
        if detected != mime_type:
            raise TypeError(f"filepath '{filepath}' must be of type '{mime_type}'. Detected type: {detected}")

    return validator


validate_jpeg_file = validate_mime_type("image/jpeg")
validate_pdf_file = validate_mime_type("application/pdf")
validate_png_file = validate_mime_type("image/png")
validate_tiff_file = validate_mime_type("image/tiff")


def _is_mime_type(mime_type: str) -> Callable[[str], bool]:
    def check(filepath: str) -> bool:
        return _sniff_mime_type(filepath) == mime_type

    check.__name__ = f"is_{mime_type.split('/')[1]}_file"
    check.__doc__ = f"True if the file's leading bytes identify it as ``{mime_type}``."
    return check


is_jpeg_file = _is_mime_type("image/jpeg")
is_pdf_file = _is_mime_type("application/pdf")
is_png_file = _is_mime_type("image/png")
is_tiff_file = _is_mime_type("image/tiff")


# ---------------------------------------------------------------------------------------------------------------------
# writability
# ---------------------------------------------------------------------------------------------------------------------

def is_dir_writable(path: str) -> bool | None:
    """True if a temporary file can be created in ``path``; False on a permission error; None on other errors."""
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return False
        return None
    return True


def is_file_writable(path: str) -> bool:
    """True if the current process may write to ``path``."""
    return os.access(path, os.W_OK)


def validate_dir_writable(path: str) -> None:
    """Raise :class:`ValueError` unless ``path`` is a writable directory."""
    if not is_dir_writable(path):
        raise ValueError(f"dir '{path}' is not writable")


def validate_file_writable(path: str) -> None:
    """Raise :class:`ValueError` unless ``path`` is writable."""
    if not is_file_writable(path):
        raise ValueError(f"file '{path}' is not writable")


# ---------------------------------------------------------------------------------------------------------------------
# listing
# ---------------------------------------------------------------------------------------------------------------------

def list_regular_files(path: str, recursive: bool = False,
                       sort_key: Callable[[str], Any] = filesystem_sort_key) -> Iterator[str]:
    """Iterate over the absolute paths of the regular (non-symlink) files under ``path``, sorted by name.

    With ``recursive`` the walk is top-down depth-first: a directory's files come before its sub-directories, which
    are visited in sorted order. Symlinked directories are not followed. :class:`ValueError` is raised immediately if
    ``sort_key`` is not callable.
    """
    if not callable(sort_key):
        raise ValueError("sort_key must be callable")

    def walk(directory: str) -> Iterator[str]:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda entry: sort_key(entry.name))
        subdirs = []
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                yield os.path.abspath(entry.path)
            elif recursive and entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.path)
        for subdir in subdirs:
            yield from walk(subdir)

    return walk(path)


def find_file(base_path: str, regex: str | re.Pattern) -> str | None:
    """Return the first file under ``base_path`` (recursive listing order) whose basename matches ``regex``.

    Matching is case-insensitive and anchored at the start of the name.
    """
    if isinstance(regex, re.Pattern):
        pattern = re.compile(regex.pattern, regex.flags | re.IGNORECASE)
    else:
        pattern = re.compile(regex, re.IGNORECASE)
    for path in list_regular_files(base_path, recursive=True):
        if pattern.match(os.path.basename(path)):
            return path
    return None


# ---------------------------------------------------------------------------------------------------------------------
# creation and removal
# ---------------------------------------------------------------------------------------------------------------------

def mkdir_p(path: str, mode: int = 0o755) -> None:
    """Create ``path`` and its parents; an existing directory is fine (an existing file is not)."""
    os.makedirs(path, mode=mode, exist_ok=True)


def rm_f(path: str) -> None:
    """Remove a file, ignoring a missing one."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def rm_r(path: str) -> None:
    """Remove a directory tree, or a single file (or symlink); a missing path raises."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def rm_rf(path: str) -> None:
    """Like :func:`rm_r`, ignoring a missing path."""
    try:
        rm_r(path)
    except FileNotFoundError:
        pass


def _is_s3_url(path: Any) -> bool:
    return isinstance(path, str) and urlparse(path).scheme == "s3"


def safe_copy_file(source: str, destination: str, overwrite: bool = False, move: bool = False) -> None:
    """Copy ``source`` to ``destination`` atomically.

    The data is written to a temporary file in the destination directory which is then renamed into place, so readers
    never see a partial file. ``source`` may be an ``s3://bucket/key`` URL, downloaded with
    :func:`aodncore.util.s3_util.download_object`. Local copies keep the source's permission bits; S3 downloads get
    ``0o644``.

    :raises OSError: if the source is missing, both paths are the same file, or the destination exists and
        ``overwrite`` is False; the temporary file is removed on any failure
    :param move: accepted for compatibility; unused (see :func:`safe_move_file`)
    """
    from_s3 = _is_s3_url(source)
    if not from_s3:
        if not os.path.exists(source):
            raise FileNotFoundError(errno.ENOENT, f"source file '{source}' does not exist")
        if os.path.abspath(source) == os.path.abspath(destination) or (
                os.path.exists(destination) and os.path.samefile(source, destination)):
            raise OSError(errno.EINVAL, "source file and destination file can't refer to the same file")
    if os.path.exists(destination) and not overwrite:
        raise FileExistsError(errno.EEXIST, f"destination file '{destination}' already exists")

    dest_dir = os.path.dirname(os.path.abspath(destination))
    fd, temp_path = tempfile.mkstemp(dir=dest_dir, prefix=f".{os.path.basename(destination)}.", suffix=".tmp")
    try:
        if from_s3:
            os.close(fd)
            from aodncore.util.s3_util import download_object, get_s3_bucket, get_s3_key

            download_object(get_s3_bucket(source), get_s3_key(source), temp_path)
            os.chmod(temp_path, 0o644)
        else:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, _CHUNK_SIZE)
            shutil.copymode(source, temp_path)
        os.replace(temp_path, destination)
    except BaseException:
        rm_f(temp_path)
        raise


def safe_move_file(source: str, destination: str, overwrite: bool = False) -> None:
    """Copy with :func:`safe_copy_file`, then delete the source (an S3 object via ``s3_util.delete_object``)."""
    safe_copy_file(source, destination, overwrite=overwrite)
    if _is_s3_url(source):
        from aodncore.util.s3_util import delete_object, get_s3_bucket, get_s3_key

        delete_object(get_s3_bucket(source), get_s3_key(source))
    else:
        os.remove(source)
