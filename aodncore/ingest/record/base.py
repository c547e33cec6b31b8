"""The ingest-record interface and the SQL both backends share.

The record holds two tables:

* ``ingest_record`` — append-only history, one row per attempt at a landing object, keyed by
  ``(source_uri, fingerprint)`` (the fingerprint is the S3 ETag or ``sha256:<hex>``);
* ``ingest_claim`` — who is processing which landing object right now: one row per ``source_uri`` with the
  claimer's ``owner`` id and a lease expiry. A claim whose lease has expired (its claimer crashed) is taken over by
  the next claimer.

Idempotency rule (:meth:`IngestRecord.already_done`): the *latest* record for the same ``(source_uri,
fingerprint)`` decides — ``published`` and ``quarantined`` mean done (the same bytes would be refused again;
a corrected upload has a new fingerprint), ``failed`` and ``skipped`` never block a retry.

Every operation on many objects is one transaction and a few statements per chunk of
:data:`CHUNK` objects, never a round trip per object: a re-scan of 100,000 objects costs ~200 look-ups.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aodncore.ingest.outcome import PUBLISHED, QUARANTINED, FileOutcome
from aodncore.ingest.sources import LandingObject

__all__ = [
    "CHUNK",
    "DEFAULT_LEASE_SECONDS",
    "Claim",
    "ClaimResult",
    "IngestRecord",
    "LedgerEntry",
    "new_owner_id",
    "owner_is_gone",
]

CHUNK = 500
"""Objects per statement in the batched operations."""

DEFAULT_LEASE_SECONDS = 600.0
"""How long a claim holds without renewal; a crashed claimer's objects are taken over after this."""

_DONE = (PUBLISHED, QUARANTINED)
_COLUMNS = "source_uri, fingerprint, status, destination, error, error_uri, run_id, recorded_at"


