"""prepare_prefect_environment: only unset variables change; migrations skipped only on a current database."""

import json
import os
import sqlite3

import pytest
from ingest_helpers import restore_process_state  # noqa: F401

from aodncore.prefect import runtime


@pytest.fixture
def clean_env(monkeypatch):
    """No PREFECT_/AODNCORE_ variables; the whole environment is restored afterwards (the code under test sets
    variables itself, which monkeypatch alone would not undo)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("PREFECT_", "AODNCORE_")):
            monkeypatch.delenv(name)
    yield monkeypatch
    os.environ.clear()
    os.environ.update(saved)


def test_sets_home_and_defaults_but_respects_user_values(clean_env, tmp_path):
    clean_env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "true")
    applied = runtime.prepare_prefect_environment(tmp_path / "home")
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "home") and (tmp_path / "home").is_dir()
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true"  # the user's choice stays
    assert "PREFECT_SERVER_ANALYTICS_ENABLED" not in applied
    assert os.environ["PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"] == "false"
    assert "PREFECT_API_DATABASE_MIGRATE_ON_START" not in os.environ  # no database yet


def test_real_server_url_leaves_server_settings_alone(clean_env, tmp_path):
    clean_env.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    applied = runtime.prepare_prefect_environment(tmp_path)
    assert set(applied) <= {"PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW"}
    assert "PREFECT_HOME" not in os.environ


def _fake_db(path, revision):
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num TEXT)")
        connection.execute("INSERT INTO alembic_version VALUES (?)", (revision,))


def test_migrations_skipped_only_at_the_installed_head(clean_env, tmp_path):
    head = runtime._migration_head()
    assert head and len(head) >= 8
    old = tmp_path / "old"
    old.mkdir()
    _fake_db(old / "prefect.db", "0000000000aa")
    runtime.prepare_prefect_environment(old)
    assert "PREFECT_API_DATABASE_MIGRATE_ON_START" not in os.environ

    clean_env.delenv("PREFECT_HOME")
    current = tmp_path / "current"
    current.mkdir()
    _fake_db(current / "prefect.db", head)
    runtime.prepare_prefect_environment(current)
    assert os.environ["PREFECT_API_DATABASE_MIGRATE_ON_START"] == "false"


def test_user_configured_url_in_profile_is_detected(clean_env, tmp_path):
    clean_env.setenv("PREFECT_HOME", str(tmp_path))
    clean_env.chdir(tmp_path)
    assert not runtime._user_configured_api_url()
    (tmp_path / "profiles.toml").write_text('active = "work"\n[profiles.work]\nPREFECT_API_URL = "http://h/api"\n')
    assert runtime._user_configured_api_url()


EARLY_CHILD = r"""
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("rt", sys.argv[1])
rt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rt)
url = rt.start_server_early()
assert url and os.environ["PREFECT_API_URL"] == url, url
import asyncio
from prefect import flow
assert rt.wait_for_server(120)

@flow
async def trivial():
    return 41 + 1

assert asyncio.run(trivial()) == 42
print("PID", rt._early_server.pid, flush=True)
"""


@pytest.mark.prefect
def test_start_server_early_serves_flows_and_stops_at_exit(clean_env, tmp_path):
    import subprocess
    import sys
    import time

    clean_env.setenv("PREFECT_HOME", str(tmp_path / "home"))
    clean_env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    done = subprocess.run([sys.executable, "-c", EARLY_CHILD, runtime.__file__], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Starting temporary server" not in done.stderr + done.stdout  # Prefect did not start a second one
    pid = int(done.stdout.split("PID", 1)[1].split()[0])
    for _ in range(50):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}"), "the server child outlived its parent"


def test_a_configured_api_url_means_nothing_is_started(clean_env, tmp_path):
    clean_env.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    clean_env.setenv("PREFECT_HOME", str(tmp_path))
    api = runtime.start_prefect_api()
    assert (api.mode, api.url) == ("user", None)
    assert api.wait() is None
    api.release()
    assert os.environ["PREFECT_API_URL"] == "http://prefect.example:4200/api"
    assert not (tmp_path / "aodncore-server").exists()


def test_an_api_url_in_dotenv_counts_as_configured(clean_env, tmp_path):
    clean_env.setenv("PREFECT_HOME", str(tmp_path))
    clean_env.chdir(tmp_path)
    (tmp_path / ".env").write_text("OTHER=1\nPREFECT_API_URL=\n")
    assert not runtime._user_configured_api_url()
    (tmp_path / ".env").write_text('export PREFECT_API_URL="http://h:4200/api"\n')
    assert runtime._user_configured_api_url()


def test_an_unknown_server_mode_is_a_one_line_usage_error(clean_env, tmp_path, capsys):
    from aodncore.cli import main

    clean_env.setenv("PREFECT_HOME", str(tmp_path / "home"))
    clean_env.setenv("AODNCORE_PREFECT_SERVER", "sometimes")
    # a Prefect test harness elsewhere in the session would count as a configured server
    clean_env.setattr(runtime, "user_api_url_configured", lambda: False)
    assert main(["ingest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "AODNCORE_PREFECT_SERVER" in err, err
    assert not (tmp_path / "home" / "aodncore-server").exists()


def test_one_shot_run_settings_drop_the_heartbeat_and_point_at_the_api():
    from prefect.settings import get_current_settings

    before = get_current_settings()
    with runtime.one_shot_run_settings("http://127.0.0.1:9/api"):
        inside = get_current_settings()
        assert inside.flows.heartbeat_frequency is None
        assert inside.api.url == "http://127.0.0.1:9/api"
        if "ui_url" not in before.model_fields_set:
            assert inside.ui_url == "http://127.0.0.1:9"  # flow-run links point at the same server
    assert get_current_settings() is before


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_under_the_prefect_test_harness_ingest_records_there_and_starts_no_server(clean_env, tmp_path, capsys):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    from aodncore.cli import main

    clean_env.setenv("PREFECT_HOME", str(tmp_path / "home"))
    landing = tmp_path / "landing"
    landing.mkdir()

    assert main(["ingest", str(landing), "--base-dir", str(tmp_path / "base")]) == 0

    assert "no files found" in capsys.readouterr().out
    with get_client(sync_client=True) as client:  # the harness's server
        latest = client.read_flow_runs(sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=5)
    assert any(str(landing) in json.dumps(run.parameters, default=str) for run in latest), latest
    assert not (tmp_path / "home" / "aodncore-server").exists()  # no background server was started
