"""Plan an ingest run: list the landing areas and decide, for every entry, what the run does with it.

:func:`plan_landing` turns listings into a stream of :class:`PlanItem`, each with a status:

* ``todo`` — a settled object whose content is not in the ingest record yet: the run processes it;
* ``skipped`` — this exact content (same URI and fingerprint) was already published or quarantined;
* ``waiting`` — a local file still being written: its size, modification or change time moved less than the
  settle time ago; it stays where it is and a later run takes it;
* ``ignored`` — never ingested by design (dotfiles, dot-folders, sidecars, symbolic links, special files, S3 keys
  naming no file), reported with the reason;
* ``failed`` — could not be looked at (a file or folder without read permission): that entry's own outcome,
  kept for a retry; every other entry proceeds.

Nothing is changed anywhere: the flows act on the plan, ``aodncore ingest --dry-run`` prints it.

Streaming: the listing is consumed lazily, objects are looked up in the ingest record in batches of
``batch_size`` (one query per batch, not per object), and items come out batch by batch in listing order, so a
re-scan of a large landing area holds one batch in memory — plus, with ``wait``, the few files still settling.
Local files are hashed only once they have settled.

Settling: a local file is settled when ``now - max(mtime, ctime) >= settle_seconds``. With ``wait`` (the one-shot
CLI), files not yet settled are looked at again once they would be — at most ``settle_seconds`` after the listing
— and taken if their size, modification and change times did not move meanwhile. S3 objects are always settled:
an object becomes visible only once its upload is complete.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aodncore.ingest import progress
from aodncore.ingest.names import shown
from aodncore.ingest.outcome import FAILED, IGNORED, SKIPPED, WAITING, FileOutcome
from aodncore.ingest.sources import IgnoredEntry, LandingObject, UnreadableEntry, scan_landing, with_fingerprint
from aodncore.limits import LANDING_SETTLE_SECONDS, limit_value

__all__ = [
    "ALREADY_INGESTED",
    "BATCH_SIZE",
    "PLAN_STATUSES",
    "TODO",
    "PlanItem",
    "count_plan",
    "plan_landing",
    "resolve_settle_seconds",
]

logger = logging.getLogger(__name__)

TODO = "todo"
PLAN_STATUSES = (TODO, SKIPPED, WAITING, IGNORED, FAILED)

BATCH_SIZE = 500
"""Objects per ingest-record look-up."""

ALREADY_INGESTED = "already ingested (same content)"


@dataclass(frozen=True)
class PlanItem:
    """One landing entry and what the run does with it (see the module docstring).

    ``uri`` and ``name`` are exact (lossless); ``reason`` is readable text (names in it shown escaped); ``obj`` is
    the landing object for ``todo``, ``skipped`` and ``waiting`` items (fingerprinted for the first two).
    """

    status: str
    uri: str
    name: str
    reason: str | None = None
    obj: LandingObject | None = None

    def outcome(self, note: str | None = None) -> FileOutcome:
        """The outcome of an item that is not processed (``skipped``, ``waiting``, ``ignored``, ``failed``)."""
        if self.status == TODO:
            raise ValueError(f"{shown(self.uri)} is to be processed; it has no outcome yet")
        text = note or self.reason
        return FileOutcome(
            source=shown(self.uri),
            name=shown(self.name),
            status=self.status,
            error=text if self.status == FAILED else None,
            note=None if self.status == FAILED else text,
        )


def _age_text(seconds: float) -> str:
    return f"{max(seconds, 0.0):.0f} s"


def _settle_wait_reason(obj: LandingObject, now: float, settle_seconds: float) -> str:
    age = now - (obj.changed_at or now)
    if age < 0:
        return f"still being written? its modification time lies {_age_text(-age)} in the future"
    return (f"still being written? changed {_age_text(age)} ago, less than the settle time of "
            f"{settle_seconds:g} s; a later run takes it")


def _hashed(obj: LandingObject) -> PlanItem | None:
    """A ``todo`` candidate with its fingerprint, a ``failed`` item when it cannot be read, None when it is gone."""
    try:
        return PlanItem(TODO, obj.uri, obj.name, obj=with_fingerprint(obj))
    except FileNotFoundError:
        return None
    except OSError as error:
        reason = f"cannot read the landing file: {error.strerror or type(error).__name__}"
        return PlanItem(FAILED, obj.uri, obj.name, reason=reason, obj=obj)


def _unchanged(obj: LandingObject) -> bool:
    assert obj.path is not None
    try:
        info = os.stat(obj.path)
    except OSError:
        return False
    return info.st_size == obj.size and max(info.st_mtime, info.st_ctime) == obj.changed_at


class _Planner:
    def __init__(self, *, settle_seconds: float, ledger: Any, wait: bool, batch_size: int,
                 clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.settle_seconds = max(0.0, float(settle_seconds))
        self.ledger = ledger
        self.wait = wait
        self.batch_size = max(1, batch_size)
        self.clock = clock
        self.sleep = sleep
        self.deferred: list[LandingObject] = []

    def _classify(self, entry: Any, now: float) -> PlanItem | None:
        if isinstance(entry, IgnoredEntry):
            return PlanItem(IGNORED, entry.uri, entry.name, reason=entry.reason)
        if isinstance(entry, UnreadableEntry):
            return PlanItem(FAILED, entry.uri, entry.name, reason=entry.reason)
        obj: LandingObject = entry
        if obj.is_s3 or obj.changed_at is None:
            return PlanItem(TODO, obj.uri, obj.name, obj=obj)
        age = now - obj.changed_at
        if age >= self.settle_seconds:
            return _hashed(obj)
        if self.wait and age >= 0:
            self.deferred.append(obj)
            return None
        return PlanItem(WAITING, obj.uri, obj.name, reason=_settle_wait_reason(obj, now, self.settle_seconds),
                        obj=obj)

    def _flush(self, batch: list[PlanItem]) -> Iterator[PlanItem]:
        candidates = [item.obj for item in batch if item.status == TODO and item.obj is not None]
        done: set[tuple[str, str]] = set()
        if self.ledger is not None and candidates:
            already, _ = self.ledger.split_done(candidates)
            done = {(obj.uri, obj.fingerprint) for obj in already}
        for item in batch:
            if item.status == TODO and item.obj is not None and (item.obj.uri, item.obj.fingerprint) in done:
                item = PlanItem(SKIPPED, item.uri, item.name, reason=ALREADY_INGESTED, obj=item.obj)
            _log(item)
            yield item
        batch.clear()

    def _settle_deferred(self) -> Iterator[PlanItem]:
        """Look at the files that were still settling once they would have settled; take those that did not move."""
        logger.info("waiting up to %g s for %d landing file(s) that changed in the last %g s to settle",
                    self.settle_seconds, len(self.deferred), self.settle_seconds)
        progress.emit("settling", len(self.deferred))
        for obj in sorted(self.deferred, key=lambda o: o.changed_at or 0.0):
            delay = (obj.changed_at or 0.0) + self.settle_seconds - self.clock()
            if delay > 0:
                self.sleep(delay)
            if not _unchanged(obj):
                reason = (f"still being written: it changed again within the settle time of {self.settle_seconds:g} "
                          "s; a later run takes it")
                yield PlanItem(WAITING, obj.uri, obj.name, reason=reason, obj=obj)
                continue
            item = _hashed(obj)
            if item is not None:
                yield item
        self.deferred.clear()

    def run(self, sources: Iterable[str]) -> Iterator[PlanItem]:
        batch: list[PlanItem] = []
        for source in sources:
            for entry in scan_landing(source):
                item = self._classify(entry, self.clock())
                if item is None:
                    continue
                batch.append(item)
                if len(batch) >= self.batch_size:
                    yield from self._flush(batch)
        yield from self._flush(batch)
        if self.deferred:
            for item in self._settle_deferred():
                batch.append(item)
                if len(batch) >= self.batch_size:
                    yield from self._flush(batch)
            yield from self._flush(batch)


def _log(item: PlanItem) -> None:
    if item.status == IGNORED:
        logger.info("ignored %s: %s", shown(item.uri), item.reason)
    elif item.status == WAITING:
        logger.info("waiting %s: %s", shown(item.uri), item.reason)
    elif item.status == FAILED:
        logger.warning("cannot ingest %s: %s", shown(item.uri), item.reason)


def plan_landing(
    sources: str | Sequence[str],
    *,
    settle_seconds: float = 0.0,
    ledger: Any = None,
    wait: bool = False,
    batch_size: int = BATCH_SIZE,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[PlanItem]:
    """Yield one :class:`PlanItem` per landing entry of ``sources`` (see the module docstring).

    :param settle_seconds: how long a local file must have been unchanged before it is taken
    :param ledger: the ingest record (anything with ``split_done(objects) -> (done, todo)``); None: no ``skipped``
    :param wait: look again at files still settling, within the run, once they would have settled
    :param batch_size: objects per ingest-record look-up
    """
    planner = _Planner(settle_seconds=settle_seconds, ledger=ledger, wait=wait, batch_size=batch_size,
                       clock=clock, sleep=sleep)
    yield from planner.run([sources] if isinstance(sources, str) else list(sources))


def resolve_settle_seconds(config: Any, explicit: float | None, default: float) -> float:
    """The settle time in force: ``explicit`` if given, else the config's ``limits.landing_settle_seconds``, else
    ``default`` (:data:`aodncore.limits.LANDING_SETTLE_SECONDS` for flows and deployments,
    :data:`aodncore.limits.CLI_SETTLE_SECONDS` for a one-shot ``aodncore ingest``)."""
    if explicit is not None:
        return max(0.0, float(explicit))
    try:
        configured = (config.pipeline_config.get(LANDING_SETTLE_SECONDS.section) or {}).get(LANDING_SETTLE_SECONDS.name)
    except AttributeError:
        configured = None
    return float(limit_value(config, LANDING_SETTLE_SECONDS)) if configured is not None else default


def count_plan(items: Iterable[PlanItem]) -> dict[str, int]:
    """How many items of each status (every status present, zero when none)."""
    counts = dict.fromkeys(PLAN_STATUSES, 0)
    for item in items:
        counts[item.status] += 1
    return counts