def new_owner_id(run_id: str | None = None) -> str:
    """A claimer id unique to this process and run: ``host:pid:run``."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id or uuid.uuid4().hex[:12]}"


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` (see :func:`new_owner_id`) was a process on this host that no longer exists, so its
    claims can be taken over at once instead of when their lease expires (claimers elsewhere: lease only)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # e.g. EPERM: it exists
        return False
    return False


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

    @property
    def done(self) -> bool:
        """True when this attempt settles the content (published or quarantined)."""
        return self.status in _DONE


@dataclass(frozen=True)
class Claim:
    """Somebody (``owner``) is processing ``source_uri`` until ``expires_at`` (epoch seconds) unless renewed."""

    source_uri: str
    fingerprint: str
    owner: str
    claimed_at: float
    expires_at: float


@dataclass
class ClaimResult:
    """What :meth:`IngestRecord.claim_many` decided, each list in the order given."""

    claimed: list[LandingObject] = field(default_factory=list)
    elsewhere: list[LandingObject] = field(default_factory=list)  # claimed by another live owner
    done: list[LandingObject] = field(default_factory=list)  # this content is already ingested


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _unique_by_uri(objects: Iterable[LandingObject]) -> list[LandingObject]:
    seen: dict[str, LandingObject] = {}
    for obj in objects:
        seen.setdefault(obj.uri, obj)
    return list(seen.values())


class IngestRecord(ABC):
    """The record of what was ingested and of who is ingesting what; backends differ only in their connection.

    Safe to share between threads (one connection per thread). Pickles by location, so a copy in another process
    opens its own connection.
    """

    #: placeholder of the backend's DB-API driver
    placeholder = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._connections: list[Any] = []
        self._connections_lock = threading.Lock()

    # -- backend hooks -----------------------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection."""

    @abstractmethod
    def _begin(self, cursor: Any) -> None:
        """Start a write transaction on ``cursor``'s connection."""

    @abstractmethod
    def _now(self, cursor: Any) -> float:
        """The clock claims are measured by (the database server's, when there is one), epoch seconds."""

    @abstractmethod
    def _create_schema(self, connection: Any) -> None:
        """Create the tables if they do not exist."""

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the record lives (credentials removed)."""

    # -- connections -------------------------------------------------------------------------------------------
    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _read(self) -> Iterator[Any]:
        connection = self._connection()
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            self._end_read(connection)

    def _end_read(self, connection: Any) -> None:
        """Finish an implicit read transaction (PostgreSQL opens one for every statement batch)."""
        return None

    @contextmanager
    def _write(self) -> Iterator[Any]:
        connection = self._connection()
        cursor = connection.cursor()
        try:
            self._begin(cursor)
            yield cursor
        except BaseException:
            connection.rollback()
            raise
        else:
            connection.commit()
        finally:
            cursor.close()

    def close(self) -> None:
        """Close every connection opened by this record (any thread)."""
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> IngestRecord:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _marks(self, count: int, width: int = 1) -> str:
        row = "(" + ", ".join([self.placeholder] * width) + ")" if width > 1 else self.placeholder
        return ", ".join([row] * count)

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder) if self.placeholder != "?" else text

    # -- look-ups ----------------------------------------------------------------------------------------------
    @staticmethod
    def _entry(row: Sequence[Any]) -> LedgerEntry:
        return LedgerEntry(*row)

    def get(self, source_uri: str, fingerprint: str) -> LedgerEntry | None:
        """The latest record for this exact content of ``source_uri``, or None."""
        with self._read() as cursor:
            cursor.execute(self._sql(
                f"SELECT {_COLUMNS} FROM ingest_record WHERE source_uri = ? AND fingerprint = ? "
                "ORDER BY id DESC LIMIT 1"), (source_uri, fingerprint))
            row = cursor.fetchone()
        return self._entry(row) if row else None

    def get_outcome(self, source_uri: str, fingerprint: str) -> FileOutcome | None:
        """The full :class:`FileOutcome` of the latest record for this content, or None."""
        with self._read() as cursor:
            cursor.execute(self._sql(
                "SELECT outcome_json FROM ingest_record WHERE source_uri = ? AND fingerprint = ? "
                "ORDER BY id DESC LIMIT 1"), (source_uri, fingerprint))
            row = cursor.fetchone()
        return FileOutcome.from_dict(json.loads(row[0])) if row else None

    def latest(self, source_uri: str) -> LedgerEntry | None:
        """The latest record for ``source_uri`` whatever its fingerprint, or None."""
        with self._read() as cursor:
            cursor.execute(self._sql(
                f"SELECT {_COLUMNS} FROM ingest_record WHERE source_uri = ? ORDER BY id DESC LIMIT 1"),
                (source_uri,))
            row = cursor.fetchone()
        return self._entry(row) if row else None

    def already_done(self, obj: LandingObject) -> bool:
        """True when this exact content was published, or quarantined (see the module's idempotency rule)."""
        entry = self.get(obj.uri, obj.fingerprint)
        return entry is not None and entry.done

    def _latest_many(self, cursor: Any, objects: Sequence[LandingObject]) -> dict[tuple[str, str], LedgerEntry]:
        found: dict[tuple[str, str], LedgerEntry] = {}
        for chunk in _chunks(_unique_by_uri(objects)):
            uris = [obj.uri for obj in chunk]
            cursor.execute(self._sql(
                f"SELECT {_COLUMNS} FROM ingest_record WHERE id IN (SELECT MAX(id) FROM ingest_record "
                f"WHERE source_uri IN ({self._marks(len(uris))}) GROUP BY source_uri, fingerprint)"), uris)
            for row in cursor.fetchall():
                entry = self._entry(row)
                found[(entry.source_uri, entry.fingerprint)] = entry
        return found

    def lookup_many(self, objects: Sequence[LandingObject]) -> dict[tuple[str, str], LedgerEntry]:
        """The latest record of each object's exact content, keyed by ``(uri, fingerprint)`` (absent: none)."""
        with self._read() as cursor:
            return self._latest_many(cursor, objects)

    def split_done(self, objects: Sequence[LandingObject]) -> tuple[list[LandingObject], list[LandingObject]]:
        """(already ingested, still to do), in the order given; one look-up per :data:`CHUNK` objects."""
        latest = self.lookup_many(objects)
        done: list[LandingObject] = []
        todo: list[LandingObject] = []
        for obj in objects:
            entry = latest.get((obj.uri, obj.fingerprint))
            (done if entry is not None and entry.done else todo).append(obj)
        return done, todo

    def history(self, source_uri: str) -> list[LedgerEntry]:
        """Every record for ``source_uri`` (all fingerprints), oldest first."""
        with self._read() as cursor:
            cursor.execute(self._sql(f"SELECT {_COLUMNS} FROM ingest_record WHERE source_uri = ? ORDER BY id"),
                           (source_uri,))
            return [self._entry(row) for row in cursor.fetchall()]

    def counts(self) -> dict[str, int]:
        """Number of distinct ``(source_uri, fingerprint)`` pairs per latest status."""
        with self._read() as cursor:
            cursor.execute(
                "SELECT r.status, COUNT(*) FROM ingest_record r JOIN ("
                " SELECT MAX(id) AS id FROM ingest_record GROUP BY source_uri, fingerprint) latest "
                "ON r.id = latest.id GROUP BY r.status")
            return {status: count for status, count in cursor.fetchall()}

    # -- recording ---------------------------------------------------------------------------------------------
    def record(self, obj: LandingObject, outcome: FileOutcome, run_id: str | None = None,
               owner: str | None = None) -> LedgerEntry:
        """Append the outcome of one attempt at ``obj`` (and release ``owner``'s claim on it); return the entry."""
        return self.record_many([(obj, outcome)], run_id=run_id, owner=owner)[0]

    def record_many(self, items: Sequence[tuple[LandingObject, FileOutcome]], run_id: str | None = None,
                    owner: str | None = None) -> list[LedgerEntry]:
        """Append many outcomes in one transaction; with ``owner``, release that owner's claims on these objects
        in the same transaction (so nobody can claim an object between its record and its release)."""
        now = time.time()
        run = str(run_id) if run_id is not None else None
        entries = [
            LedgerEntry(obj.uri, obj.fingerprint, outcome.status, outcome.destination or "", outcome.error,
                        outcome.error_uri, run, now)
            for obj, outcome in items
        ]
        rows = [
            (e.source_uri, e.fingerprint, e.status, e.destination, e.error, e.error_uri, e.run_id, e.recorded_at,
             json.dumps(outcome.to_dict()))
            for e, (_, outcome) in zip(entries, items, strict=True)
        ]
        if not rows:
            return []
        with self._write() as cursor:
            for chunk in _chunks(rows):
                cursor.execute(self._sql(
                    "INSERT INTO ingest_record (source_uri, fingerprint, status, destination, error, error_uri, "
                    f"run_id, recorded_at, outcome_json) VALUES {self._marks(len(chunk), 9)}"),
                    [value for row in chunk for value in row])
            if owner is not None:
                self._release(cursor, [obj.uri for obj, _ in items], owner)
        return entries

    # -- claims ------------------------------------------------------------------------------------------------
    def claim_many(self, objects: Sequence[LandingObject], owner: str, *,
                   lease_seconds: float = DEFAULT_LEASE_SECONDS, skip_done: bool = True) -> ClaimResult:
        """Claim objects for ``owner`` before processing them, in one transaction.

        An object is claimed unless another owner holds a live claim on its URI (``elsewhere``) or, with
        ``skip_done``, its exact content is already ingested (``done``; checked *after* claiming, so a run that
        finished the object just before is seen). Expired claims are taken over; ``owner``'s own claims renewed.
        """
        unique = sorted(_unique_by_uri(objects), key=lambda obj: obj.uri)  # one lock order: no deadlocks
        result = ClaimResult()
        if not unique:
            return result
        with self._write() as cursor:
            now = self._now(cursor)
            won = self._upsert_claims(cursor, unique, owner, now, lease_seconds)
            lost = [obj for obj in unique if obj.uri not in won]
            if lost and self._drop_claims_of_gone_owners(cursor, lost):
                won |= self._upsert_claims(cursor, lost, owner, now, lease_seconds)
            claimed = [obj for obj in unique if obj.uri in won]
            done_uris: set[str] = set()
            if skip_done and claimed:
                latest = self._latest_many(cursor, claimed)
                done_uris = {obj.uri for obj in claimed
                             if (entry := latest.get((obj.uri, obj.fingerprint))) is not None and entry.done}
                if done_uris:
                    self._release(cursor, sorted(done_uris), owner)
        for obj in objects:
            if obj.uri in done_uris:
                result.done.append(obj)
            elif obj.uri in won:
                result.claimed.append(obj)
            else:
                result.elsewhere.append(obj)
        return result

    def _upsert_claims(self, cursor: Any, objects: Sequence[LandingObject], owner: str, now: float,
                       lease_seconds: float) -> set[str]:
        """Claim what is free, expired or already ours; returns the URIs won."""
        won: set[str] = set()
        for chunk in _chunks(objects):
            values = [v for obj in chunk for v in (obj.uri, obj.fingerprint, owner, now, now + lease_seconds)]
            cursor.execute(self._sql(
                "INSERT INTO ingest_claim (source_uri, fingerprint, owner, claimed_at, expires_at) "
                f"VALUES {self._marks(len(chunk), 5)} ON CONFLICT (source_uri) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, owner = excluded.owner, claimed_at = excluded.claimed_at, "
                "expires_at = excluded.expires_at "
                "WHERE ingest_claim.expires_at < ? OR ingest_claim.owner = excluded.owner "
                "RETURNING source_uri"), [*values, now])
            won.update(row[0] for row in cursor.fetchall())
        return won

    def _drop_claims_of_gone_owners(self, cursor: Any, objects: Sequence[LandingObject]) -> bool:
        """Delete the claims on ``objects`` held by processes of this host that died (see :func:`owner_is_gone`);
        True when there were any."""
        owners: set[str] = set()
        for chunk in _chunks([obj.uri for obj in objects]):
            cursor.execute(self._sql(
                f"SELECT DISTINCT owner FROM ingest_claim WHERE source_uri IN ({self._marks(len(chunk))})"), chunk)
            owners.update(row[0] for row in cursor.fetchall())
        gone = [name for name in owners if owner_is_gone(name)]
        for name in gone:
            cursor.execute(self._sql("DELETE FROM ingest_claim WHERE owner = ?"), (name,))
        return bool(gone)

    def renew(self, owner: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> int:
        """Extend every claim of ``owner``; returns how many it holds."""
        with self._write() as cursor:
            now = self._now(cursor)
            cursor.execute(self._sql("UPDATE ingest_claim SET expires_at = ? WHERE owner = ?"),
                           (now + lease_seconds, owner))
            return cursor.rowcount

    def _release(self, cursor: Any, uris: Sequence[str], owner: str) -> None:
        for chunk in _chunks(list(uris)):
            cursor.execute(self._sql(
                f"DELETE FROM ingest_claim WHERE owner = ? AND source_uri IN ({self._marks(len(chunk))})"),
                [owner, *chunk])

    def release(self, owner: str, uris: Sequence[str] | None = None) -> None:
        """Drop ``owner``'s claims (all of them, or those on ``uris``)."""
        with self._write() as cursor:
            if uris is None:
                cursor.execute(self._sql("DELETE FROM ingest_claim WHERE owner = ?"), (owner,))
            else:
                self._release(cursor, uris, owner)

    def claim_of(self, source_uri: str) -> Claim | None:
        """The claim stored for ``source_uri`` (live or expired), or None."""
        with self._read() as cursor:
            cursor.execute(self._sql("SELECT source_uri, fingerprint, owner, claimed_at, expires_at FROM ingest_claim "
                                     "WHERE source_uri = ?"), (source_uri,))
            row = cursor.fetchone()
        return Claim(*row) if row else None

    def claims(self) -> list[Claim]:
        """Every claim currently stored (live or expired), by URI."""
        with self._read() as cursor:
            cursor.execute("SELECT source_uri, fingerprint, owner, claimed_at, expires_at FROM ingest_claim "
                           "ORDER BY source_uri")
            return [Claim(*row) for row in cursor.fetchall()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


_SCHEMA_TABLES = """
CREATE TABLE IF NOT EXISTS ingest_record (
    id {id_type},
    source_uri TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    destination TEXT NOT NULL DEFAULT '',
    error TEXT,
    error_uri TEXT,
    run_id TEXT,
    recorded_at {real} NOT NULL,
    outcome_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ingest_record_key ON ingest_record (source_uri, fingerprint, id);
CREATE TABLE IF NOT EXISTS ingest_claim (
    source_uri TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    owner TEXT NOT NULL,
    claimed_at {real} NOT NULL,
    expires_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS ingest_claim_owner ON ingest_claim (owner);
"""


def schema_statements(id_type: str, real: str) -> list[str]:
    """The DDL statements of the record, for a backend's id column type and floating-point type."""
    script = _SCHEMA_TABLES.format(id_type=id_type, real=real)
    return [statement.strip() for statement in script.split(";") if statement.strip()]
