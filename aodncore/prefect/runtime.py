"""Where a run's flow runs are recorded, and getting that Prefect API up as fast as possible.

:func:`start_prefect_api` decides, once per run, before Prefect is imported:

* **the user's server** — ``PREFECT_API_URL`` in the environment, the active profile, ``prefect.toml``,
  ``pyproject.toml`` or ``.env`` (or already in Prefect's settings, e.g. a test harness): used as it is, nothing
  else happens;
* **the background server** (default) — one local Prefect server per ``PREFECT_HOME``, started by the first run
  and reused by later ones, stopping after an idle time (:mod:`aodncore.prefect.localserver`);
* **ephemeral** (``AODNCORE_PREFECT_SERVER=ephemeral``) — a private server for this run only, launched at the
  very start of the process (:func:`start_server_early`) and gone with it, also on SIGTERM/SIGKILL.

``PrefectApi.wait()`` then blocks until the API answers, just before the first flow. Measured on 2 cores
(``benchmarks/bench_startup.py``): ``import prefect.server.api.server`` alone costs ~2× ``import prefect``,
migrating a new database ~8 s (a template makes it 40 ms, see :mod:`.localserver.dbtemplate`), registering block
types ~1 s; a run against a running server pays none of it.

* :func:`prepare_prefect_environment` sets environment variables *only where the user has not set them*:
  ``PREFECT_HOME`` (a persistent folder, :func:`default_prefect_home`), telemetry off, the server services a
  one-shot ingest does not need off (the task-run recorder and event persister stay on), migrations off when the
  database is already at the installed Prefect's newest revision, and
  ``PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW=ignore``. It must run before ``import prefect``: Prefect reads its
  settings at import. With a user-configured ``PREFECT_API_URL`` it leaves the server settings alone.
* :func:`one_shot_run_settings` is the settings context for the CLI's single flow run: no crash-detection
  heartbeat (it adds ~1 s at the end of a synchronous flow), built by copying the current settings (re-reading
  them through pydantic-settings costs ~0.2 s).
* :func:`warm_up_server_in_background` is the fallback when Prefect is already imported: Prefect's own ephemeral
  server started in a daemon thread.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aodncore.prefect.localserver import dbtemplate

__all__ = [
    "DEFAULT_PREFECT_ENV",
    "PrefectApi",
    "RUN_MODULES",
    "background_client_defaults",
    "default_prefect_home",
    "end_of_startup",
    "import_run_modules",
    "one_shot_run_settings",
    "prepare_prefect_environment",
    "quiet_prefect_console",
    "start_prefect_api",
    "start_prefect_api_early",
    "start_server_early",
    "stop_early_server",
    "user_api_url_configured",
    "wait_for_server",
    "warm_up_server_in_background",
]

logger = logging.getLogger(__name__)

#: Server-side settings applied (unless set by the user) to the servers aodncore starts.
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
    return dbtemplate.installed_migration_head()


def _database_is_current(database: Path) -> bool:
    """True when the SQLite database exists and is already at the installed Prefect's newest migration."""
    revision = dbtemplate.database_revision(database)
    return revision is not None and revision == _migration_head()


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
    """True when the user points Prefect at a server (environment, active profile, prefect.toml, pyproject, .env)."""
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
    return _dotenv_sets_api_url(Path(".env"))


def _dotenv_sets_api_url(path: Path) -> bool:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    for line in lines:
        name, _, value = line.strip().removeprefix("export ").partition("=")
        if name.strip() == "PREFECT_API_URL" and value.strip().strip("\"'"):
            return True
    return False


def quiet_prefect_console() -> None:
    """Prefect's console handlers quiet (unless the user set them): the per-file table says what happened to each
    file; run/task records would repeat it (with state reprs)."""
    for handler_name, level in (("CONSOLE", "WARNING"), ("CONSOLE_FLOW_RUNS", "CRITICAL"),
                                ("CONSOLE_TASK_RUNS", "CRITICAL")):
        os.environ.setdefault(f"PREFECT_LOGGING_HANDLERS_{handler_name}_LEVEL", level)


def user_api_url_configured() -> bool:
    """True when this run must use the user's Prefect server as it is (configured, or set in Prefect's settings)."""
    if _user_configured_api_url():
        return True
    if "prefect" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return bool(PREFECT_API_URL.value())
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
    import urllib.error
    import urllib.request

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


# -- choosing and starting this run's API -------------------------------------------------------------------------


class PrefectApi:
    """The Prefect API this run records its flow runs in: ``user``, ``background`` or ``ephemeral``."""

    def __init__(self, mode: str, url: str | None = None, server: Any = None) -> None:
        self.mode = mode
        self.url = url
        self.server = server  # the BackgroundServer in background mode

    def __repr__(self) -> str:
        return f"PrefectApi(mode={self.mode!r}, url={self.url!r})"

    def wait(self, timeout: float | None = None) -> str | None:
        """Block until the API answers (no-op for the user's server); the URL to use."""
        if self.mode == "background":
            self.server.wait(**({} if timeout is None else {"timeout": timeout}))
        elif self.mode == "ephemeral" and not wait_for_server(timeout):
            raise RuntimeError("the ephemeral Prefect API server did not start in time")
        return self.url

    def release(self) -> None:
        """This run is over: drop its lease on the background server, or stop the ephemeral one."""
        if self.mode == "background":
            self.server.release()
        elif self.mode == "ephemeral":
            stop_early_server()


