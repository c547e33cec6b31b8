"""Landing areas: list the objects waiting to be ingested, fetch one, remove it once it is dealt with.

A landing area is a local file, a local folder (walked recursively) or S3: ``s3://bucket/key`` names exactly that
object when it exists, and otherwise the *folder* ``key/`` — never a neighbour (``s3://b/incoming`` does not
reach ``incoming2/…``). Each object found is a :class:`LandingObject` with a *fingerprint* that changes when the
content changes: the S3 ETag (without quotes) or ``sha256:<hex>`` of a local file. The ingest record keys on
``(uri, fingerprint)``.

:func:`scan_landing` reports everything it meets: objects (local ones not yet hashed, with their change time, so
that a planner can hold back files still being written), :class:`IgnoredEntry` for what is never ingested
(dotfiles and dot-folders, the library's sidecars, symbolic links, special files, S3 keys naming no file) and
:class:`UnreadableEntry` for folders that cannot be listed. :func:`list_landing` is the plain view: hashed objects
only.

Safety rules:

* :func:`fetch` copies into a temporary name and renames, so a half-written copy is never seen; for S3 it asks
  for the listed ETag (``If-Match``) and for local files it re-hashes while copying, raising
  :class:`LandingObjectChangedError` if the object changed since it was listed.
* :func:`remove_landing` deletes only the content that was listed: if the object was replaced meanwhile
  (different ETag/checksum) it is left alone and ``False`` is returned, so a newer upload is never lost.

S3 access goes through :mod:`aodncore.util.s3_util` (shared client, ``AWS_ENDPOINT_URL`` honoured, transient errors
retried) unless an explicit boto3 ``s3_client`` is passed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import botocore.exceptions

from aodncore.common.exceptions import AodnBaseError
from aodncore.ingest.names import shown

__all__ = [
    "SIDECAR_SUFFIXES",
    "IgnoredEntry",
    "LandingObject",
    "LandingObjectChangedError",
    "ListingEntry",
    "UnreadableEntry",
    "fetch",
    "file_fingerprint",
    "ignore_reason",
    "is_ignored_name",
    "list_landing",
    "remove_landing",
    "scan_landing",
    "with_fingerprint",
]

logger = logging.getLogger(__name__)

#: File names ending with one of these are the library's own sidecar files and never landing objects.
SIDECAR_SUFFIXES: tuple[str, ...] = (".aodncore.json", ".reason.json", ".aodncore-partial")

_CHUNK = 1024 * 1024


class LandingObjectChangedError(AodnBaseError):
    """The landing object was replaced, changed or removed after it was listed; list the landing area again.

    ``vanished`` is True when it is gone altogether.
    """

    def __init__(self, message: str, *, vanished: bool = False) -> None:
        super().__init__(message)
        self.vanished = vanished


@dataclass(frozen=True, slots=True)  # a run holds one per file to do until its batch ends: no per-instance dict
class LandingObject:
    """One object in a landing area.

    ``uri`` is ``s3://bucket/key`` or a ``file://`` URI of the absolute path; ``fingerprint`` is the S3 ETag
    (without quotes) or ``sha256:<hex>``. S3 objects have ``bucket``/``key``, local files ``path``. ``area`` is the
    landing area the object was listed from (the source given to :func:`scan_landing`, an S3 folder with its
    trailing ``/``; None when unknown): the roots a manifest's entries may come from. ``changed_at`` (local files)
    is the later of the modification and change times, for the settle rule.
    """

    uri: str
    name: str
    size: int
    fingerprint: str
    bucket: str | None = None
    key: str | None = None
    path: str | None = None
    version_id: str | None = None
    last_modified: datetime | None = None
    area: str | None = None
    changed_at: float | None = None

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], area: str | None = None, *,
                  fingerprint: bool = True) -> LandingObject:
        """Describe one local file; its checksum is computed now unless ``fingerprint`` is False.

        ``changed_at`` is the later of its modification and change (inode) times: a writer that resets the
        modification time (``cp -p``, ``rsync -t``) still changes the change time.
        """
        resolved = Path(path).absolute()
        return cls._from_stat(resolved, resolved.stat(), area=area, fingerprint=fingerprint)

    @classmethod
    def _from_stat(cls, path: Path, info: os.stat_result, *, area: str | None = None,
                   fingerprint: bool = True) -> LandingObject:
        return cls(
            uri=path.as_uri(),
            name=path.name,
            size=info.st_size,
            fingerprint=file_fingerprint(path) if fingerprint else "",
            path=str(path),
            last_modified=datetime.fromtimestamp(info.st_mtime, tz=UTC),
            area=area,
            changed_at=max(info.st_mtime, info.st_ctime),
        )

    @classmethod
    def from_s3_entry(cls, bucket: str, entry: dict[str, Any], area: str | None = None) -> LandingObject:
        """Describe an S3 object from a ``list_objects_v2`` / ``head_object`` entry (``Key`` must be present)."""
        key = entry["Key"]
        return cls(
            uri=f"s3://{bucket}/{key}",
            name=key.rsplit("/", 1)[-1],
            size=int(entry.get("Size", entry.get("ContentLength", 0)) or 0),
            fingerprint=str(entry.get("ETag", "")).strip('"'),
            bucket=bucket,
            key=key,
            version_id=entry.get("VersionId"),
            last_modified=entry.get("LastModified"),
            area=area,
        )


@dataclass(frozen=True)
class IgnoredEntry:
    """Something in a landing area that is never ingested, and why (``reason``)."""

    uri: str
    name: str
    reason: str


@dataclass(frozen=True)
class UnreadableEntry:
    """Part of a landing area that could not be looked at (e.g. a folder without read permission)."""

    uri: str
    name: str
    reason: str


ListingEntry = LandingObject | IgnoredEntry | UnreadableEntry
"""What :func:`scan_landing` yields."""


def with_fingerprint(obj: LandingObject) -> LandingObject:
    """``obj`` with its fingerprint (a local file is hashed now; raises ``OSError`` if it cannot be read)."""
    if obj.fingerprint or obj.is_s3:
        return obj
    assert obj.path is not None
    return replace(obj, fingerprint=file_fingerprint(obj.path))


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a local file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def ignore_reason(name: str) -> str | None:
    """Why a landing listing skips a file called ``name`` (dotfiles, the library's own sidecars), or None."""
    if name in (".", ".."):
        return f"'{name}' names no file"
    if name.startswith("."):
        return "hidden file (name starts with '.')"
    for suffix in SIDECAR_SUFFIXES:
        if name.endswith(suffix):
            return f"an aodncore sidecar file ('*{suffix}')"
    return None


def is_ignored_name(name: str) -> bool:
    """True for names a landing listing skips: dotfiles and the library's own sidecar files."""
    return ignore_reason(name) is not None


def _split_s3(source: str) -> tuple[str, str]:
    # not urlparse: S3 keys are raw text, and '#', '?' or ';' in a key are part of it, not URL syntax
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"S3 landing source {source!r} has no bucket name (expected s3://bucket/prefix)")
    return bucket, prefix


