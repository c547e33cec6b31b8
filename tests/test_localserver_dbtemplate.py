"""The shipped database template gives the same database as Prefect's own migrations, and is used only when safe."""

from __future__ import annotations

import logging
import os
import sqlite3

import pytest

from aodncore.prefect.localserver import dbtemplate


def _items(sql: str | None) -> tuple:
    """A CREATE statement as its head and the set of its top-level items: Prefect's migrations write the table
    constraints in an order that changes from run to run (two migrations from scratch differ in it)."""
    if not sql or "(" not in sql:
        return (sql,)
    head, body = sql.split("(", 1)
    body, depth, item, items = body.rsplit(")", 1)[0], 0, "", []
    for char in body:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(" ".join(item.split()))
            item = ""
        else:
            item += char
    items.append(" ".join(item.split()))
    return (" ".join(head.split()), tuple(sorted(items)))


def _snapshot(path) -> tuple:
    connection = sqlite3.connect(path)
    try:
        schema = [(kind, name, table, _items(sql)) for kind, name, table, sql in
                  connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")]
        rows = {name: connection.execute(f'SELECT * FROM "{name}"').fetchall()
                for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        names = ("user_version", "application_id", "encoding", "page_size", "auto_vacuum", "journal_mode")
        pragmas = {name: connection.execute(f"PRAGMA {name}").fetchall() for name in names}
    finally:
        connection.close()
    return schema, rows, pragmas


def test_the_template_revision_is_known_to_the_installed_prefect():
    template = dbtemplate.template_file()
    assert template is not None
    assert template.stem.removeprefix("prefect_sqlite_") in dbtemplate.installed_revisions()


@pytest.mark.slow
def test_template_then_prefect_migrations_equals_prefect_migrations_from_scratch(tmp_path):
    from_template, from_scratch = tmp_path / "template", tmp_path / "scratch"
    from_template.mkdir()
    from_scratch.mkdir()
    assert dbtemplate.create_database_from_template(from_template / "prefect.db")
    # Prefect upgrades the templated database to its head (a no-op when the template is current)
    dbtemplate.migrate_fresh_database(from_template)
    dbtemplate.migrate_fresh_database(from_scratch)

    assert _snapshot(from_template / "prefect.db") == _snapshot(from_scratch / "prefect.db")
    assert dbtemplate.database_revision(from_template / "prefect.db") == dbtemplate.installed_migration_head()


def test_an_existing_database_is_never_replaced(tmp_path):
    database = tmp_path / "prefect.db"
    database.write_bytes(b"someone's data")
    assert dbtemplate.create_database_from_template(database) is None
    assert database.read_bytes() == b"someone's data"


def test_a_template_the_installed_prefect_does_not_know_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(dbtemplate, "installed_revisions", lambda: {"0123456789ab": set()})
    assert dbtemplate.create_database_from_template(tmp_path / "prefect.db") is None
    assert not (tmp_path / "prefect.db").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


@pytest.fixture
def server_environment(monkeypatch):
    """No Prefect variables; whatever ``prepare_environment`` sets is undone afterwards."""
    saved = dict(os.environ)
    for name in [key for key in os.environ if key.startswith(("PREFECT_", "AODNCORE_"))]:
        monkeypatch.delenv(name)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_prefect_that_does_not_know_the_template_migrates_from_scratch_and_says_so(
        tmp_path, monkeypatch, caplog, server_environment):
    from aodncore.prefect.localserver import supervisor
    from aodncore.prefect.localserver.state import ServerPaths

    monkeypatch.setattr(dbtemplate, "installed_revisions", lambda: {"0123456789ab": set()})
    with caplog.at_level(logging.INFO, logger="aodncore.prefect.localserver"):
        supervisor.prepare_environment(ServerPaths(tmp_path), port=4200)

    assert not (tmp_path / "prefect.db").exists()  # Prefect's own migrations create it
    assert "PREFECT_SERVER_DATABASE_MIGRATE_ON_START" not in os.environ  # and they are not switched off
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unknown to the installed Prefect" in warnings[0].getMessage()


def test_a_template_that_fails_to_replay_leaves_no_database_and_says_so(tmp_path, monkeypatch, caplog):
    revision = dbtemplate.installed_migration_head()
    broken = tmp_path / "templates" / f"prefect_sqlite_{revision}.sql"
    broken.parent.mkdir()
    broken.write_text("BEGIN TRANSACTION;\nCREATE TABLE alembic_version (version_num VARCHAR(32));\nNOT SQL;\n")
    monkeypatch.setattr(dbtemplate, "template_file", lambda: broken)
    home = tmp_path / "home"

    with caplog.at_level(logging.WARNING, logger="aodncore.prefect.localserver"):
        assert dbtemplate.create_database_from_template(home / "prefect.db") is None

    assert list(home.iterdir()) == []  # no database, no temporary file
    assert "could not be replayed" in caplog.text


def test_a_new_home_gets_the_template_and_migrations_run_only_if_prefect_is_newer(tmp_path, server_environment):
    from aodncore.prefect.localserver import supervisor
    from aodncore.prefect.localserver.state import ServerPaths

    supervisor.prepare_environment(ServerPaths(tmp_path), port=4200)

    template_revision = dbtemplate.template_file().stem.removeprefix("prefect_sqlite_")
    assert dbtemplate.database_revision(tmp_path / "prefect.db") == template_revision
    current = template_revision == dbtemplate.installed_migration_head()
    assert (os.environ.get("PREFECT_SERVER_DATABASE_MIGRATE_ON_START") == "false") == current
    assert os.environ["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
