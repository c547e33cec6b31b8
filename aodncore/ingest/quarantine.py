"""The error store: where refused files are kept, each beside a JSON sidecar saying why.

Each refused landing object gets a folder of its own, named by the attempt's time-sortable ingest id::

    <error_uri>/<pipeline>/<ingest id>/<name>                     the original bytes, under the original name
    <error_uri>/<pipeline>/<ingest id>/<ingest id>.reason.json    why

so the copy keeps its name and extension and opens with the usual tools, and a name at the file-name limit still
fits (a name that cannot be stored as it is — not printable UTF-8, or longer than
:data:`aodncore.limits.MAX_NAME_BYTES` bytes — is stored under :func:`aodncore.ingest.names.storable_name`). The
sidecar names the landing source (exact URI) and the name as shown, the stored copy, the fingerprint, the error
class and message, whether it was a data ("user") or system error, and the check log of every file that failed a
check. The store is any storage URL (``file://``, ``s3://``, ``sftp://``), written through the same storage brokers
as publishing.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aodncore
from aodncore.ingest.names import shown, storable_name
from aodncore.pipeline.exceptions import PipelineProcessingError
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection
from aodncore.pipeline.storage import get_storage_broker

__all__ = ["REASON_SUFFIX", "QuarantineRecord", "quarantine_file", "reason_path_for"]

REASON_SUFFIX = ".reason.json"


@dataclass(frozen=True)
class QuarantineRecord:
    """Where a refused file was stored (``file_uri``) and its reason sidecar (``reason_uri``)."""

    file_uri: str
    reason_uri: str


def reason_path_for(stored: str) -> str:
    """The reason sidecar's path (or URI, or key) beside a stored copy: ``<folder>/<folder name>.reason.json``."""
    folder = stored.rstrip("/").rsplit("/", 1)[0]
    return f"{folder}/{folder.rsplit('/', 1)[-1]}{REASON_SUFFIX}"


def _join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def _failed_file_logs(collection: PipelineFileCollection | None) -> list[dict[str, Any]]:
    if not collection:
        return []
    rows = []
    for pipeline_file in collection:
        result = pipeline_file.check_result
        if result is not None and not result.compliant:
            rows.append({"name": shown(pipeline_file.name), "check_log": [str(line) for line in result.log]})
    return rows


def quarantine_file(
    local_path: str,
    *,
    error_uri: str,
    pipeline_name: str,
    ingest_id: str,
    source: str,
    fingerprint: str,
    error: BaseException,
    error_details: str | None = None,
    collection: PipelineFileCollection | None = None,
    handler_name: str | None = None,
    reason: str | None = None,
    name: str | None = None,
    work_dir: str | None = None,
    private_dir: str | None = None,
) -> QuarantineRecord:
    """Store ``local_path`` (the original landing content) and its reason sidecar in the error store.

    ``reason`` is the readable message (default ``str(error)``), ``name`` the landing name (default: the last part
    of ``source``), ``work_dir`` where the sidecar is written (in a new folder) before it is stored;
    ``private_dir``: a folder of the caller's own for this object alone, emptied by the caller, where the sidecar
    is written directly instead (and removed once stored).
    """
    name = name or os.path.basename(source.rstrip("/")) or os.path.basename(local_path)
    stored_name = storable_name(name)
    folder = f"{pipeline_name}/{ingest_id}"
    reason_name = f"{ingest_id}{REASON_SUFFIX}"
    sidecar = {
        "source": source,
        "name": shown(name),
        "stored_as": _join_uri(error_uri, folder, stored_name),
        "fingerprint": fingerprint,
        "error_type": "user" if isinstance(error, PipelineProcessingError) else "system",
        "error_class": type(error).__name__,
        "reason": reason if reason is not None else shown(error),
        "details": error_details,
        "failed_checks": _failed_file_logs(collection),
        "handler": handler_name,
        "ingest_id": ingest_id,
        "quarantined_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "aodncore_version": aodncore.__version__,
    }
    broker = get_storage_broker(error_uri)
    with _sidecar_folder(private_dir, work_dir) as scratch:
        reason_path = os.path.join(scratch, reason_name)
        with open(reason_path, "w") as handle:
            json.dump(sidecar, handle, indent=2, default=str)
        files = PipelineFileCollection(
            [
                PipelineFile(local_path, name=stored_name, dest_path=f"{folder}/{stored_name}"),
                PipelineFile(reason_path, name=reason_name, dest_path=f"{folder}/{reason_name}"),
            ],
            validate_unique=False,
        )
        try:
            broker.upload(files)
        finally:
            if private_dir is not None:
                with contextlib.suppress(OSError):
                    os.remove(reason_path)
    return QuarantineRecord(
        file_uri=_join_uri(error_uri, folder, stored_name),
        reason_uri=_join_uri(error_uri, folder, reason_name),
    )


@contextlib.contextmanager
def _sidecar_folder(private_dir: str | None, work_dir: str | None) -> Iterator[str]:
    """``private_dir`` as it is, else a new folder in ``work_dir`` for the block."""
    if private_dir is not None:
        yield private_dir
        return
    with tempfile.TemporaryDirectory(prefix="q-", dir=work_dir) as scratch:
        yield scratch
