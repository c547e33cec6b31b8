"""The shared PostgreSQL fixture really serves isolated databases."""

import psycopg2
import pytest


def test_server_answers_and_databases_are_fresh(postgres_server, postgres_db):
    with psycopg2.connect(**postgres_db.connect_kwargs) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE marker (x int)")
        cur.execute("SELECT current_database(), current_user")
        assert cur.fetchone() == (postgres_db.dbname, "postgres")
    conn.close()
    other = postgres_server.create_database()
    try:
        with psycopg2.connect(other.dsn) as conn2, conn2.cursor() as cur:
            cur.execute("SELECT to_regclass('marker')")
            assert cur.fetchone() == (None,)
        conn2.close()
    finally:
        postgres_server.drop_database(other.dbname)


def test_dropped_database_is_gone(postgres_server):
    database = postgres_server.create_database()
    conn = psycopg2.connect(**database.connect_kwargs)  # still connected: the drop must end the session
    postgres_server.drop_database(database.dbname)
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(**database.connect_kwargs)
    conn.close()
