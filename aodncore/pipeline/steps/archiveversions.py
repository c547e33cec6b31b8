"""The archive keeps every version: a different object already at an archive path is kept under a versioned name.

Re-landing a new version of a published file replaces the public copy (as it should) but must not replace the
archived original: the archive is where every version ever received stays. So before the archive step writes a
file to ``<archive>/<archive_path>``, an existing object there with *different* content is first copied to::

    <folder>/<stem>.v<UTC time it was replaced>-<first 12 hex digits of its SHA-256><extension>

e.g. ``ANMN/IMOS_x_FV01.nc`` is kept as ``ANMN/IMOS_x_FV01.v20251201T093000Z-3fa9c1e2b7d4.nc`` (it opens with the
usual tools; the versions of a file are the names starting with its stem and ``.v``, newest last in name order).
A name that would exceed the file-name limit (:data:`aodncore.limits.MAX_NAME_BYTES`, 255 bytes: a 255-byte landing
name publishes and archives fine, but its versions need 31 more bytes) keeps the suffix and the extension and
shortens the stem, deterministically: the stem is cut (at a character boundary) to what fits and followed by ``~``
and the first 8 hex digits of the SHA-256 of the whole original name, so versions of two long names that share a
start never look alike::

    <first bytes of the stem>~<8 hex of sha256(name)>.v<UTC time>-<12 hex of the content SHA-256><extension>

An extension longer than 16 bytes is treated as part of the stem. Archiving identical content again keeps nothing
extra. An S3 archive bucket with versioning enabled keeps versions
itself (``aws s3api list-object-versions``), so nothing is copied there. The ``archive_path`` values handlers see
are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import tempfile
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aodncore.limits import MAX_NAME_BYTES
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection, RemotePipelineFile
from aodncore.util.fileops import get_file_checksum

__all__ = ["preserve_previous_versions", "versioned_path"]

_bucket_versioning: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: An extension longer than this is no extension (a name like ``notes.<250 bytes>``): it is shortened with the stem.
_MAX_KEPT_EXTENSION_BYTES = 16


def _byte_length(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogateescape"))


def _cut(text: str, limit: int) -> str:
    """The longest start of ``text`` of at most ``limit`` bytes that ends on a character boundary."""
    kept, used = [], 0
    for char in text:
        size = _byte_length(char)
        if used + size > limit:
            break
        kept.append(char)
        used += size
    return "".join(kept)


def versioned_path(path: str, fingerprint: str, replaced_at: datetime | None = None) -> str:
    """The name an archived ``path`` is kept under once replaced (see the module docstring); its last part is at
    most :data:`~aodncore.limits.MAX_NAME_BYTES` bytes."""
    moment = (replaced_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder, name = posixpath.split(path)
    stem, extension = os.path.splitext(name)
    if not stem:  # a dotfile: the whole name is the stem
        stem, extension = name, ""
    suffix = f".v{moment}-{fingerprint[:12]}"
    versioned = f"{stem}{suffix}{extension}"
    if _byte_length(versioned) > MAX_NAME_BYTES:
        if _byte_length(extension) > _MAX_KEPT_EXTENSION_BYTES:
            stem, extension = name, ""
        marker = "~" + hashlib.sha256(name.encode("utf-8", errors="surrogateescape")).hexdigest()[:8]
        budget = MAX_NAME_BYTES - _byte_length(f"{marker}{suffix}{extension}")
        versioned = f"{_cut(stem, budget)}{marker}{suffix}{extension}"
    return posixpath.join(folder, versioned)


def _keeps_versions_itself(broker: Any) -> bool:
    """True for an S3 broker whose bucket has versioning enabled (asked once per broker)."""
    client, bucket = getattr(broker, "s3_client", None), getattr(broker, "bucket", None)
    if client is None or bucket is None:
        return False
    try:
        return _bucket_versioning[broker]
    except KeyError:
        pass
    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    except Exception:  # noqa: BLE001 - not allowed to ask: keep our own copies
        status = None
    _bucket_versioning[broker] = status == "Enabled"
    return _bucket_versioning[broker]


def preserve_previous_versions(broker: Any, files: PipelineFileCollection, dest_path_attr: str = "archive_path",
                               logger: Any = None, now: Callable[[], datetime] | None = None) -> list[str]:
    """Keep the current object at each file's ``dest_path_attr`` under a versioned name if its content differs.

    Returns the versioned paths written. Storage errors propagate (as ``StorageBrokerError``): the new version is
    never written over an old one that could not be kept.
    """
    if not files or _keeps_versions_itself(broker):
        return []
    kept = []
    with contextlib.ExitStack() as cleanup:
        scratch = None  # made when the first file replaces something (most runs replace nothing)
        for pipeline_file in files:
            path = getattr(pipeline_file, dest_path_attr)
            if not path or not broker._get_is_overwrite(pipeline_file, broker._get_absolute_dest_path(
                    pipeline_file, dest_path_attr)):
                continue
            if scratch is None:
                scratch = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="aodncore-archive-version-"))
            previous = RemotePipelineFile(path)
            broker.download(previous, scratch)
            if not previous.local_path or not os.path.isfile(previous.local_path):
                continue  # a broker that stores nothing (testlib's NullStorageBroker)
            old_fingerprint = get_file_checksum(previous.local_path)
            if old_fingerprint == get_file_checksum(pipeline_file.src_path):
                os.remove(previous.local_path)
                continue  # the same content again: nothing to keep
            version = versioned_path(path, old_fingerprint, now() if now else None)
            copy = PipelineFile(previous.local_path, dest_path=version)
            broker.upload(PipelineFileCollection([copy], validate_unique=False))
            os.remove(previous.local_path)
            kept.append(version)
            if logger is not None:
                logger.info("the archive already held a different '%s': kept it as '%s'", path, version)
    return kept
