"""The embedded ingest-record backend: a SQLite file on this machine (WAL mode, busy timeout).

Right for one machine (threads and processes share it safely); several machines need the PostgreSQL backend.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from .base import IngestRecord, schema_statements

__all__ = ["SqliteIngestRecord"]


class SqliteIngestRecord(IngestRecord):
    """The ingest record in a SQLite database file (created with its folder if missing).

    ``readonly=True`` opens an existing record for look-ups only (``--dry-run``): nothing is created or written,
    not even SQLite's ``-wal``/``-shm`` files while no writer has them open.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0, readonly: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self._timeout = timeout
        self._readonly = readonly
        if readonly:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._create_schema(self._connection())

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _connect(self) -> Any:
        if self._readonly:
            # immutable while no writer is active (no -wal file): reads the file as it is and creates nothing
            mode = "ro" if Path(f"{self.path}-wal").exists() else "ro&immutable=1"
            return sqlite3.connect(f"{self.path.absolute().as_uri()}?mode={mode}", uri=True, timeout=self._timeout,
                                   isolation_level=None, check_same_thread=False)
        connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                     check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    def _begin(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")  # take the write lock now: claims must not interleave

    def _now(self, cursor: Any) -> float:
        return time.time()

    def _create_schema(self, connection: Any) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in schema_statements("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL"):
                connection.execute(statement)
        except BaseException:
            connection.rollback()
            raise
        connection.commit()

    def __getstate__(self) -> dict[str, Any]:
        # connections and locks stay behind: a copy in another process opens its own
        return {"path": self.path, "timeout": self._timeout, "readonly": self._readonly}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], timeout=state["timeout"],  # type: ignore[misc]
                      readonly=state.get("readonly", False))
