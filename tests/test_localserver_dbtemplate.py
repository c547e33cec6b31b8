"""The shipped database template gives the same database as Prefect's own migrations, and is used only when safe."""

from __future__ import annotations

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
