"""The result of an ingest run: every entry that needs attention in full, the others counted and a few listed.

A run's result must not grow with the landing area nor with the work done: a re-scan of 100,000 objects gives
100,000 "skipped: already ingested" entries, and a run that publishes 100,000 files 100,000 published ones —
nobody reads those one by one, and holding them would make the flow's result, its table artifact and the CLI's
summary grow with the run. So an :class:`IngestResult` keeps:

* a full :class:`~aodncore.ingest.outcome.FileOutcome` for every entry that **needs attention** —
  ``quarantined``, ``failed`` (including unreadable entries), ``waiting`` (not settled, changed while fetched),
  ``skipped`` because another run holds it ("in progress elsewhere") or because it vanished;
* for the entries that need nobody's attention — ``published``, ``skipped`` as already ingested (every variant of
  that note: kept in, removed from, or not removable from the landing area) and ``ignored`` by design (dotfiles,
  sidecars, links, folder markers) — a count per status and reason, with the first
  :data:`~aodncore.limits.LISTED_PER_REASON` of each listed as full outcomes and the rest only counted.

Every entry, listed or not, is in the run's report when one is asked for (:mod:`aodncore.ingest.report`,
``aodncore ingest --report FILE``, flow parameter ``report_path``); ``aodncore ingest --dry-run`` lists every
landing entry too. The per-file events, the ingest record and the error store carry every file as well.

:attr:`IngestResult.counts` counts *every* entry, summarised or not (Prefect state messages, exit codes). The JSON
form (:meth:`IngestResult.to_dict`, the flows' persisted result)::

    {"total": 100003, "counts": {"published": 2, "failed": 1, "skipped": 100000},
     "outcomes": [{...}, ...],            # listed entries in the order added: full ones + the first N of each summary
     "summarised": [{"status": "published", "reason": "", "count": 2, "listed": 2},
                    {"status": "skipped", "reason": "already ingested (same content); kept in the landing area",
                     "count": 100000, "listed": 20}],
     "truncated": true,                   # some summarised entries are counted but not listed
     "report": "/path/report.jsonl"}      # the run's report (every entry), or null

Processed files join the result as they finish (:class:`BatchOutcomes`): each batch keeps only what the result
would list (entries needing attention, the first few of each summarised reason) and counts the rest, and the
batches are added in batch order when all are done — the same result as adding every batch's outcome list in
order, without holding one outcome per file for the length of the run.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aodncore.ingest.outcome import IGNORED, PUBLISHED, SKIPPED, STATUSES, FileOutcome
from aodncore.ingest.plan import ALREADY_INGESTED
from aodncore.limits import LISTED_PER_REASON

__all__ = ["LISTED_PER_REASON", "BatchOutcomes", "IngestResult", "Summary", "summarised_reason"]

DRY_RUN_HINT = "`aodncore ingest --dry-run` lists every one"
REPORT_HINT = "a run with `--report FILE` (flow parameter report_path) lists every one"


def summarised_reason(outcome: FileOutcome) -> str | None:
    """The reason ``outcome`` is summarised under (it needs nobody's attention; ``""`` for published), or None:
    listed in full."""
    if outcome.status == PUBLISHED:
        return ""
    note = outcome.note or ""
    if outcome.status == SKIPPED and note.startswith(ALREADY_INGESTED):
        return note
    if outcome.status == IGNORED:
        return note or "ignored"
    return None


@dataclass(slots=True)
class Summary:
    """How many entries with one status and reason a run had (``count``), and how many of them it lists."""

    status: str
    reason: str
    count: int = 0
    listed: int = 0

    @property
    def truncated(self) -> bool:
        return self.count > self.listed

    def line(self, report: str | None = None) -> str:
        """``"100000 skipped (already ingested …); first 20 listed — `aodncore ingest --dry-run` lists every one"``;
        with ``report`` (the run's report path) the hint names it."""
        if report:
            hint = f"every one is in the report {report}"
        else:
            hint = REPORT_HINT if self.status == PUBLISHED else DRY_RUN_HINT
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.count} {self.status}{reason}; first {self.listed} listed — {hint}"

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "count": self.count, "listed": self.listed}


