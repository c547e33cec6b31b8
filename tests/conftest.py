"""Shared pytest fixtures: real IMOS data, a real S3 endpoint (moto server) and the Prefect test harness."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import urllib.request
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"
IMOS_DIR = DATA_DIR / "imos"

# The tests never use the developer's Prefect home (~/.prefect, ~/.local/share/aodncore/prefect): the session gets
# one of its own, set before anything imports Prefect. A background Prefect server that a test starts without a
# home of its own stops by itself after 2 idle minutes, and every one left under the session's folders is stopped
# when the session ends (pytest_sessionfinish).
SESSION_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="aodncore-tests-prefect-home-"))
os.environ["PREFECT_HOME"] = str(SESSION_PREFECT_HOME)
os.environ.setdefault("AODNCORE_SERVER_IDLE_TIMEOUT", "120")

# Some tests press Ctrl-C on a command they started (SIGINT). A process started in the background by a shell without
# job control (`nohup ... &`, `cmd &` in a script) begins with SIGINT ignored, and every process it starts inherits
# that: the command would never see the Ctrl-C. The tests' commands get the disposition a terminal gives them.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _background_server_homes(root: Path) -> list[Path]:
    homes = []
    for folder, subfolders, files in os.walk(root):
        if os.path.basename(folder) == "aodncore-server" and "server.json" in files:
            homes.append(Path(folder).parent)
            subfolders.clear()
    return homes


def pytest_sessionfinish(session):
    """Stop every background Prefect server the session left running, and drop the session's Prefect home."""
    from aodncore.prefect.localserver.control import stop_server

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    roots = [SESSION_PREFECT_HOME]
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        try:
            roots.append(factory.getbasetemp())
        except (OSError, ValueError):
            pass
    for root in roots:
        for home in _background_server_homes(root):
            stopped = stop_server(home)
            if stopped is not None and reporter is not None:
                reporter.write_line(f"note: a test left the background Prefect server of {home} running "
                                    f"(pid {stopped.pid}): stopped")
    shutil.rmtree(SESSION_PREFECT_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def imos_dir() -> Path:
    """Folder of real IMOS files (read-only: copy before modifying)."""
    return IMOS_DIR


@pytest.fixture
def imos_file(tmp_path):
    """Return a function copying one real IMOS data file into a fresh temp dir and returning its path."""

    def _copy(name: str, dest_dir: Path | None = None) -> Path:
        target_dir = dest_dir or tmp_path
        target_dir.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(IMOS_DIR / name, target_dir / name))

    return _copy


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3-compatible HTTP endpoint (moto's ThreadedMotoServer) reached through AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield url
    server.stop()


@pytest.fixture
def s3(moto_endpoint):
    """A boto3 S3 client on the moto endpoint; the server state is wiped after each test."""
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    yield client
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).close()


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect API (temporary SQLite database) for the whole session; request it only where needed."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL cluster for the whole session (``tests/pgserver.py``); skips if PostgreSQL is missing.

    Yields a ``pgserver.PostgresServer``: ``.database`` (host, port, user, dbname, dsn, url, connect_kwargs) is its
    maintenance database; ``.create_database()`` / ``.drop_database(name)`` manage others.
    """
    from pgserver import start_server

    try:
        server = start_server()
    except LookupError as missing:
        pytest.skip(f"PostgreSQL is not installed: {missing}")
    yield server
    server.stop()


@pytest.fixture
def postgres_db(postgres_server):
    """A fresh, empty database on the session's cluster, dropped after the test (a ``pgserver.PostgresDatabase``)."""
    database = postgres_server.create_database()
    yield database
    postgres_server.drop_database(database.dbname)


@pytest.fixture
def checks_in_process(monkeypatch):
    """Run compliance checks in the test process instead of a capped child: for tests that change checkers at run
    time (monkeypatched methods, suites registered by hand), which a child started by the fork host cannot see."""
    from aodncore.limits import CheckLimits
    from aodncore.pipeline.steps import check

    monkeypatch.setattr(check, "check_limits", lambda config=None: CheckLimits(memory_bytes=0, timeout_seconds=0))


@pytest.fixture(scope="session")
def prefect_server():
    """A real ``prefect server start`` on a free loopback port for the whole session (``tests/prefectserver.py``);
    only for tests of deployment, state and event behaviour — the rest use ``prefect_harness``."""
    from prefectserver import PrefectServer

    server = PrefectServer().start()
    yield server
    server.close()
