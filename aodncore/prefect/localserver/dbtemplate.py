"""A new Prefect home's SQLite database in 40 ms instead of ~8 s of migrations.

Prefect creates its database by running its ~115 Alembic migrations one by one; on a 2-core machine that is ~8 s of
CPU, the largest part of a first run. The result is always the same empty schema, so this package ships it: a SQL
dump (``prefect_sqlite_<revision>.sql``, made by :func:`build_template` from a database that Prefect's own
migrations created) that is replayed into a new ``prefect.db``. The replayed database is the same — tables,
columns, constraints, indexes, rows (just ``alembic_version``) and pragmas — as a freshly migrated one, which
``tests/test_localserver_dbtemplate.py`` checks (up to the order of table constraints in the stored SQL, which
Prefect's migrations themselves do not keep: two migrations from scratch differ in it).

When the installed Prefect is newer than the template, the template is still used and Prefect's start-up runs only
the migrations after the template's revision. When the template's revision is unknown to the installed Prefect
(an older Prefect, or one whose migration history changed) or replaying it fails, nothing is created, a warning says
so, and Prefect migrates from scratch as usual. Rebuild the template after a Prefect
upgrade with ``python -m aodncore.prefect.localserver.dbtemplate build``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = [
    "create_database_from_template",
    "database_revision",
    "installed_migration_head",
    "installed_revisions",
    "template_file",
    "build_template",
]

_TEMPLATE_GLOB = "prefect_sqlite_*.sql"
_HERE = Path(__file__).parent

logger = logging.getLogger(__name__)


def _migrations_folder() -> Path | None:
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "server/database/_migrations/versions/sqlite"


@functools.lru_cache(maxsize=1)
def installed_revisions() -> dict[str, set[str]]:
    """Every SQLite migration revision shipped with the installed Prefect and its parents (read, not imported)."""
    folder = _migrations_folder()
    graph: dict[str, set[str]] = {}
    if folder is None:
        return graph
    for path in folder.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*=\s*[\"']([0-9a-f]+)[\"']", text, re.M)
        if revision is None:
            continue
        parents = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
        graph[revision.group(1)] = set(re.findall(r"[0-9a-f]{8,}", parents.group(1))) if parents else set()
    return graph


def installed_migration_head() -> str | None:
    """The newest SQLite migration revision of the installed Prefect (None if there is not exactly one head)."""
    graph = installed_revisions()
    heads = set(graph) - {parent for parents in graph.values() for parent in parents}
    return heads.pop() if len(heads) == 1 else None


def database_revision(database: Path) -> str | None:
    """The Alembic revision a SQLite database is at, None if it has none (or is not readable)."""
    if not database.is_file():
        return None
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def template_file() -> Path | None:
    """The shipped template (one ``prefect_sqlite_<revision>.sql``), None if missing."""
    found = sorted(_HERE.glob(_TEMPLATE_GLOB))
    return found[-1] if found else None


def _template_revision(path: Path) -> str:
    return path.stem.removeprefix("prefect_sqlite_")


def create_database_from_template(database: Path) -> str | None:
    """Create ``database`` from the shipped template if it does not exist; the template's revision, or None.

    Nothing happens (None) when the database exists, there is no template, the installed Prefect does not know
    the template's revision, or replaying it fails: Prefect then creates the database with its own migrations, and
    a log line (``aodncore.prefect.localserver.dbtemplate``) says why. The new file appears atomically (a link of a
    complete temporary database), so neither a concurrent creator nor a crash ever leaves half a database.
    """
    if database.exists():
        return None
    template = template_file()
    if template is None:
        logger.info("no database template shipped: Prefect migrates %s from scratch", database)
        return None
    revision = _template_revision(template)
    if revision not in installed_revisions():
        logger.warning("database template %s is at revision %s, unknown to the installed Prefect (newest revision "
                       "%s): not used, Prefect migrates %s from scratch (slower first start; rebuild the template "
                       "with `python -m aodncore.prefect.localserver.dbtemplate build`)", template.name, revision,
                       installed_migration_head(), database)
        return None
    database.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".prefect-db-", dir=database.parent)
    os.close(descriptor)
    try:
        try:
            _replay(template, Path(temporary))
        except (sqlite3.Error, OSError, UnicodeDecodeError) as error:
            logger.warning("database template %s could not be replayed (%s): not used, Prefect migrates %s from "
                           "scratch", template.name, error, database)
            return None
        try:
            os.link(temporary, database)  # fails if someone else created it meanwhile: theirs wins
        except FileExistsError:
            return None
        return revision
    finally:
        for leftover in (temporary, f"{temporary}-wal", f"{temporary}-shm"):
            try:
                os.unlink(leftover)
            except FileNotFoundError:
                pass


def _replay(template: Path, target: Path) -> None:
    """Run the template's SQL into ``target`` and check the result names the template's revision."""
    connection = sqlite3.connect(target)
    try:
        connection.executescript(template.read_text(encoding="utf-8"))
        connection.execute("PRAGMA journal_mode=WAL")
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        connection.close()
    if row is None or row[0] != _template_revision(template):
        raise sqlite3.DatabaseError(f"the replayed database is at revision {row[0] if row else None}")


_MIGRATE = """
import asyncio
from prefect.server.database import provide_database_interface
asyncio.run(provide_database_interface().create_db())
"""


def migrate_fresh_database(home: Path) -> Path:
    """Let Prefect create and migrate a database in ``home`` (a subprocess, Prefect's own code); its path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    subprocess.run([sys.executable, "-c", _MIGRATE], env=env, check=True, cwd=home, capture_output=True)
    return home / "prefect.db"


def dump_database(database: Path) -> str:
    """A replayable SQL dump of a SQLite database (schema and rows)."""
    connection = sqlite3.connect(database)
    try:
        return "\n".join(connection.iterdump()) + "\n"
    finally:
        connection.close()


def build_template(output_dir: Path = _HERE) -> Path:
    """Migrate a fresh database with the installed Prefect and store its dump as the template; its path."""
    with tempfile.TemporaryDirectory(prefix="aodncore-dbtemplate-") as home:
        database = migrate_fresh_database(Path(home))
        revision = database_revision(database)
        if revision is None:
            raise RuntimeError("Prefect's migrations left no alembic_version")
        target = output_dir / f"prefect_sqlite_{revision}.sql"
        target.write_text(dump_database(database), encoding="utf-8")
    for old in output_dir.glob(_TEMPLATE_GLOB):
        if old != target:
            old.unlink()
    return target


if __name__ == "__main__":  # pragma: no cover - maintenance command
    if sys.argv[1:] != ["build"]:
        sys.exit("usage: python -m aodncore.prefect.localserver.dbtemplate build")
    print(build_template())