class IngestResult:
    """The outcomes of one run, summarised where they need no attention (see the module docstring).

    Add outcomes with :meth:`add`; memory grows with the entries needing attention only. With a ``report``
    (:class:`~aodncore.ingest.report.RunReport`) every added outcome is also written to it, unless added with
    ``report=False`` (already reported where it finished). Not thread-safe: one thread adds (the flow's).
    """

    def __init__(self, listed_per_reason: int | None = None, report: Any = None) -> None:
        self.listed_per_reason = max(1, LISTED_PER_REASON if listed_per_reason is None else listed_per_reason)
        self.outcomes: list[FileOutcome] = []
        self.counts: Counter[str] = Counter()
        self._summaries: dict[tuple[str, str], Summary] = {}
        self.report = report
        self.report_path: str | None = getattr(report, "path", None)

    def add(self, outcome: FileOutcome, *, report: bool = True) -> bool:
        """Count ``outcome`` (and write it to the report); list it unless it is the next of a summarised reason
        already listed enough times. Returns whether it was listed."""
        if report and self.report is not None:
            self.report.add(outcome)
        self.counts[outcome.status] += 1
        reason = summarised_reason(outcome)
        if reason is not None:
            key = (outcome.status, reason)
            summary = self._summaries.get(key)
            if summary is None:
                summary = self._summaries[key] = Summary(outcome.status, reason)
            summary.count += 1
            if summary.listed >= self.listed_per_reason:
                return False
            summary.listed += 1
        self.outcomes.append(outcome)
        return True

    def extend(self, outcomes: Iterable[FileOutcome], *, report: bool = True) -> None:
        for outcome in outcomes:
            self.add(outcome, report=report)

    def _add_unlisted(self, key: tuple[str, str], count: int) -> None:
        """Count ``count`` more entries of a summarised reason already seen, none of them listed (their place in
        the order is after enough listed ones of that reason: see :class:`BatchOutcomes`)."""
        self.counts[key[0]] += count
        self._summaries[key].count += count

    @property
    def total(self) -> int:
        """Every entry of the run, listed or only counted."""
        return sum(self.counts.values())

    @property
    def summaries(self) -> list[Summary]:
        """The summarised reasons, in the order they first occurred."""
        return list(self._summaries.values())

    @property
    def truncated(self) -> bool:
        """True when some entries are only counted, not listed."""
        return any(summary.truncated for summary in self._summaries.values())

    def truncation_lines(self) -> list[str]:
        """One line per summarised reason with entries not listed (for consoles, logs and artifacts)."""
        return [self.summary_line(summary) for summary in self._summaries.values() if summary.truncated]

    def summary_line(self, summary: Summary) -> str:
        """:meth:`Summary.line` of one of this result's summaries, naming the run's report if it has one."""
        return summary.line(self.report_path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see the module docstring): the flows' persisted result."""
        order = [status for status in STATUSES if self.counts[status]]
        order += sorted(status for status in self.counts if status not in STATUSES and self.counts[status])
        return {
            "total": self.total,
            "counts": {status: self.counts[status] for status in order},
            "outcomes": [outcome.to_dict() for outcome in self.outcomes],
            "summarised": [summary.to_dict() for summary in self._summaries.values()],
            "truncated": self.truncated,
            "report": self.report_path,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | list[dict[str, Any]]) -> IngestResult:
        """Rebuild a result from :meth:`to_dict` output (or from a plain list of outcome dicts: all listed)."""
        result = cls()
        if isinstance(data, list):
            result.extend(FileOutcome.from_dict(item) for item in data)
            return result
        missing = {"counts", "outcomes"} - data.keys()
        if missing:
            raise ValueError(f"IngestResult.from_dict: missing {', '.join(sorted(missing))}")
        result.outcomes = [FileOutcome.from_dict(item) for item in data["outcomes"]]
        result.counts = Counter({status: int(count) for status, count in data["counts"].items()})
        for item in data.get("summarised") or ():
            summary = Summary(item["status"], item["reason"], int(item["count"]), int(item["listed"]))
            result._summaries[(summary.status, summary.reason)] = summary
        result.report_path = data.get("report")
        return result


Key = tuple[str, str]


@dataclass(slots=True)
class _Batch:
    """What one batch keeps of its outcomes: those the result may list (in the batch's order), counts of the
    others."""

    kept: list[FileOutcome] = field(default_factory=list)
    kept_per_key: Counter[Key] = field(default_factory=Counter)
    per_key: Counter[Key] = field(default_factory=Counter)


class BatchOutcomes:
    """The outcomes of a run's processed batches, folded in as each file finishes (see the module docstring).

    :meth:`add` ``(batch_index, outcome)`` takes each batch's outcomes in the batch's own order (one thread per
    batch, several batches at once); :meth:`join` adds them to ``result`` in batch order once every batch is
    done, with ``report=False`` (processed files are reported where they finished). The result is exactly what
    ``result.extend(batch_0 + batch_1 + …)`` would give — counts, listed outcomes and their order, summaries and
    their order — while each batch holds at most the entries needing attention plus ``listed_per_reason`` of each
    summarised reason (none once an earlier batch holds that many). Returns nothing per file for the run's length.
    """

    def __init__(self, result: IngestResult) -> None:
        self.result = result
        self._limit = result.listed_per_reason
        self._batches: dict[int, _Batch] = {}
        self._full: dict[Key, int] = {}  # summarised reason -> lowest batch index that kept enough of it
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, index: int, outcome: FileOutcome) -> None:
        """One finished file of batch ``index`` (after those of the batch that come before it)."""
        batch = self._batches.get(index)
        if batch is None:
            with self._lock:
                batch = self._batches.setdefault(index, _Batch())
        with self._lock:
            self.counts[outcome.status] += 1
        reason = summarised_reason(outcome)
        if reason is None:
            batch.kept.append(outcome)
            return
        key = (outcome.status, reason)
        batch.per_key[key] += 1
        if batch.kept_per_key[key] >= self._limit or self._full.get(key, index) < index:
            return  # enough of this reason are listed before it: counted only
        batch.kept.append(outcome)
        batch.kept_per_key[key] += 1
        if batch.kept_per_key[key] >= self._limit:
            with self._lock:
                self._full[key] = min(self._full.get(key, index), index)

    def join(self) -> None:
        """Add every batch to the result, in batch order (call once, when every batch is done)."""
        with self._lock:
            batches, self._batches = self._batches, {}
        for index in sorted(batches):
            batch = batches.pop(index)
            self.result.extend(batch.kept, report=False)
            for key, count in batch.per_key.items():
                if count > batch.kept_per_key[key]:
                    self.result._add_unlisted(key, count - batch.kept_per_key[key])
