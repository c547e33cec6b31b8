"""File-system helpers: type sniffing, safe copy/move, directory listing and hardened archive extraction.

Design notes:

* The process locale is never changed. :func:`filesystem_sort_key` orders names by Unicode code point, which is the
  order the ``C`` locale gives (``A B a b``, ASCII before non-ASCII).
* Image/PDF detection reads the file's leading "magic" bytes directly instead of using libmagic (python-magic), so
  there is no native dependency; the answers agree with libmagic for the formats we care about.
* Archives are untrusted input: :func:`extract_zip` and :func:`extract_gzip` live in :mod:`aodncore.util.archives`
  (re-exported here), which validates members and enforces the decompression caps of :mod:`aodncore.limits` while
  streaming.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import urlparse

from aodncore.util.archives import extract_gzip, extract_zip

__all__ = [
    "dir_exists",
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

_CHUNK_SIZE = 1024 ** 2

_TemporaryDirectory = TemporaryDirectory


# Wordings that callers' tests match (API spec, fileops), so the text is fixed.
_SORT_KEY_NOT_CALLABLE = "sort_key must be callable"
_SAME_FILE = "source file and destination file can't refer to the same file"


def filesystem_sort_key(name: str) -> str:
    """Sort key giving code-point order (``'A' < 'B' < 'a' < 'b' < 'Ä'``) without touching the process locale."""
    return name


def _invalid_format(message: str) -> Exception:
    # imported lazily: aodncore.pipeline imports this module
    from aodncore.pipeline.exceptions import InvalidFileFormatError

    return InvalidFileFormatError(message)


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
        raise ValueError(_SORT_KEY_NOT_CALLABLE)

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


def dir_exists(path: Any) -> bool:
    """True for an existing directory (or a symlink to one); exactly ``os.path.isdir`` (never raises ``OSError``)."""
    return os.path.isdir(path)


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

    :raises OSError: if the source is missing (``FileNotFoundError``), both paths are the same file, or the
        destination exists and ``overwrite`` is False (``FileExistsError``); ``str()`` of each is the bare message
        (no ``[Errno …]`` prefix). The temporary file is removed on any failure
    :param move: accepted for compatibility; unused (see :func:`safe_move_file`)
    """
    from_s3 = _is_s3_url(source)
    if not from_s3:
        if not os.path.exists(source):
            raise FileNotFoundError(f"source file '{source}' does not exist")
        if os.path.abspath(source) == os.path.abspath(destination) or (
                os.path.exists(destination) and os.path.samefile(source, destination)):
            raise OSError(_SAME_FILE)
    if os.path.exists(destination) and not overwrite:
        raise FileExistsError(f"destination file '{destination}' already exists")

    if from_s3:
        temp_path = _unique_temp_sibling(destination)
        try:
            from aodncore.util.s3_util import download_object, get_s3_bucket, get_s3_key

            download_object(get_s3_bucket(source), get_s3_key(source), temp_path)
            os.chmod(temp_path, 0o644)
            os.replace(temp_path, destination)
        except BaseException:
            rm_f(temp_path)
            raise
        return
    try:
        temp_path, lock_fd = _locked_temp_sibling(destination)
    except OSError:  # a left-over sibling this process may not open (mode, a folder, a symlink): a name of its own
        temp_path, lock_fd = _unique_temp_sibling(destination), -1
    try:
        with open(temp_path, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, _CHUNK_SIZE)
        shutil.copymode(source, temp_path)
        os.replace(temp_path, destination)  # while locked: no other writer has this file meanwhile
    except BaseException:
        rm_f(temp_path)
        raise
    finally:
        if lock_fd != -1:
            os.close(lock_fd)


def _unique_temp_sibling(destination: str) -> str:
    """A new empty file of a name of its own beside ``destination`` (at most 40 characters of the name: a name at
    the file-name limit must still get a temporary sibling)."""
    fd, temp_path = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(destination)),
                                     prefix=f".{os.path.basename(destination)[:40]}.", suffix=".tmp")
    os.close(fd)
    return temp_path


def temp_sibling_name(destination: str) -> str:
    """The one temporary name :func:`safe_copy_file` writes a local copy to before renaming it to ``destination``:
    ``.<first 40 characters of the name>.<12 hex of its SHA-1>.tmp`` beside it. Every writer uses the same name,
    so a copy left half-written by a killed process is taken over, and renamed away, by the next copy to the same
    destination instead of staying there."""
    name = os.path.basename(destination)
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return os.path.join(os.path.dirname(os.path.abspath(destination)), f".{name[:40]}.{digest}.tmp")


def _locked_temp_sibling(destination: str) -> tuple[str, int]:
    """Create or take over the temporary sibling of ``destination`` (never through a symlink), exclusively locked
    and writable by its owner only; its path and the locking descriptor. Writers to one destination take turns; a
    writer that finds the path naming another file once it holds the lock (the previous writer renamed the file it
    locked into place) opens it again. :raises OSError: a left-over sibling this process may not open."""
    import fcntl

    temp_path = temp_sibling_name(destination)
    while True:
        fd = os.open(temp_path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(temp_path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.fchmod(fd, 0o600)  # a left-over copy may carry a read-only source's mode
                return temp_path, fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def safe_move_file(source: str, destination: str, overwrite: bool = False) -> None:
    """Copy with :func:`safe_copy_file`, then delete the source (an S3 object via ``s3_util.delete_object``)."""
    safe_copy_file(source, destination, overwrite=overwrite)
    if _is_s3_url(source):
        from aodncore.util.s3_util import delete_object, get_s3_bucket, get_s3_key

        delete_object(get_s3_bucket(source), get_s3_key(source))
    else:
        os.remove(source)
