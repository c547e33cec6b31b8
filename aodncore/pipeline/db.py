"""PostgreSQL access for the CSV harvester.

``psycopg2`` is an optional dependency (extra ``[db]``); it is imported only when a connection is opened, so the
rest of the package works without it.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from aodncore.pipeline.exceptions import InvalidSQLConnectionError, InvalidSQLTransactionError, MissingFileError
from aodncore.util.misc import format_exception

__all__ = ["DatabaseInteractions"]

_DROPPABLE_TYPES = {"table": "TABLE", "view": "VIEW", "materialized view": "MATERIALIZED VIEW"}
_LOGGER = logging.getLogger(__name__)


def _import_psycopg2() -> Any:
    try:
        import psycopg2
        import psycopg2.sql
    except ImportError:
        raise InvalidSQLConnectionError(
            "psycopg2 is not installed; install the 'db' extra (pip install 'aodncore[db]') to use the csv harvester"
        ) from None
    return psycopg2


def _find_schema_file(base_path: str, name: str, extension_pattern: str) -> str | None:
    """First file below ``base_path`` (sorted walk) named ``<name>[.<anything>].<extension>``, case-insensitive."""
    pattern = re.compile(rf"{re.escape(name)}(\..*)?\.{extension_pattern}$", re.IGNORECASE)
    for root, dirs, files in os.walk(base_path):
        dirs.sort()
        for filename in sorted(files):
            if pattern.match(filename):
                return os.path.join(root, filename)
    return None


class DatabaseInteractions:
    """A PostgreSQL transaction as a context manager: commit when the block succeeds, roll back when it raises.

    ``config`` holds the ``psycopg2.connect`` keyword arguments (``host``, ``dbname``, ``user``, ``password``, ...;
    ``sslmode`` defaults to ``prefer``). ``schema_base_path`` is searched for the ``<name>.yaml`` table schemas and
    ``<name>.sql`` scripts. ``status`` is one of ``initiated``, ``connected``, ``committed``, ``rolled_back``.
    """

    def __init__(self, config: dict, schema_base_path: str, logger: Any = None) -> None:
        self.config = config
        self.schema_base_path: str = schema_base_path
        self.logger = logger if logger is not None else _LOGGER
        self.connection: Any = None
        self.cursor: Any = None
        self.status = "initiated"

    def __repr__(self) -> str:
        # never show the connection parameters: they contain the password
        return f"DatabaseInteractions(status={self.status!r})"

    # -- transaction ----------------------------------------------------------------------------------------------

    def __enter__(self) -> DatabaseInteractions:
        psycopg2 = _import_psycopg2()
        params = {"sslmode": "prefer", **self.config}
        try:
            self.connection = psycopg2.connect(**params)
        except psycopg2.Error as exc:
            raise InvalidSQLConnectionError(f"unable to connect to the database: {self._safe(exc)}") from None
        self.cursor = self.connection.cursor()
        self.status = "connected"
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        psycopg2 = _import_psycopg2()
        try:
            if exc_type is None:
                try:
                    self.connection.commit()
                except psycopg2.Error as commit_exc:
                    self.connection.rollback()
                    self.status = "rolled_back"
                    raise InvalidSQLTransactionError(f"commit failed: {self._safe(commit_exc)}") from None
                self.status = "committed"
            else:
                self.connection.rollback()
                self.status = "rolled_back"
        finally:
            try:
                self.cursor.close()
            finally:
                self.connection.close()
        return False

    def _safe(self, exc: BaseException) -> str:
        text = format_exception(exc)
        password = (self.config or {}).get("password")
        return text.replace(password, "***") if password else text

    def _execute(self, statement: Any, params: Any = None) -> None:
        psycopg2 = _import_psycopg2()
        try:
            self.cursor.execute(statement, params)
        except psycopg2.Error as exc:
            raise InvalidSQLTransactionError(f"database statement failed: {self._safe(exc)}") from None

    @staticmethod
    def _identifier(name: str) -> Any:
        from psycopg2 import sql

        return sql.Identifier(*name.split("."))

    # -- runsheet tasks -------------------------------------------------------------------------------------------

    def compare_schemas(self) -> bool:
        """Whether the configured ingest type can be used as is (always True: schema comparison is not done)."""
        return True

    def truncate_table(self, step: dict) -> None:
        """``TRUNCATE`` the step's object if it is a table."""
        if step["type"] != "table":
            return
        from psycopg2 import sql

        self._execute(sql.SQL("TRUNCATE TABLE {}").format(self._identifier(step["name"])))

    def refresh_materialized_view(self, step: dict) -> None:
        """``REFRESH`` the step's object if it is a materialized view."""
        if step["type"] != "materialized view":
            return
        from psycopg2 import sql

        self._execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(self._identifier(step["name"])))

    def drop_object(self, step: dict) -> None:
        """``DROP <type> IF EXISTS <name> CASCADE``."""
        from psycopg2 import sql

        try:
            object_type = _DROPPABLE_TYPES[step["type"]]
        except KeyError:
            raise InvalidSQLTransactionError(
                f"cannot drop db object '{step['name']}' of type '{step['type']}'"
            ) from None
        self._execute(
            sql.SQL("DROP {} IF EXISTS {} CASCADE").format(sql.SQL(object_type), self._identifier(step["name"]))
        )

    def load_data_from_csv(self, step: dict) -> None:
        """``COPY`` the step's CSV file (``step['local_path']``, UTF-8, with header) into its table."""
        local_path = step.get("local_path")
        if not local_path:
            return
        psycopg2 = _import_psycopg2()
        from psycopg2 import sql

        statement = sql.SQL("COPY {} FROM STDIN WITH HEADER CSV").format(self._identifier(step["name"]))
        try:
            with open(local_path, encoding="utf-8") as handle:
                self.cursor.copy_expert(statement, handle)
        except FileNotFoundError:
            raise MissingFileError(f"CSV file '{local_path}' for db object '{step['name']}' not found") from None
        except psycopg2.Error as exc:
            raise InvalidSQLTransactionError(f"loading '{local_path}' failed: {self._safe(exc)}") from None

    def execute_sql_file(self, step: dict) -> None:
        """Run the first ``<name>[.*].sql`` file under the schema base path (required for non-table objects)."""
        path = _find_schema_file(self.schema_base_path, step["name"], "sql")
        if path is None:
            if step["type"] != "table":
                raise MissingFileError(f"no SQL file for db object '{step['name']}' under '{self.schema_base_path}'")
            return
        with open(path, encoding="utf-8") as handle:
            self._execute(handle.read())

    def create_table_from_yaml_file(self, step: dict) -> None:
        """``CREATE TABLE`` from the first ``<name>[.*].yml|yaml`` table schema under the schema base path."""
        if step["type"] != "table":
            return
        import yaml
        from psycopg2 import sql

        from aodncore.util.ff import get_field_type, get_tableschema_descriptor

        path = _find_schema_file(self.schema_base_path, step["name"], "(yml|yaml)")
        if path is None:
            raise MissingFileError(f"no table schema for db object '{step['name']}' under '{self.schema_base_path}'")
        with open(path, encoding="utf-8") as handle:
            descriptor = get_tableschema_descriptor(yaml.safe_load(handle), step["name"])
        columns = [
            sql.SQL("{} {}").format(sql.Identifier(field["name"]), sql.SQL(get_field_type(field.get("type", "any"))))
            for field in descriptor["fields"]
        ]
        primary_key = descriptor.get("primaryKey")
        if primary_key:
            keys = [primary_key] if isinstance(primary_key, str) else primary_key
            columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, keys))))
        self._execute(
            sql.SQL("CREATE TABLE {} ({})").format(self._identifier(step["name"]), sql.SQL(", ").join(columns))
        )

    # -- extents for metadata -------------------------------------------------------------------------------------

    def _fetchone(self, statement: Any, params: Any = None) -> Any:
        self._execute(statement, params)
        return self.cursor.fetchone()

    def get_spatial_extent(self, db_schema: str, table: str, column: str, resolution: int) -> Any:
        """GML polygon bounding ``column`` of ``table`` (database function ``BoundingPolygonAsGml3``)."""
        row = self._fetchone("SELECT BoundingPolygonAsGml3(%s, %s, %s, %s)", (db_schema, table, column, resolution))
        return row[0] if row else None

    def get_temporal_extent(self, table: str, column: str) -> tuple[str | None, str | None]:
        """(min, max) of ``column`` in UTC, formatted ``YYYY-MM-DDThh:mm:ss``."""
        from psycopg2 import sql

        fmt = 'YYYY-MM-DD"T"HH24:MI:SS'
        statement = sql.SQL(
            "SELECT to_char(min({col}) AT TIME ZONE 'UTC', {fmt}), to_char(max({col}) AT TIME ZONE 'UTC', {fmt}) "
            "FROM {table}"
        ).format(col=sql.Identifier(column), fmt=sql.Literal(fmt), table=self._identifier(table))
        row = self._fetchone(statement)
        return (row[0], row[1]) if row else (None, None)

    def get_vertical_extent(self, table: str, column: str) -> tuple[Any, Any]:
        """(min, max) of ``column``."""
        from psycopg2 import sql

        statement = sql.SQL("SELECT min({col}), max({col}) FROM {table}").format(
            col=sql.Identifier(column), table=self._identifier(table)
        )
        row = self._fetchone(statement)
        return (row[0], row[1]) if row else (None, None)
