"""The shared ingest-record backend: a PostgreSQL database that workers on several machines use together.

Claims are made with ``INSERT … ON CONFLICT (source_uri) DO UPDATE … WHERE <expired or ours> RETURNING``, so two
claimers never both win an object, and lease expiry is measured by the database server's clock (the machines'
clocks may differ). Needs ``psycopg2`` (``pip install 'aodncore[db]'``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .base import IngestRecord, schema_statements

__all__ = ["PostgresIngestRecord", "redact_url"]

_SCHEMA_LOCK = 0x6A6F_6463_6F72  # pg_advisory_xact_lock key: concurrent first runs create the tables once


def redact_url(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresIngestRecord(IngestRecord):
    """The ingest record in a PostgreSQL database (``postgresql://user[:password]@host[:port]/dbname``).

    The tables are created if missing. The password may also come from ``PGPASSWORD`` or ``~/.pgpass`` (libpq).
    """

    placeholder = "%s"

    def __init__(self, dsn: str, *, connect_timeout: int = 10) -> None:
        super().__init__()
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        try:
            import psycopg2  # noqa: F401
        except ImportError as error:  # pragma: no cover - depends on the installation
            raise ImportError("a PostgreSQL ingest record needs psycopg2: pip install 'aodncore[db]'") from error
        self._create_schema(self._connection())

    @property
    def url(self) -> str:
        return redact_url(self._dsn)

    def _connect(self) -> Any:
        import psycopg2

        dsn = self._dsn.replace("postgresql+psycopg2://", "postgresql://", 1)
        return psycopg2.connect(dsn, connect_timeout=self._connect_timeout,
                                application_name="aodncore-ingest-record")

    def _begin(self, cursor: Any) -> None:
        """psycopg2 opens the transaction with the first statement (READ COMMITTED; claims rely on row locks)."""

    def _end_read(self, connection: Any) -> None:
        connection.rollback()  # never leave a session idle in a transaction

    def _now(self, cursor: Any) -> float:
        cursor.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8")
        return float(cursor.fetchone()[0])

    def _create_schema(self, connection: Any) -> None:
        with connection.cursor() as cursor:
            try:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in schema_statements("BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION"):
                    cursor.execute(statement)
            except BaseException:
                connection.rollback()
                raise
        connection.commit()

    def __getstate__(self) -> dict[str, Any]:
        return {"dsn": self._dsn, "connect_timeout": self._connect_timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["dsn"], connect_timeout=state["connect_timeout"])  # type: ignore[misc]