def _local_path(source: str) -> Path:
    if source.startswith("file://"):
        parsed = urlparse(source)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file URI {source!r} names a remote host")
        return Path(unquote(parsed.path))
    return Path(source)


def _s3_client(s3_client: Any = None) -> Any:
    if s3_client is not None:
        return s3_client
    from aodncore.util import s3_util

    return s3_util.get_s3_client()


def _iter_s3_entries(bucket: str, prefix: str, s3_client: Any = None) -> Iterator[dict[str, Any]]:
    if s3_client is None:
        from aodncore.util import s3_util

        yield from s3_util.list_objects(bucket, prefix)
        return
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _head_s3(bucket: str, key: str, s3_client: Any) -> dict[str, Any] | None:
    """The object's HEAD response (with ``Key``), or None when there is no object with exactly that key."""
    try:
        head = _s3_client(s3_client).head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return {**head, "Key": key}


def _s3_entry_ignore_reason(key: str, prefix: str, size: int) -> str | None:
    """Why an S3 key below ``prefix`` is not ingested; ``""`` for folder markers (skipped without a word)."""
    if key.endswith("/"):
        return "" if size == 0 else f"key ends with '/' (a folder marker holding {size} bytes), names no file"
    parts = key[len(prefix):].split("/")
    if any(part in (".", "..") for part in parts):
        return "key has a '.' or '..' path segment, names no file"
    if any(part.startswith(".") for part in parts[:-1]):
        return "in a hidden folder (a path segment starts with '.')"
    return ignore_reason(parts[-1])


