"""What happened to one landing object: the per-file result of an ingest run."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["FAILED", "IGNORED", "PUBLISHED", "QUARANTINED", "SKIPPED", "STATUSES", "WAITING", "FileOutcome"]

#: The file (and everything resolved from it) was published; the landing object may be removed.
PUBLISHED = "published"
#: The file was refused (data error) and stored safely in the error store with the reason.
QUARANTINED = "quarantined"
#: Nothing to do: the same content was already ingested (the landing copy is then removed unless kept), or the
#: object vanished before it could be fetched.
SKIPPED = "skipped"
#: A system error stopped processing (storage down, a crash, an unreadable file); the landing object is kept for
#: a retry.
FAILED = "failed"
#: Not taken yet: the file is still being written (not settled) or changed while it was fetched; it stays in the
#: landing area and a later run takes it.
WAITING = "waiting"
#: Never ingested by design (dotfile, sidecar, symbolic link, special file, a key naming no file); left alone.
IGNORED = "ignored"

STATUSES = (PUBLISHED, QUARANTINED, SKIPPED, FAILED, WAITING, IGNORED)

_CHECK_RESULTS = ("passed", "failed", "n/a")
_FILE_ROW_KEYS = ("name", "check_passed", "publish_type", "dest_path", "stored", "archived")


@dataclass(slots=True)  # a run keeps one per landing object (100,000 on a large re-scan): no per-instance dict
class FileOutcome:
    """The result of ingesting one landing object.

    ``files`` holds one row per file resolved from the landing object (a zip or manifest gives several), each a
    dict with the keys ``name``, ``check_passed``, ``publish_type``, ``dest_path``, ``stored``, ``archived``.
    ``note`` says why a ``skipped``, ``waiting`` or ``ignored`` object was not processed (not an error).

    Every text field is for people: names are shown escaped (:func:`aodncore.ingest.names.shown`), so they are
    single lines without terminal controls; ``source`` is the landing URI (local names percent-encoded).
    ``failed_checks`` names the checks that failed (compliance suites such as ``cf:1.6``, or the check type,
    e.g. ``FORMAT_CHECK``), and ``handler`` the handler class that ran.
    """

    source: str
    name: str
    status: str
    check_result: str = "n/a"
    publish_type: str = ""
    destination: str = ""
    stored: bool = False
    archived: bool = False
    error: str | None = None
    error_uri: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    failed_checks: list[str] = field(default_factory=list)
    handler: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"FileOutcome for {self.name!r}: unknown status {self.status!r} (expected one of "
                             f"{', '.join(STATUSES)})")
        if self.check_result not in _CHECK_RESULTS:
            raise ValueError(f"FileOutcome for {self.name!r}: unknown check_result {self.check_result!r} "
                             f"(expected one of {', '.join(_CHECK_RESULTS)})")
        self.files = [self._normalise_file_row(row) for row in self.files]

    @staticmethod
    def _normalise_file_row(row: dict[str, Any]) -> dict[str, Any]:
        normalised: dict[str, Any] = {key: row.get(key) for key in _FILE_ROW_KEYS}
        normalised["stored"] = bool(normalised["stored"])
        normalised["archived"] = bool(normalised["archived"])
        normalised["dest_path"] = normalised["dest_path"] or ""
        normalised["publish_type"] = normalised["publish_type"] or ""
        return normalised

    @property
    def ok(self) -> bool:
        """False only for ``failed``: every other status needs nobody's attention."""
        return self.status != FAILED

    def to_row(self) -> dict[str, Any]:
        """One flat row for a table (CLI summary, Prefect table artifact)."""
        return {
            "name": self.name,
            "status": self.status,
            "check_result": self.check_result,
            "publish_type": self.publish_type,
            "destination": self.destination,
            "stored": self.stored,
            "archived": self.archived,
            "error": self.error or "",
            "note": self.note or "",
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict holding every field (the same as ``dataclasses.asdict``, several times faster:
        it is called a few times for every file of a run)."""
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["files"] = [dict(row) for row in self.files]
        data["failed_checks"] = list(self.failed_checks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileOutcome:
        """Rebuild an outcome from :meth:`to_dict` output (unknown keys are ignored)."""
        missing = {"source", "name", "status"} - data.keys()
        if missing:
            raise ValueError(f"FileOutcome.from_dict: missing {', '.join(sorted(missing))}")
        return cls(**{key: value for key, value in data.items() if key in _FIELD_SET})


_FIELD_NAMES = tuple(f.name for f in fields(FileOutcome))
_FIELD_SET = frozenset(_FIELD_NAMES)  # from_dict runs once per file in the flow process: not fields() each time