_early_api: PrefectApi | None = None
_SERVER_CSRF = ("PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED", "PREFECT_SERVER_CSRF_PROTECTION_ENABLED")


def background_client_defaults() -> None:
    """Client settings for the background server: no CSRF token requests (2 per run) unless its protection is on."""
    if not any(name in os.environ for name in _SERVER_CSRF):
        os.environ.setdefault("PREFECT_CLIENT_CSRF_SUPPORT_ENABLED", "false")


def start_prefect_api_early() -> None:
    """:func:`start_prefect_api` at the very start of the process (the launcher); the next call returns its result.

    Errors (a bad setting, an unwritable home) are left for that call to report.
    """
    global _early_api
    from aodncore.prefect.localserver.settings import ServerSettingError

    try:
        _early_api = start_prefect_api()
    except (ServerSettingError, OSError):  # reported by the command's own call
        _early_api = None


def start_prefect_api(home: Path | None = None) -> PrefectApi:
    """Choose where this run's flow runs go and start that server if needed, without waiting (see module doc).

    Call before Prefect is imported: in background and ephemeral mode ``PREFECT_API_URL`` is set for the rest of
    the process (when Prefect is already imported, use :func:`one_shot_run_settings` with the returned URL).
    """
    global _early_api
    if _early_api is not None:
        api, _early_api = _early_api, None
        return api
    from aodncore.prefect.localserver.settings import server_mode

    if user_api_url_configured():
        os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # the client-side nicety only
        return PrefectApi("user")
    if server_mode() == "ephemeral":
        url = start_server_early(home)
        return PrefectApi("ephemeral" if url else "user", url)
    from aodncore.prefect.localserver.control import BackgroundServer

    chosen = Path(os.environ.get("PREFECT_HOME") or home or default_prefect_home()).expanduser()
    server = BackgroundServer(chosen).start()  # snapshots the environment before anything below changes it
    os.environ.setdefault("PREFECT_HOME", str(server.home))
    if "prefect" not in sys.modules:
        os.environ["PREFECT_API_URL"] = server.api_url
    background_client_defaults()
    prepare_prefect_environment(home)
    return PrefectApi("background", server.api_url, server)


@contextmanager
def one_shot_run_settings(api_url: str | None = None) -> Iterator[None]:
    """Prefect settings for one flow run in this process: no heartbeat thread, and ``api_url`` if given."""
    from prefect.context import SettingsContext
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    updates: dict[str, Any] = {"flows": settings.flows.model_copy(update={"heartbeat_frequency": None})}
    if api_url and settings.api.url != api_url:
        updates["api"] = settings.api.model_copy(update={"url": api_url})
        if "ui_url" not in settings.model_fields_set:  # derived from the API URL, as Prefect derives it
            updates["ui_url"] = api_url.removesuffix("/api")
    context = SettingsContext.get()
    with SettingsContext(profile=context.profile, settings=settings.model_copy(update=updates)):
        yield


# -- the imports of a run -----------------------------------------------------------------------------------------

RUN_MODULES = (
    "prefect",
    "prefect.flows",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.task_runners",
    "prefect.client.orchestration",
    "prefect.events.worker",
    "prefect.logging.handlers",
    "prefect.artifacts",
    "prefect.runtime.flow_run",
    "prefect.utilities.visualization",
    "fastapi.encoders",
    "click",
    "typer",
    "rich.console",
    "rich.markup",
    "rich.progress",
    "rich.table",
    "jsonschema",
    "aodncore.prefect.flows",
    "aodncore.prefect.tasks",
    "aodncore.ingest.configure",
    "aodncore.ingest.runner",
    "aodncore.ingest.ledger",
    "aodncore.ingest.sources",
    "aodncore.pipeline.handlerbase",
    "aodncore.pipeline.imoshandler",
    "aodncore.pipeline.defaultconfig",
)
"""What an ``aodncore ingest`` run imports before its first file, some of it only inside the first flow call
(``fastapi.encoders`` for the parameters, ``graphviz``, the events worker). Not ``aodncore.cli``: its consoles look
at the terminal when they are created."""


def import_run_modules() -> None:
    """Import :data:`RUN_MODULES` now: while the API server is still starting, rather than after it answers."""
    import importlib

    for name in RUN_MODULES:
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - an optional module; the run imports what it needs
            logger.debug("not imported ahead: %s (%s)", name, error)


def end_of_startup() -> None:
    """Turn the cyclic garbage collector back on if the launcher paused it for the imports (15% of their CPU).

    What was imported is moved out of the collector's sight (``gc.freeze``), so later collections stay cheap.
    """
    import gc

    if not gc.isenabled():
        gc.enable()
        gc.freeze()
