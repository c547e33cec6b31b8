"""Make Prefect's ephemeral server start as fast as it can.

With no ``PREFECT_API_URL`` Prefect starts a temporary API server (a ``uvicorn`` child process with a SQLite
database under ``PREFECT_HOME``) the first time a client is needed. Measured on a 2-core machine
(``benchmarks/bench_prefect_startup.py``, results in ``benchmarks/results/``) the cost is dominated by that child:
``import prefect.server.api.server`` alone takes ~2.5 s (FastAPI, SQLAlchemy, every router, docket), migrations
on a fresh database ~7 s, migration checks on an existing one ~0.7 s; the parent also imports ``prefect.server``
(~1.3 s on top of ``import prefect``) just to launch the child, and waits for it doing nothing else.

* :func:`prepare_prefect_environment` sets environment variables *only where the user has not set them*:

  - ``PREFECT_HOME`` to a persistent folder (database, migrations and block-registration memo survive between
    runs: a fresh home costs ~7 s of migrations every time);
  - ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` (no telemetry heartbeat, no "database is locked" noise);
  - the server services a one-shot ingest does not need switched off (triggers, event logger, scheduler, late
    runs, foreman, cancellation clean-up, pause expirations); the task-run recorder and the event persister stay
    on so history is kept;
  - ``PREFECT_API_DATABASE_MIGRATE_ON_START=false`` when the SQLite database in ``PREFECT_HOME`` is already at
    the newest migration shipped with the installed Prefect (its ``alembic_version`` row is compared with the
    head of Prefect's migration files, so an upgrade of Prefect makes the migrations run again);
  - ``PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW=ignore`` (library records outside a run are not errors).

  It must run before ``import prefect``: Prefect reads its settings once, at import (variables set later only
  reach the server child). With a user-configured ``PREFECT_API_URL`` it leaves the server settings alone.

* :func:`start_server_early` (the fastest path) launches the same server child at the very start of the
  process, before Prefect is imported, and points ``PREFECT_API_URL`` at it: the child's ~3 s start overlaps with
  importing Prefect, the checkers and listing the landing area, the parent never imports ``prefect.server``, and
  on Linux the child dies with its parent even on SIGTERM/SIGKILL. Call :func:`wait_for_server` before the first
  flow. Measured, warm home, no other work: first trivial flow done 4.8-5.8 s after process start against
  7.7-9.5 s with Prefect's defaults (of which ~1.1 s is the sync-flow heartbeat floor, not start-up).

* :func:`warm_up_server_in_background` is the fallback when Prefect is already imported: Prefect's own ephemeral
  server started in a daemon thread (saves the overlap only, ~1 s).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "DEFAULT_PREFECT_ENV",
    "default_prefect_home",
    "prepare_prefect_environment",
    "warm_up_server_in_background",
    "wait_for_server",
    "start_server_early",
    "stop_early_server",
]

logger = logging.getLogger(__name__)

#: Server-side settings applied (unless set by the user) when Prefect runs its ephemeral server.
DEFAULT_PREFECT_ENV: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_LOGGER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}

_warm_up_thread: threading.Thread | None = None
_warm_up_lock = threading.Lock()


def default_prefect_home() -> Path:
    """The persistent Prefect home used when neither the caller nor ``PREFECT_HOME`` chooses one."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "aodncore" / "prefect"


def _migration_head() -> str | None:
    """The newest SQLite migration revision shipped with the installed Prefect (read without importing it)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "server/database/_migrations/versions/sqlite"
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in folder.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if match := re.search(r"^revision\s*=\s*[\"']([0-9a-f]+)[\"']", text, re.M):
            revisions.add(match.group(1))
        if match := re.search(r"^down_revision\s*=\s*(.+)$", text, re.M):
            parents.update(re.findall(r"[0-9a-f]{8,}", match.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _database_is_current(database: Path) -> bool:
    """True when the SQLite database exists and is already at the installed Prefect's newest migration."""
    if not database.is_file():
        return False
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == _migration_head()


