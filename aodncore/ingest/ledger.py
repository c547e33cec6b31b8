"""Compatibility names for the ingest record (see :mod:`aodncore.ingest.record`).

``IngestLedger`` is the embedded SQLite backend; new code uses :func:`aodncore.ingest.record.open_ingest_record`.
"""

from __future__ import annotations

from aodncore.ingest.record import LedgerEntry
from aodncore.ingest.record import SqliteIngestRecord as IngestLedger

__all__ = ["IngestLedger", "LedgerEntry"]
