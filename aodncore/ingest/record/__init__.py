"""The ingest record: which landing content was ingested (idempotent re-runs) and who is ingesting what (claims).

One interface (:class:`IngestRecord`), two backends:

* :class:`SqliteIngestRecord` — the embedded default, a SQLite file (``<base-dir>/ingest-record.sqlite``);
* :class:`PostgresIngestRecord` — shared by workers on several machines, selected by a ``postgresql://`` URL in
  ``AODNCORE_INGEST_RECORD_URL`` or ``global.ingest_record_url`` of the pipeline config (the variable wins).

:class:`RecordWriter` is how a run uses it: claims renewed in the background, outcomes written in batches.
"""

from __future__ import annotations

import os

from .base import CHUNK, DEFAULT_LEASE_SECONDS, Claim, ClaimResult, IngestRecord, LedgerEntry, new_owner_id
from .sqlite import SqliteIngestRecord
from .writer import RecordWriter

__all__ = [
    "CHUNK",
    "DEFAULT_LEASE_SECONDS",
    "INGEST_RECORD_URL_ENV",
    "Claim",
    "ClaimResult",
    "IngestRecord",
    "LedgerEntry",
    "PostgresIngestRecord",
    "RecordWriter",
    "SqliteIngestRecord",
    "new_owner_id",
    "open_ingest_record",
]

INGEST_RECORD_URL_ENV = "AODNCORE_INGEST_RECORD_URL"
"""Environment variable naming the ingest record (wins over ``global.ingest_record_url``)."""

_POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg2://")


def __getattr__(name: str) -> object:
    if name == "PostgresIngestRecord":  # psycopg2 is optional: import the backend only when asked for
        from .postgres import PostgresIngestRecord

        return PostgresIngestRecord
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_ingest_record(location: str | os.PathLike[str]) -> IngestRecord:
    """The ingest record at ``location``: a ``postgresql://`` URL, a ``sqlite:///path`` URL or a file path."""
    text = os.fspath(location)
    if text.startswith(_POSTGRES_SCHEMES):
        from .postgres import PostgresIngestRecord

        return PostgresIngestRecord(text)
    if text.startswith("sqlite:///"):
        text = text.removeprefix("sqlite:///")  # sqlite:///relative, sqlite:////absolute
    elif "://" in text:
        raise ValueError(f"unsupported ingest record URL scheme in {text.split('://', 1)[0]!r}:// "
                         "(expected postgresql://, sqlite:/// or a file path)")
    return SqliteIngestRecord(text)