def prepare_prefect_environment(home: Path | None = None) -> dict[str, str]:
    """Set the Prefect environment variables that make the ephemeral server start fast.

    Call this before Prefect is imported (or at least before its settings are first read). Only variables the
    user has not set are changed. ``home`` is the persistent ``PREFECT_HOME`` to use when ``PREFECT_HOME`` is not
    set (default :func:`default_prefect_home`). Returns the variables that were set.
    """
    applied: dict[str, str] = {}
    if "prefect" in sys.modules:
        logger.debug("prefect is already imported: the settings below reach the server child process only")

    def _set(name: str, value: str) -> None:
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value

    if os.environ.get("PREFECT_API_URL"):
        # A real server: its own configuration rules; only the client-side nicety applies.
        _set("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
        return applied

    if "PREFECT_HOME" not in os.environ:
        chosen = Path(home) if home is not None else default_prefect_home()
        chosen.mkdir(parents=True, exist_ok=True)
        _set("PREFECT_HOME", str(chosen))
    prefect_home = Path(os.environ["PREFECT_HOME"]).expanduser()

    for name, value in DEFAULT_PREFECT_ENV.items():
        _set(name, value)

    uses_default_database = not (
        os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL")
        or os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL")
    )
    if uses_default_database and _database_is_current(prefect_home / "prefect.db"):
        _set("PREFECT_API_DATABASE_MIGRATE_ON_START", "false")

    if applied:
        logger.debug("Prefect environment prepared: %s", ", ".join(sorted(applied)))
    return applied


def _start_server() -> None:
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    SubprocessASGIServer().start()  # the same singleton ``get_client()`` will use


def warm_up_server_in_background() -> threading.Thread | None:
    """Start Prefect's ephemeral server in a daemon thread; return the thread (None with a real API URL).

    Safe to call more than once. The first Prefect client created later in the process reuses the running
    server (``SubprocessASGIServer`` is a per-port singleton and Prefect's client asks for the default one).
    """
    global _warm_up_thread
    if os.environ.get("PREFECT_API_URL"):
        return None
    with _warm_up_lock:
        if _warm_up_thread is None:

            def _run() -> None:
                try:
                    _start_server()
                except Exception as exc:  # the flow start will retry and report properly
                    logger.warning("background start of the Prefect server failed: %s", exc)

            _warm_up_thread = threading.Thread(target=_run, name="aodncore-prefect-warm-up", daemon=True)
            _warm_up_thread.start()
        return _warm_up_thread


def wait_for_server(timeout: float | None = None) -> bool:
    """Wait for a background warm-up (if one was started) to finish; True when no warm-up is still running.

    Call this before the first flow run when :func:`warm_up_server_in_background` was used: Prefect's client
    does not wait for a server another thread is still starting.
    """
    if _early_server is not None:
        return _wait_for_early_server(timeout)
    thread = _warm_up_thread
    if thread is None:
        return True
    thread.join(timeout)
    return not thread.is_alive()


# -- launching the ephemeral server ourselves, before Prefect is imported -------------------------------------------

_early_server: subprocess.Popen[bytes] | None = None
_early_url: str | None = None


def _user_configured_api_url() -> bool:
    """True when the user points Prefect at a server (environment, active profile, prefect.toml, pyproject)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(profiles.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        data = {}
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    if data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"):
        return True
    for name, section in (("prefect.toml", ()), ("pyproject.toml", ("tool", "prefect"))):
        try:
            config = tomllib.loads(Path(name).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for part in section:
            config = config.get(part, {})
        if isinstance(config.get("api"), dict) and config["api"].get("url"):
            return True
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def start_server_early(home: Path | None = None) -> str | None:
    """Start Prefect's API server child *now*, without importing Prefect, and point ``PREFECT_API_URL`` at it.

    This is the same server Prefect's ephemeral mode would start (``uvicorn`` running
    ``prefect.server.api.server:create_app`` in ephemeral mode, SQLite in ``PREFECT_HOME``), but started at the
    very beginning of the process so that its start-up overlaps with importing Prefect and listing the landing
    area, and the parent never has to import ``prefect.server``. Call it from the main thread before Prefect is
    imported, then call :func:`wait_for_server` before the first flow. The server is stopped at exit and, on
    Linux, also when the parent dies (even by SIGTERM/SIGKILL). Returns the API URL, or None (nothing started)
    when the user configured a Prefect API URL.
    """
    global _early_server, _early_url
    if _early_server is not None:
        return _early_url
    if _user_configured_api_url():
        return None
    if "prefect" in sys.modules:
        # Prefect read its settings at import: a PREFECT_API_URL set now would be ignored and Prefect would
        # start a second server. Fall back to starting Prefect's own ephemeral server in the background.
        prepare_prefect_environment(home)
        warm_up_server_in_background()
        return None
    prepare_prefect_environment(home)
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        return None
    app_dir = str(Path(spec.origin).parent.parent)
    port = _free_port()
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    command = [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory",
               "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "error", "--lifespan", "on"]
    _early_server = subprocess.Popen(command, env=env,
                                     preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    _early_url = f"http://127.0.0.1:{port}/api"
    os.environ["PREFECT_API_URL"] = _early_url
    atexit.register(stop_early_server)
    return _early_url


def _wait_for_early_server(timeout: float | None) -> bool:
    assert _early_server is not None and _early_url is not None
    deadline = time.monotonic() + (timeout if timeout is not None else 120.0)
    while time.monotonic() < deadline:
        if _early_server.poll() is not None:
            raise RuntimeError(f"the Prefect API server exited with code {_early_server.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{_early_url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    return False


def stop_early_server() -> None:
    """Stop the server started by :func:`start_server_early` (also registered with ``atexit``)."""
    global _early_server
    process, _early_server = _early_server, None
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
