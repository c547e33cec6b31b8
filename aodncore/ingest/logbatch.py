"""Ship the log records of many landing objects as few records: every line kept, a fraction of the cost.

Each log record a flow ships to the Prefect API costs the flow process ~0.35 ms and a local Prefect server
~1.5 ms (measured in ``benchmarks/bench_throughput.py``: the server stores a row per record), which is more than
the classic pipeline spends on a whole small file. A worker already sends back one record per object
(:func:`aodncore.ingest.parallel.combine_records`); a :class:`LogBatch` then joins the records of objects that went
well (INFO and below) into one record per ``max_records`` objects or ``max_seconds``, whichever comes first.
A record at WARNING or above (a refused or failed object) is emitted on its own, at once, after the records
queued before it, so that problems keep their level, their position and their own entry in the run's logs.

Records are emitted in the thread that calls :meth:`LogBatch.add` / :meth:`LogBatch.flush`, so they belong to
that thread's Prefect task run. A logger not enabled for a record's level gets nothing, as with ``logging``.
"""

from __future__ import annotations

import logging
import time

__all__ = ["LogBatch", "append_line"]


class LogBatch:
    """Joins INFO-and-below records (one per landing object) into one record; use as a context manager."""

    def __init__(self, max_records: int = 100, max_seconds: float = 1.0) -> None:
        self.max_records = max_records
        self.max_seconds = max_seconds
        self._pending: list[logging.LogRecord] = []
        self._since = 0.0

    def __enter__(self) -> LogBatch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()

    def add(self, record: logging.LogRecord) -> None:
        """Queue ``record`` (or emit it now, after the queued ones, when it is a warning or worse)."""
        if not logging.getLogger(record.name).isEnabledFor(record.levelno):
            return
        if record.levelno >= logging.WARNING:
            self.flush()
            _emit(record)
            return
        if not self._pending:
            self._since = time.monotonic()
        self._pending.append(record)
        if len(self._pending) >= self.max_records or time.monotonic() - self._since >= self.max_seconds:
            self.flush()

    def flush(self) -> None:
        """Emit what is queued, as one record."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        if len(pending) == 1:
            _emit(pending[0])
            return
        _emit(_joined(pending))


def append_line(records: list[logging.LogRecord], level: int, text: str) -> bool:
    """Add the line ``text`` (at ``level``) to the end of the one record a worker sent for an object; True when
    done. False — the caller logs the line itself — unless there is exactly one record and its level is at
    least ``level`` (a line never travels in a record of a lower level, where a filter by level would miss it)
    and it carries no separate traceback.

    The line is written as :func:`aodncore.ingest.parallel.combine_records` writes the lines after the first:
    indented, prefixed with its level name when that is not the record's.
    """
    if len(records) != 1 or records[0].levelno < level or records[0].exc_text:
        return False  # (a traceback is printed after the message: the line would come before it)
    record = records[0]
    prefix = "" if record.levelno == level else f"{logging.getLevelName(level)}: "
    record.msg, record.args = f"{record.getMessage()}\n  {prefix}{text}", None
    record.aodncore_lines = getattr(record, "aodncore_lines", 1) + 1
    return True


def _joined(records: list[logging.LogRecord]) -> logging.LogRecord:
    """One record holding ``records``' messages in order (each object's block starts on a new line); it takes the
    first record's logger and attributes and the highest level."""
    first = records[0]
    joined = logging.makeLogRecord(dict(first.__dict__))
    joined.__dict__.pop("landing_object", None)  # it is about several objects
    top = max(records, key=lambda record: record.levelno)
    joined.levelno, joined.levelname = top.levelno, top.levelname
    blocks = []
    for record in records:
        text = record.getMessage()
        prefix = "" if record.levelno == top.levelno else f"{record.levelname}: "
        if record.name != first.name:
            prefix += f"[{record.name}] "
        if record.exc_text:
            text += "\n" + record.exc_text
        blocks.append(prefix + text)
    joined.msg, joined.args, joined.exc_info, joined.exc_text = "\n".join(blocks), None, None, None
    joined.aodncore_lines = sum(getattr(record, "aodncore_lines", 1) for record in records)
    joined.aodncore_objects = len(records)
    return joined


def _emit(record: logging.LogRecord) -> None:
    logging.getLogger(record.name).handle(record)