def _scan_s3(source: str, s3_client: Any) -> Iterator[ListingEntry]:
    bucket, prefix = _split_s3(source)
    if prefix and not prefix.endswith("/"):
        head = _head_s3(bucket, prefix, s3_client)
        if head is not None:  # the source is exactly this object
            yield LandingObject.from_s3_entry(bucket, head, area=source)
            return
        prefix += "/"  # otherwise it names a folder, never a neighbouring prefix
    area = f"s3://{bucket}/{prefix}"
    for entry in _iter_s3_entries(bucket, prefix, s3_client):
        key = entry["Key"]
        reason = _s3_entry_ignore_reason(key, prefix, int(entry.get("Size", 0) or 0))
        if reason is None:
            yield LandingObject.from_s3_entry(bucket, entry, area=area)
        elif reason:
            name = key.rsplit("/", 1)[-1] or key.rstrip("/").rsplit("/", 1)[-1] + "/"
            yield IgnoredEntry(uri=f"s3://{bucket}/{key}", name=name, reason=reason)


def scan_landing(source: str, *, s3_client: Any = None) -> Iterator[ListingEntry]:
    """Yield everything found in a landing area: objects, ignored entries, unreadable parts (see module doc).

    Local objects come without a fingerprint (see :func:`with_fingerprint`) but with ``changed_at``. A local
    folder is walked depth-first in code-point order of the relative paths, one folder listing in memory at a
    time; S3 keys come in S3's own UTF-8 order, page by page.
    """
    if source.startswith("s3://"):
        yield from _scan_s3(source, s3_client)
        return
    root = _local_path(source)
    if root.is_file():
        yield LandingObject.from_path(root, area=str(root.absolute()), fingerprint=False)
        return
    if not root.is_dir():
        raise FileNotFoundError(f"landing source {source!r} is neither a file, a folder nor an s3:// URI")
    yield from _walk(root.absolute())


def _special_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return "not a regular file"


def _walk_entry(entry: os.DirEntry[str], area: str) -> tuple[str, ListingEntry | None, bool]:
    """(sort key, what to report, is a folder to descend into)."""
    path = Path(entry.path)
    try:
        if entry.is_symlink():
            return entry.name, IgnoredEntry(path.as_uri(), entry.name, "symbolic link (not followed)"), False
        if entry.is_dir(follow_symlinks=False):
            if entry.name.startswith("."):
                reason = "hidden folder (name starts with '.'), not searched"
                return entry.name + "/", IgnoredEntry(path.as_uri(), entry.name + "/", reason), False
            return entry.name + "/", None, True
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:  # removed while we were listing
        return entry.name, None, False
    except OSError as error:
        return entry.name, UnreadableEntry(path.as_uri(), entry.name, f"cannot look at it: {error.strerror}"), False
    if not stat.S_ISREG(info.st_mode):
        return entry.name, IgnoredEntry(path.as_uri(), entry.name, _special_kind(info.st_mode)), False
    reason = ignore_reason(entry.name)
    if reason is not None:
        return entry.name, IgnoredEntry(path.as_uri(), entry.name, reason), False
    return entry.name, LandingObject._from_stat(path, info, area=area, fingerprint=False), False


def _listing(folder: Path, area: str) -> list[tuple[str, ListingEntry | None, bool]]:
    """The folder's entries sorted so that the walk yields relative paths in code-point order: a sub-folder
    sorts as ``name/`` ('a.nc' < 'a/' < 'a0')."""
    with os.scandir(folder) as listing:
        return sorted((_walk_entry(entry, area) for entry in listing), key=lambda item: item[0])


def _walk(root: Path) -> Iterator[ListingEntry]:
    stack: list[tuple[Path, Iterator[tuple[str, ListingEntry | None, bool]]]] = []
    pending: Path | None = root
    while pending is not None or stack:
        if pending is not None:
            try:
                stack.append((pending, iter(_listing(pending, str(root)))))
            except FileNotFoundError:
                pass
            except OSError as error:
                yield UnreadableEntry(pending.as_uri(), pending.name + "/",
                                      f"cannot list the folder: {error.strerror}")
            pending = None
            continue
        folder, entries = stack[-1]
        item = next(entries, None)
        if item is None:
            stack.pop()
            continue
        key, reported, descend = item
        if reported is not None:
            yield reported
        if descend:
            pending = folder / key[:-1]


def list_landing(source: str, *, s3_client: Any = None) -> Iterator[LandingObject]:
    """Yield the objects waiting in a landing area, with their fingerprints (see :func:`scan_landing`).

    Ignored and unreadable entries, and local files that vanish or cannot be read while hashed, are left out.
    """
    for entry in scan_landing(source, s3_client=s3_client):
        if not isinstance(entry, LandingObject):
            continue
        try:
            yield with_fingerprint(entry)
        except OSError:
            continue


