"""How a run uses the ingest record: claim up front, keep the claims alive, write outcomes in batches.

Outcomes are buffered and written (with the release of their claims) in one transaction every
``flush_seconds`` or every ``batch_size`` outcomes, from a background thread that also renews the run's claims
every third of the lease. A crash loses at most the last unflushed outcomes: their claims expire and the objects
are retried (publishing is idempotent), never lost.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence

from aodncore.ingest.outcome import FileOutcome
from aodncore.ingest.sources import LandingObject

from .base import DEFAULT_LEASE_SECONDS, ClaimResult, IngestRecord

__all__ = ["RecordWriter"]

logger = logging.getLogger(__name__)


class RecordWriter:
    """Batched, claim-aware access to an :class:`IngestRecord` for one run (``owner``).

    ``after_commit`` is called with the outcomes of each batch once they are written (e.g. to remove the
    published objects from the landing area only then).

    Duck-types the ``record(obj, outcome, run_id=None)`` method of the record, so it can stand in for it in
    ``IngestSettings.ledger``. Use as a context manager: leaving flushes everything and drops remaining claims.
    """

    def __init__(self, record: IngestRecord, owner: str, *, run_id: str | None = None,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS, flush_seconds: float = 0.5,
                 batch_size: int = 200,
                 after_commit: Callable[[list[tuple[LandingObject, FileOutcome]]], None] | None = None) -> None:
        self.record_store = record
        self.owner = owner
        self.run_id = run_id
        self.lease_seconds = lease_seconds
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self._pending: list[tuple[LandingObject, FileOutcome]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = contextvars.copy_context()  # the background thread logs into the creator's (run) context
        self.after_commit = after_commit
        self.flushes = 0

    # -- claims ------------------------------------------------------------------------------------------------
    def claim(self, objects: Sequence[LandingObject], *, skip_done: bool = True,
              look_up_first: bool = True) -> ClaimResult:
        """Claim ``objects`` for this run (see :meth:`IngestRecord.claim_many`) and start the background thread.

        With ``skip_done`` the already-ingested objects are first sorted out by a read-only look-up, so a re-scan
        of a landing area that holds mostly ingested objects writes nothing for them (``look_up_first=False`` when
        the caller did that look-up itself, e.g. :func:`aodncore.ingest.plan.plan_landing`).
        """
        done: list[LandingObject] = []
        if skip_done and look_up_first:
            done, objects = self.record_store.split_done(objects)
        result = self.record_store.claim_many(objects, self.owner, lease_seconds=self.lease_seconds,
                                              skip_done=skip_done)
        result.done[:0] = done
        self._start()
        return result

    # -- outcomes ----------------------------------------------------------------------------------------------
    def record(self, obj: LandingObject, outcome: FileOutcome, run_id: str | None = None) -> None:
        """Queue one outcome; it is written (and its claim released) with the next batch."""
        with self._lock:
            self._pending.append((obj, outcome))
            full = len(self._pending) >= self.batch_size
        self._start()
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Write every queued outcome now (one transaction)."""
        with self._lock:
            items, self._pending = self._pending, []
        if not items:
            return
        try:
            self.record_store.record_many(items, run_id=self.run_id, owner=self.owner)
            self.flushes += 1
        except Exception:
            with self._lock:  # keep them for the next attempt
                self._pending[:0] = items
            raise
        if self.after_commit is not None:
            try:
                self.after_commit(items)
            except Exception as error:  # noqa: BLE001 - the record stands; the next run drains what is left
                logger.error("after writing %d outcome(s) to the ingest record: %s", len(items), error)

    # -- background thread -------------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._context.run, args=(self._run,),
                                            name="aodncore-ingest-record", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        last_renewal = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
                if time.monotonic() - last_renewal >= self.lease_seconds / 3:
                    self.record_store.renew(self.owner, self.lease_seconds)
                    last_renewal = time.monotonic()
            except Exception as error:  # noqa: BLE001 - retried at the next tick; the outcomes are kept
                logger.error("could not write to the ingest record %s: %s", self.record_store.url, error)

    def close(self) -> None:
        """Stop the thread, write what is queued and drop this run's remaining claims."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.flush()
            self.record_store.release(self.owner)
        except Exception as error:  # noqa: BLE001 - the claims expire on their own
            logger.error("could not write the last outcomes to the ingest record %s: %s",
                         self.record_store.url, error)

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
