"""A run's report: one JSON line per landing entry, every status, written as the run goes.

The run's result (:mod:`aodncore.ingest.result`) lists only the first few entries of each kind that needs nobody's
attention (published, already ingested, ignored) so that its size does not grow with the landing area; the report
is where every entry is kept. Each line is the entry's outcome dict (:meth:`FileOutcome.to_dict`, the same keys
as the result's ``outcomes``), e.g.::

    {"source": "file:///data/landing/IMOS_x.nc", "name": "IMOS_x.nc", "status": "published", ...}

Lines are buffered and written in batches (:data:`REPORT_FLUSH_LINES`), so memory does not grow with the run; the
order is the order the entries finished (plan order for entries not processed, completion order for processed
ones). The path is local to the process running the flow (``aodncore ingest --report FILE``, flow parameter
``report_path``); it is opened (created or emptied) when the run starts, so a bad path fails the run at once with a
one-line :class:`ReportPathError`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from typing import IO, Any

from aodncore.ingest.outcome import FileOutcome

__all__ = ["REPORT_FLUSH_LINES", "ReportPathError", "RunReport", "check_report_path"]

REPORT_FLUSH_LINES = 500
"""Report lines buffered before they are written out."""


class ReportPathError(ValueError):
    """The report path cannot be written (one line naming the path and the reason)."""


def check_report_path(path: str, sources: Iterable[str] = ()) -> str:
    """The absolute form of ``path`` if a report can be written there (a local file path; its folder exists and is
    writable, it is not a folder, it is not inside one of the local landing ``sources``, where the run would take
    it for a landing file); else raise :class:`ReportPathError`. Creates nothing."""
    text = str(path or "").strip()
    if not text:
        raise ReportPathError("report path: empty")
    if "://" in text and not text.startswith("file://"):
        raise ReportPathError(f"report path '{text}': must be a local file path (the process running the flow's)")
    local = os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
    folder = os.path.dirname(local)
    if os.path.isdir(local):
        raise ReportPathError(f"report path '{text}': is a folder")
    if not os.path.isdir(folder):
        raise ReportPathError(f"report path '{text}': folder '{folder}' does not exist")
    if (os.path.exists(local) and not os.access(local, os.W_OK)) or not os.access(folder, os.W_OK | os.X_OK):
        raise ReportPathError(f"report path '{text}': not writable")
    for source in sources:
        if "://" in source and not source.startswith("file://"):
            continue
        area = os.path.realpath(source.removeprefix("file://"))
        if os.path.realpath(local) == area or os.path.realpath(local).startswith(area.rstrip(os.sep) + os.sep):
            raise ReportPathError(f"report path '{text}': inside the landing area '{source}' (the run would take it "
                                  "for a landing file)")
    return local


class RunReport:
    """Writes one JSON line per outcome to a local file (see the module docstring). Thread-safe: outcomes arrive
    from the flow's thread and from the threads recording processed files.

    Use as a context manager, or call :meth:`close`; :meth:`add` and :meth:`outcome_hook` (an
    ``IngestSettings.outcome_hooks`` entry) add lines.
    """

    def __init__(self, path: str, flush_lines: int = REPORT_FLUSH_LINES, sources: Iterable[str] = ()) -> None:
        self.path = check_report_path(path, sources)
        try:
            self._file: IO[str] | None = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as error:
            raise ReportPathError(f"report path '{path}': {error.strerror or error}") from None
        self._flush_lines = max(1, flush_lines)
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self.lines = 0

    def __enter__(self) -> RunReport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, outcome: FileOutcome) -> None:
        """Add one entry's line (written with the next batch)."""
        line = json.dumps(outcome.to_dict(), ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            if self._file is None:
                raise ValueError(f"report {self.path} is closed")
            self._pending.append(line)
            self.lines += 1
            if len(self._pending) >= self._flush_lines:
                self._write()

    def outcome_hook(self, obj: Any, outcome: FileOutcome) -> None:
        """``IngestSettings.outcome_hooks`` entry: report each processed file as it finishes."""
        self.add(outcome)

    def flush(self) -> None:
        with self._lock:
            self._write()

    def close(self) -> None:
        """Write what is pending and close the file (idempotent)."""
        with self._lock:
            if self._file is None:
                return
            try:
                self._write()
            finally:
                self._file.close()
                self._file = None

    def _write(self) -> None:
        if self._pending and self._file is not None:
            self._file.write("\n".join(self._pending) + "\n")
            self._file.flush()
            self._pending.clear()