def fetch(obj: LandingObject, dest_dir: str | os.PathLike[str], *, s3_client: Any = None,
          name: str | None = None) -> Path:
    """Copy (local) or download (S3) the landing object into ``dest_dir``; return the new file's path.

    The copy appears atomically under ``name`` (default: the object's name). Raises
    :class:`LandingObjectChangedError` when the object no longer has the listed fingerprint (replaced, grown or
    deleted meanwhile: size and modification time are checked again before and after a local copy).
    """
    folder = Path(dest_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or obj.name)
    # the temporary name never embeds the landing name, so a name at the file-name limit still fits
    fd, partial = tempfile.mkstemp(dir=folder, prefix=".", suffix=".aodncore-partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            if obj.is_s3:
                _download_s3(obj, handle, s3_client)
            else:
                _copy_local(obj, handle, partial)
        if not obj.is_s3 and obj.path:
            shutil.copystat(obj.path, partial)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return target


def _download_s3(obj: LandingObject, handle: Any, s3_client: Any) -> None:
    client = _s3_client(s3_client)
    kwargs: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
    if obj.fingerprint:
        kwargs["IfMatch"] = f'"{obj.fingerprint}"'
    if obj.version_id:
        kwargs["VersionId"] = obj.version_id
    try:
        response = client.get_object(**kwargs)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("PreconditionFailed", "412", "NoSuchKey", "404", "NoSuchVersion"):
            raise LandingObjectChangedError(
                f"{shown(obj.uri)}: no longer the listed object (ETag {obj.fingerprint}): {code}",
                vanished=code in ("NoSuchKey", "404")) from exc
        raise
    body = response["Body"]
    try:
        for chunk in body.iter_chunks(_CHUNK):
            handle.write(chunk)
    finally:
        body.close()


def _stat_unchanged(obj: LandingObject) -> bool:
    """True when the local file still has the size and modification time it was listed with.

    A changed file almost always changes one of them; only then is the (costlier) checksum compared.
    """
    assert obj.path is not None
    try:
        info = os.stat(obj.path)
    except FileNotFoundError:
        return False
    return info.st_size == obj.size and datetime.fromtimestamp(info.st_mtime, tz=UTC) == obj.last_modified


def _copy_local(obj: LandingObject, handle: Any, copy_path: str) -> None:
    assert obj.path is not None
    unchanged_before = _stat_unchanged(obj)
    digest = hashlib.sha256()
    try:
        with open(obj.path, "rb") as source:
            while chunk := source.read(_CHUNK):
                if not unchanged_before:
                    digest.update(chunk)
                handle.write(chunk)
    except FileNotFoundError as exc:
        raise LandingObjectChangedError(f"{shown(obj.uri)}: the landing file disappeared", vanished=True) from exc
    if unchanged_before and _stat_unchanged(obj):
        return
    if unchanged_before:  # changed while we copied: compare the content we have
        handle.flush()
        digest = hashlib.sha256()
        with open(copy_path, "rb") as copied:
            while chunk := copied.read(_CHUNK):
                digest.update(chunk)
    if f"sha256:{digest.hexdigest()}" != obj.fingerprint:
        raise LandingObjectChangedError(f"{shown(obj.uri)}: content changed since it was listed (still being "
                                        "written?)")


def remove_landing(obj: LandingObject, *, s3_client: Any = None) -> bool:
    """Delete the landing object if it still has the listed fingerprint; return True when it was removed.

    A missing object, or one whose content changed since it was listed (a newer upload), is left alone and
    ``False`` is returned.
    """
    if obj.is_s3:
        client = _s3_client(s3_client)
        try:
            head = client.head_object(Bucket=obj.bucket, Key=obj.key)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        current = str(head.get("ETag", "")).strip('"')
        if current != obj.fingerprint:
            logger.warning("%s was replaced since it was listed (ETag %s -> %s); not removing it",
                           shown(obj.uri), obj.fingerprint, current)
            return False
        client.delete_object(Bucket=obj.bucket, Key=obj.key)
        return True

    assert obj.path is not None
    path = Path(obj.path)
    if _stat_unchanged(obj):
        path.unlink(missing_ok=True)
        return True
    try:
        current = file_fingerprint(path)
    except FileNotFoundError:
        return False
    if current != obj.fingerprint:
        logger.warning("%s changed since it was listed; not removing it", shown(obj.uri))
        return False
    path.unlink(missing_ok=True)
    return True
