"""The error store: where refused files are kept, each beside a JSON sidecar saying why.

A quarantined landing object is stored as ``<error_uri>/<pipeline>/<name>.<ingest id>`` together with
``<name>.<ingest id>.reason.json``. The sidecar names the source, its fingerprint, the error class and message,
whether it was a data ("user") or system error, and the check log of every file that failed a check. The store is
any storage URL (``file://``, ``s3://``, ``sftp://``), written through the same storage brokers as publishing.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aodncore
from aodncore.pipeline.exceptions import PipelineProcessingError
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection
from aodncore.pipeline.storage import get_storage_broker

__all__ = ["REASON_SUFFIX", "QuarantineRecord", "quarantine_file"]

REASON_SUFFIX = ".reason.json"


@dataclass(frozen=True)
class QuarantineRecord:
    """Where a refused file was stored (``file_uri``) and its reason sidecar (``reason_uri``)."""

    file_uri: str
    reason_uri: str


def _join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def _failed_file_logs(collection: PipelineFileCollection | None) -> list[dict[str, Any]]:
    if not collection:
        return []
    rows = []
    for pipeline_file in collection:
        result = pipeline_file.check_result
        if result is not None and not result.compliant:
            rows.append({"name": pipeline_file.name, "check_log": list(result.log)})
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
) -> QuarantineRecord:
    """Store ``local_path`` (the original landing content) and its reason sidecar in the error store."""
    name = os.path.basename(source.rstrip("/")) or os.path.basename(local_path)
    stored_name = f"{name}.{ingest_id}"
    relative_dir = pipeline_name
    reason = {
        "source": source,
        "name": name,
        "fingerprint": fingerprint,
        "error_type": "user" if isinstance(error, PipelineProcessingError) else "system",
        "error_class": type(error).__name__,
        "reason": str(error),
        "details": error_details,
        "failed_checks": _failed_file_logs(collection),
        "handler": handler_name,
        "ingest_id": ingest_id,
        "quarantined_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "aodncore_version": aodncore.__version__,
    }
    broker = get_storage_broker(error_uri)
    with tempfile.TemporaryDirectory(prefix="aodncore-quarantine-") as scratch:
        reason_path = os.path.join(scratch, stored_name + REASON_SUFFIX)
        with open(reason_path, "w") as handle:
            json.dump(reason, handle, indent=2, default=str)
        files = PipelineFileCollection(
            [
                PipelineFile(local_path, name=stored_name, dest_path=f"{relative_dir}/{stored_name}"),
                PipelineFile(
                    reason_path,
                    name=stored_name + REASON_SUFFIX,
                    dest_path=f"{relative_dir}/{stored_name}{REASON_SUFFIX}",
                ),
            ],
            validate_unique=False,
        )
        broker.upload(files)
    return QuarantineRecord(
        file_uri=_join_uri(error_uri, relative_dir, stored_name),
        reason_uri=_join_uri(error_uri, relative_dir, stored_name + REASON_SUFFIX),
    )
