"""PostgreSQL access for the CSV harvester.

``psycopg2`` is an optional dependency (extra ``[db]``); it is imported only when a connection is opened, so the
rest of the package works without it.

Object, column and type names are written into the SQL *unquoted*, as the classic harvester did (PostgreSQL folds
them to lower case, so YAML fields such as ``SAMPLE`` and SQL files saying ``sample`` agree). They come from the
pipeline's own configuration and schema files, never from landing data; each is still checked to be a plain
(optionally schema-qualified) SQL identifier before use.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aodncore.pipeline.exceptions import InvalidSQLConnectionError, InvalidSQLTransactionError, MissingFileError
from aodncore.pipeline.log import SYSINFO
from aodncore.util.fileops import find_file
from aodncore.util.misc import format_exception

__all__ = ["DatabaseInteractions"]

# The INFO line logged as a transaction ends; handler tests look for these exact texts (compat-addendum).
_ENDING = {"commit": "Committing changes", "rollback": "Rolling back changes"}

_LOGGER = logging.getLogger(__name__)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_OBJECT_TYPE = re.compile(r"^[A-Za-z]+( [A-Za-z]+)*$")
_COLUMN_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\([0-9, ]+\))?$")
#: PostgreSQL ``to_char`` format of the temporal extent (24-hour clock, minutes: the classic used ``hh:mm``)
TEMPORAL_EXTENT_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS'


def _import_psycopg2() -> Any:
    try:
        import psycopg2
        import psycopg2.extras
    except ImportError:
        raise InvalidSQLConnectionError(
            "psycopg2 is not installed; install the 'db' extra (pip install 'aodncore[db]') to use the csv harvester"
        ) from None
    return psycopg2


def _checked(name: Any, pattern: re.Pattern, what: str) -> str:
    if not isinstance(name, str) or not pattern.match(name):
        raise InvalidSQLTransactionError(f"invalid {what} {name!r}: not a plain SQL name")
    return name


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DatabaseInteractions:
    """A PostgreSQL transaction as a context manager: commit when the block succeeds, roll back when it raises.

    ``config`` holds the ``psycopg2.connect`` keyword arguments (``host``, ``dbname``, ``user``, ``password``, ...;
    ``sslmode`` defaults to ``prefer``). ``schema_base_path`` is searched for the ``<name>[.*].yaml`` table schemas
    and ``<name>[.*].sql`` scripts. ``status`` is one of ``initiated``, ``connected``, ``committed``,
    ``rolled_back``. Inside the ``with`` block ``_conn`` and ``_cur`` (a ``DictCursor``) are set.
    """

    def __init__(self, config: dict, schema_base_path: str, logger: Any = None) -> None:
        self.config = config
        self.schema_base_path: str = schema_base_path
        self._logger = logger if logger is not None else _LOGGER
        self._conn: Any = None
        self._cur: Any = None
        self.status = "initiated"

    def __repr__(self) -> str:
        # never show the connection parameters: they contain the password
        return f"DatabaseInteractions(status={self.status!r})"

    # earlier names of the private attributes
    connection = property(lambda self: self._conn, doc="The open connection (``_conn``).")
    cursor = property(lambda self: self._cur, doc="The open cursor (``_cur``).")
    logger = property(lambda self: self._logger, doc="The logger (``_logger``).")

    # -- transaction ----------------------------------------------------------------------------------------------

    def __enter__(self) -> DatabaseInteractions:
        psycopg2 = _import_psycopg2()
        try:
            self._conn = psycopg2.connect(**{"sslmode": "prefer", **dict(self.config or {})})
        except Exception as exc:  # noqa: BLE001 - any failure to connect (bad keys included) is a connection error
            raise InvalidSQLConnectionError(f"unable to connect to the database: {self._safe(exc)}") from None
        self._cur = self._conn.cursor(cursor_factory=psycopg2.extras.DictCursor)
        self.status = "connected"
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        psycopg2 = _import_psycopg2()
        try:
            if exc_type is None:
                self._logger.info(_ENDING["commit"])
                try:
                    self._conn.commit()
                except psycopg2.Error as commit_exc:
                    self._conn.rollback()
                    self.status = "rolled_back"
                    raise InvalidSQLTransactionError(f"commit failed: {self._safe(commit_exc)}") from None
                self.status = "committed"
            else:
                self._logger.info(_ENDING["rollback"])
                self._conn.rollback()
                self.status = "rolled_back"
        finally:
            try:
                self._cur.close()
            finally:
                self._conn.close()
        return False

    def _safe(self, exc: BaseException) -> str:
        text = format_exception(exc)
        password = (self.config or {}).get("password")
        return text.replace(str(password), "***") if password else text

    def _execute(self, statement: str, params: Any = None) -> None:
        psycopg2 = _import_psycopg2()
        self._logger.log(SYSINFO, "executing SQL: %s", statement)
        try:
            self._cur.execute(statement, params)
        except psycopg2.Error as exc:
            raise InvalidSQLTransactionError(f"database statement failed: {self._safe(exc)}") from None
        self._logger.log(SYSINFO, "SQL status: %s", self._cur.statusmessage)

    @staticmethod
    def _name(step: dict) -> str:
        return _checked(step["name"], _IDENTIFIER, "db object name")

    # -- runsheet tasks -------------------------------------------------------------------------------------------

    def compare_schemas(self) -> bool:
        """Whether the configured ingest type can be used as is (always True: schema comparison is not done)."""
        return True

    def truncate_table(self, step: dict) -> None:
        """``TRUNCATE`` the step's object if it is a table."""
        if step["type"] == "table":
            self._execute(f"TRUNCATE TABLE {self._name(step)}")

    def refresh_materialized_view(self, step: dict) -> None:
        """``REFRESH`` the step's object if it is a materialized view."""
        if step["type"] == "materialized view":
            self._execute(f"REFRESH MATERIALIZED VIEW {self._name(step)}")

    def drop_object(self, step: dict) -> None:
        """``DROP <type> IF EXISTS <name> CASCADE`` (any object type)."""
        object_type = _checked(step["type"], _OBJECT_TYPE, "db object type")
        name = self._name(step)
        self._logger.info("Dropping %s %s", object_type, name)
        self._execute(f"DROP {object_type.upper()} IF EXISTS {name} CASCADE")

    def load_data_from_csv(self, step: dict) -> None:
        """``COPY`` the step's CSV file (``step['local_path']``, UTF-8, with header) into its table."""
        local_path = step.get("local_path")
        if not local_path:
            return
        psycopg2 = _import_psycopg2()
        statement = f"COPY {self._name(step)} FROM STDIN WITH HEADER CSV"
        self._logger.log(SYSINFO, "executing SQL: %s", statement)
        try:
            with open(local_path, encoding="utf-8") as handle:
                self._cur.copy_expert(statement, handle)
        except FileNotFoundError:
            raise MissingFileError(f"CSV file '{local_path}' for db object '{step['name']}' not found") from None
        except psycopg2.Error as exc:
            raise InvalidSQLTransactionError(f"loading '{local_path}' failed: {self._safe(exc)}") from None

    def _schema_file(self, name: str, extensions: str) -> str | None:
        # "<name>", optionally ".<anything>", then the extension, at the end of the file name; case-insensitive
        return find_file(self.schema_base_path, rf"{re.escape(name)}(\..*)?\.{extensions}$")

    def execute_sql_file(self, step: dict) -> None:
        """Run the first ``<name>[.*].sql`` file under the schema base path as one batch (none: nothing to do)."""
        path = self._schema_file(step["name"], "sql")
        if path is not None:
            with open(path, encoding="utf-8") as handle:
                self._execute(handle.read())

    def create_table_from_yaml_file(self, step: dict) -> None:
        """``CREATE TABLE`` for a table from the first ``<name>[.*].yml|yaml`` schema under the schema base path.

        The schema is the YAML document's ``schema`` entry (a table-schema *resource*) or the whole document (a bare
        schema). Without a YAML file nothing is created.
        """
        if step["type"] != "table":
            return
        path = self._schema_file(step["name"], "(yml|yaml)")
        if path is None:
            return
        import yaml

        from aodncore.table import get_field_type, get_tableschema_descriptor

        with open(path, encoding="utf-8") as handle:
            descriptor = get_tableschema_descriptor(yaml.safe_load(handle), "schema")
        columns = [
            f"{_checked(field['name'], _IDENTIFIER, 'column name')} "
            f"{_checked(get_field_type(field.get('type', 'any')), _COLUMN_TYPE, 'column type')}"
            for field in descriptor["fields"]
        ]
        primary_key = descriptor.get("primaryKey")
        if primary_key:
            keys = [primary_key] if isinstance(primary_key, str) else list(primary_key)
            columns.append(f"PRIMARY KEY ({','.join(_checked(k, _IDENTIFIER, 'key name') for k in keys)})")
        self._execute(f"CREATE TABLE {self._name(step)} ({','.join(columns)})")

    # -- extents for metadata -------------------------------------------------------------------------------------

    def _fetchone(self, statement: str, params: Any = None) -> Any:
        self._execute(statement, params)
        return self._cur.fetchone()

    def get_spatial_extent(self, db_schema: str, table: str, column: str, resolution: Any) -> Any:
        """Row with key ``boundingpolygonasgml3``: the GML polygon bounding ``column`` of ``table`` (database
        function ``BoundingPolygonAsGml3``)."""
        return self._fetchone("SELECT BoundingPolygonAsGml3(%s, %s, %s, %s)", (db_schema, table, column, resolution))

    def get_temporal_extent(self, table: str, column: str) -> Any:
        """Row with keys ``min_value``/``max_value``: UTC minimum and maximum of ``column`` (``YYYY-MM-DDTHH:MM:SS``;
        None for an empty table). The column name is double-quoted (case-sensitive)."""
        column_sql = '"' + column.replace('"', '""') + '"'
        fmt = _literal(TEMPORAL_EXTENT_FORMAT)
        return self._fetchone(
            f"SELECT to_char(min({column_sql}) AT TIME ZONE 'UTC', {fmt}) AS min_value, "
            f"to_char(max({column_sql}) AT TIME ZONE 'UTC', {fmt}) AS max_value "
            f"FROM {_checked(table, _IDENTIFIER, 'table name')}"
        )

    def get_vertical_extent(self, table: str, column: str) -> Any:
        """Row with keys ``min_value``/``max_value``: minimum and maximum of ``column`` (None for an empty table)."""
        column_sql = _checked(column, _IDENTIFIER, "column name")
        return self._fetchone(
            f"SELECT min({column_sql}) AS min_value, max({column_sql}) AS max_value "
            f"FROM {_checked(table, _IDENTIFIER, 'table name')}"
        )
