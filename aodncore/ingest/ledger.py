"""The library's own record of what was ingested, for idempotent re-runs.

Prefect's run history can be incomplete (a process that exits before the server drained its backlog loses task
runs), so the ingest flows keep their own record in a small SQLite database: one row per attempt at a landing
object, keyed by ``(source_uri, fingerprint)`` where the fingerprint is the S3 ETag or ``sha256:<hex>`` of a local
file (see :mod:`aodncore.ingest.sources`).

Idempotency rule (:meth:`IngestLedger.already_done`):

* a landing object whose *latest* record for the same ``(source_uri, fingerprint)`` is ``PUBLISHED`` is done and
  skipped;
* a ``QUARANTINED`` object is not retried while its fingerprint is unchanged: it is reported as done, because the
  same bytes would be refused again; uploading a corrected file (new ETag / checksum) makes it eligible again;
* ``FAILED`` (system error) and ``SKIPPED`` records never block a retry;
* a changed file (same URI, new fingerprint) is always processed again, whatever happened to earlier content.

The database uses WAL journaling and a busy timeout, and each thread gets its own connection, so several threads
and processes may record outcomes concurrently.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .outcome import PUBLISHED, QUARANTINED, FileOutcome
from .sources import LandingObject

__all__ = ["IngestLedger", "LedgerEntry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingest_record (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_uri TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    destination TEXT NOT NULL DEFAULT '',
    error TEXT,
    error_uri TEXT,
    run_id TEXT,
    recorded_at REAL NOT NULL,
    outcome_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ingest_record_key ON ingest_record (source_uri, fingerprint, id);
"""


@dataclass(frozen=True)
class LedgerEntry:
    """One recorded attempt at a landing object."""

    source_uri: str
    fingerprint: str
    status: str
    destination: str
    error: str | None
    error_uri: str | None
    run_id: str | None
    recorded_at: float


class IngestLedger:
    """SQLite-backed record of ingest outcomes, keyed by ``(source_uri, fingerprint)``.

    Safe to share between threads (one connection per thread) and processes (WAL mode, busy timeout).
    ``readonly=True`` opens an existing record for look-ups only (``--dry-run``): nothing is created or written,
    not even SQLite's ``-wal``/``-shm`` files while no writer has them open.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0, readonly: bool = False):
        self.path = Path(path)
        self._timeout = timeout
        self._readonly = readonly
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        if readonly:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._connection()
        with connection:
            connection.executescript(_SCHEMA)

    # -- connections -------------------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None and self._readonly:
            # immutable while no writer is active (no -wal file): reads the file as it is and creates nothing
            mode = "ro" if Path(f"{self.path}-wal").exists() else "ro&immutable=1"
            connection = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode={mode}", uri=True,
                                         timeout=self._timeout, isolation_level=None, check_same_thread=False)
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        elif connection is None:
            connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                         check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def close(self) -> None:
        """Close every connection opened by this ledger (any thread)."""
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        # connections and locks stay behind: a copy in another process opens its own
        return {"path": self.path, "timeout": self._timeout, "readonly": self._readonly}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], timeout=state["timeout"], readonly=state.get("readonly", False))  # type: ignore[misc]

    def __enter__(self) -> IngestLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries -----------------------------------------------------------------------------------------------
    @staticmethod
    def _entry(row: tuple[Any, ...]) -> LedgerEntry:
        return LedgerEntry(*row)

    _COLUMNS = "source_uri, fingerprint, status, destination, error, error_uri, run_id, recorded_at"

    def get(self, source_uri: str, fingerprint: str) -> LedgerEntry | None:
        """The latest record for this exact content of ``source_uri``, or None."""
        row = self._connection().execute(
            f"SELECT {self._COLUMNS} FROM ingest_record WHERE source_uri = ? AND fingerprint = ? "
            "ORDER BY id DESC LIMIT 1",
            (source_uri, fingerprint),
        ).fetchone()
        return self._entry(row) if row else None

    def get_outcome(self, source_uri: str, fingerprint: str) -> FileOutcome | None:
        """The full :class:`FileOutcome` of the latest record for this content, or None."""
        row = self._connection().execute(
            "SELECT outcome_json FROM ingest_record WHERE source_uri = ? AND fingerprint = ? "
            "ORDER BY id DESC LIMIT 1",
            (source_uri, fingerprint),
        ).fetchone()
        return FileOutcome.from_dict(json.loads(row[0])) if row else None

    def already_done(self, obj: LandingObject) -> bool:
        """True when this exact content was published, or quarantined (see the module's idempotency rule)."""
        entry = self.get(obj.uri, obj.fingerprint)
        return entry is not None and entry.status in (PUBLISHED, QUARANTINED)

    def split_done(self, objects: Sequence[LandingObject]) -> tuple[list[LandingObject], list[LandingObject]]:
        """(already ingested, still to do), in the order given; one query per 500 objects."""
        done_keys: set[tuple[str, str]] = set()
        connection = self._connection()
        for start in range(0, len(objects), 500):
            chunk = objects[start:start + 500]
            uris = sorted({obj.uri for obj in chunk})
            rows = connection.execute(
                "SELECT source_uri, fingerprint, status FROM ingest_record WHERE id IN (SELECT MAX(id) FROM "
                f"ingest_record WHERE source_uri IN ({', '.join('?' * len(uris))}) GROUP BY source_uri, fingerprint)",
                uris,
            ).fetchall()
            done_keys.update((uri, fingerprint) for uri, fingerprint, status in rows
                             if status in (PUBLISHED, QUARANTINED))
        done = [obj for obj in objects if (obj.uri, obj.fingerprint) in done_keys]
        todo = [obj for obj in objects if (obj.uri, obj.fingerprint) not in done_keys]
        return done, todo

    def history(self, source_uri: str) -> list[LedgerEntry]:
        """Every record for ``source_uri`` (all fingerprints), oldest first."""
        rows = self._connection().execute(
            f"SELECT {self._COLUMNS} FROM ingest_record WHERE source_uri = ? ORDER BY id",
            (source_uri,),
        ).fetchall()
        return [self._entry(row) for row in rows]

    def record(self, obj: LandingObject, outcome: FileOutcome, run_id: str | None = None) -> LedgerEntry:
        """Append the outcome of one attempt at ``obj``; return the stored entry."""
        entry = LedgerEntry(
            source_uri=obj.uri,
            fingerprint=obj.fingerprint,
            status=outcome.status,
            destination=outcome.destination or "",
            error=outcome.error,
            error_uri=outcome.error_uri,
            run_id=str(run_id) if run_id is not None else None,
            recorded_at=time.time(),
        )
        self._connection().execute(
            "INSERT INTO ingest_record (source_uri, fingerprint, status, destination, error, error_uri, run_id, "
            "recorded_at, outcome_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.source_uri, entry.fingerprint, entry.status, entry.destination, entry.error, entry.error_uri,
             entry.run_id, entry.recorded_at, json.dumps(outcome.to_dict())),
        )
        return entry

    def counts(self) -> dict[str, int]:
        """Number of distinct ``(source_uri, fingerprint)`` pairs per latest status."""
        rows = self._connection().execute(
            "SELECT r.status, COUNT(*) FROM ingest_record r JOIN ("
            " SELECT MAX(id) AS id FROM ingest_record GROUP BY source_uri, fingerprint) latest ON r.id = latest.id "
            "GROUP BY r.status"
        ).fetchall()
        return {status: count for status, count in rows}

    def __repr__(self) -> str:
        return f"IngestLedger({str(self.path)!r})"
