"""Prefect-free ingest infrastructure: landing areas, per-file outcomes, the ingest ledger, S3 event parsing."""

from .events import S3ObjectEvent, parse_s3_event
from .ledger import IngestLedger, LedgerEntry
from .outcome import FAILED, PUBLISHED, QUARANTINED, SKIPPED, STATUSES, FileOutcome
from .sources import (
    SIDECAR_SUFFIXES,
    LandingObject,
    LandingObjectChangedError,
    fetch,
    file_fingerprint,
    is_ignored_name,
    list_landing,
    remove_landing,
)

__all__ = [
    "FAILED",
    "PUBLISHED",
    "QUARANTINED",
    "SIDECAR_SUFFIXES",
    "SKIPPED",
    "STATUSES",
    "FileOutcome",
    "IngestLedger",
    "LandingObject",
    "LandingObjectChangedError",
    "LedgerEntry",
    "S3ObjectEvent",
    "fetch",
    "file_fingerprint",
    "is_ignored_name",
    "list_landing",
    "parse_s3_event",
    "remove_landing",
]
