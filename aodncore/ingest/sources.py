"""Landing areas: list the objects waiting to be ingested, fetch one, remove it once it is dealt with.

A landing area is a local file, a local folder (walked recursively) or an S3 prefix ``s3://bucket/prefix``. Each
object found is a :class:`LandingObject` with a *fingerprint* that changes when the content changes: the S3 ETag
(without quotes) or ``sha256:<hex>`` of a local file. The ingest ledger keys on ``(uri, fingerprint)``.

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
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import botocore.exceptions

from aodncore.common.exceptions import AodnBaseError

__all__ = [
    "SIDECAR_SUFFIXES",
    "LandingObject",
    "LandingObjectChangedError",
    "fetch",
    "file_fingerprint",
    "is_ignored_name",
    "list_landing",
    "remove_landing",
]

logger = logging.getLogger(__name__)

#: File names ending with one of these are the library's own sidecar files and never landing objects.
SIDECAR_SUFFIXES: tuple[str, ...] = (".aodncore.json", ".reason.json", ".aodncore-partial")

_CHUNK = 1024 * 1024


class LandingObjectChangedError(AodnBaseError):
    """The landing object was replaced or removed after it was listed; list the landing area again."""


@dataclass(frozen=True)
class LandingObject:
    """One object in a landing area.

    ``uri`` is ``s3://bucket/key`` or a ``file://`` URI of the absolute path; ``fingerprint`` is the S3 ETag
    (without quotes) or ``sha256:<hex>``. S3 objects have ``bucket``/``key``, local files ``path``. ``area`` is the
    landing area the object was listed from (the source given to :func:`list_landing`; None when unknown): the
    roots a manifest's entries may come from.
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

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], area: str | None = None) -> LandingObject:
        """Describe one local file (its checksum is computed now)."""
        resolved = Path(path).absolute()
        stat = resolved.stat()
        return cls(
            uri=resolved.as_uri(),
            name=resolved.name,
            size=stat.st_size,
            fingerprint=file_fingerprint(resolved),
            path=str(resolved),
            last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            area=area,
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


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a local file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def is_ignored_name(name: str) -> bool:
    """True for names a landing listing skips: dotfiles and the library's own sidecar files."""
    return name.startswith(".") or name.endswith(SIDECAR_SUFFIXES)


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


def list_landing(source: str, *, s3_client: Any = None) -> Iterator[LandingObject]:
    """Yield the objects waiting in a landing area.

    ``source`` is a local file, a local folder (walked recursively; only regular, non-symlink files; dotfiles,
    dot-folders and sidecars skipped; sorted by relative path in code-point order), a ``file://`` URI, or
    ``s3://bucket/prefix`` (every key starting with the prefix, all pages; "folder" marker keys, dotfiles and
    sidecars skipped; in S3's own UTF-8 key order).
    """
    if source.startswith("s3://"):
        bucket, prefix = _split_s3(source)
        for entry in _iter_s3_entries(bucket, prefix, s3_client):
            key = entry["Key"]
            name = key.rsplit("/", 1)[-1]
            if key.endswith("/") or is_ignored_name(name):
                continue
            yield LandingObject.from_s3_entry(bucket, entry, area=source)
        return

    root = _local_path(source)
    if root.is_file():
        yield LandingObject.from_path(root, area=str(root.absolute()))
        return
    if not root.is_dir():
        raise FileNotFoundError(f"landing source {source!r} is neither a file, a folder nor an s3:// URI")

    for _, path in sorted(_walk_regular_files(str(root))):
        try:
            yield LandingObject.from_path(path, area=str(root.absolute()))
        except FileNotFoundError:  # removed while we were listing
            continue


def _walk_regular_files(root: str) -> Iterator[tuple[str, str]]:
    """``(relative posix path, path)`` of the regular, non-symlink files below ``root``, skipping dot-folders and
    ignored names; symlinked folders are not followed and unreadable folders are skipped (like ``os.walk``).

    The entry types come from the directory listing itself, so no file is stat-ed here (``from_path`` does it once).
    """
    pending = [(root, "")]
    while pending:
        folder, relative = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        pending.append((entry.path, f"{relative}{entry.name}/"))
                elif entry.is_file(follow_symlinks=False) and not is_ignored_name(entry.name):
                    yield f"{relative}{entry.name}", entry.path
            except OSError:  # removed while we were listing
                continue


def fetch(obj: LandingObject, dest_dir: str | os.PathLike[str], *, s3_client: Any = None) -> Path:
    """Copy (local) or download (S3) the landing object into ``dest_dir``; return the new file's path.

    The copy appears atomically under the object's name. Raises :class:`LandingObjectChangedError` when the
    object no longer has the listed fingerprint (replaced or deleted meanwhile).
    """
    folder = Path(dest_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / obj.name
    fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{obj.name}.", suffix=".aodncore-partial")
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
                f"{obj.uri}: no longer the listed object (ETag {obj.fingerprint}): {code}") from exc
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
        stat = os.stat(obj.path)
    except FileNotFoundError:
        return False
    return stat.st_size == obj.size and datetime.fromtimestamp(stat.st_mtime, tz=UTC) == obj.last_modified


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
        raise LandingObjectChangedError(f"{obj.uri}: the landing file disappeared") from exc
    if unchanged_before and _stat_unchanged(obj):
        return
    if unchanged_before:  # changed while we copied: compare the content we have
        handle.flush()
        digest = hashlib.sha256()
        with open(copy_path, "rb") as copied:
            while chunk := copied.read(_CHUNK):
                digest.update(chunk)
    if f"sha256:{digest.hexdigest()}" != obj.fingerprint:
        raise LandingObjectChangedError(f"{obj.uri}: content changed since it was listed")


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
                           obj.uri, obj.fingerprint, current)
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
        logger.warning("%s changed since it was listed; not removing it", obj.uri)
        return False
    path.unlink(missing_ok=True)
    return True
