"""The environment variables that steer the background Prefect server, with their defaults (one home for them).

* ``AODNCORE_PREFECT_SERVER`` (default ``background``): ``background`` = one local server per ``PREFECT_HOME``,
  started by the first run and reused by later ones; ``ephemeral`` = a private server for each run, stopped at its
  end (Prefect's own mode).
* ``AODNCORE_SERVER_IDLE_TIMEOUT`` (default ``1800``): seconds without API requests and without a run in progress
  after which the background server stops; ``0`` = never.
* ``AODNCORE_SERVER_PORT`` (default ``0``): loopback port of the background server; ``0`` = any free port (a
  taken port falls back to a free one, with a warning).
* ``AODNCORE_WARM_RUNNER`` (default ``1``): ``0`` turns off the warm runner (runs forked from a pre-imported
  process; Linux only).
* ``AODNCORE_SERVER_FAST_EVENTS`` (default ``1``): ``0`` keeps Prefect's own event writer and task-run recorder in
  the background server (see :mod:`.fastevents`).
* ``AODNCORE_SERVER_FAST_BUS`` (default ``1``): ``0`` makes the event persister parse every bus message itself
  (see :mod:`.fastbus`; off with ``AODNCORE_SERVER_FAST_EVENTS=0`` too).
* ``AODNCORE_SERVER_FAST_EVENT_ROWS`` (default ``1``): ``0`` has SQLAlchemy bind the event writer's rows (see
  :mod:`.fastrows`; off with ``AODNCORE_SERVER_FAST_EVENTS=0`` too).
* ``AODNCORE_SERVER_FAST_LOGS`` (default ``1``): ``0`` keeps Prefect's own log writer in the background server
  (see :mod:`.fastlogs`).
* ``AODNCORE_SERVER_FAST_DOCKET`` (default ``1``): ``0`` keeps docket's polling intervals for the background server's
  task worker (see :mod:`.fastdocket`).
* ``AODNCORE_SERVER_FAST_ROUTES`` (default ``1``): ``0`` keeps FastAPI's own request routing (see :mod:`.fastroutes`).
* ``AODNCORE_SERVER_FAST_MIDDLEWARE`` (default ``1``): ``0`` keeps Prefect's ``default_content_type`` inside
  Starlette's ``BaseHTTPMiddleware`` (see :mod:`.fastmiddleware`).

None of them matter when the user points Prefect at a server of their own (``PREFECT_API_URL``).

:func:`is_secret_variable` says which of a run's variables never reach the long-lived background processes (the
server and the warm runner): credentials are the run's own, not theirs.
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "ENV_FAST_BUS",
    "ENV_FAST_DOCKET",
    "ENV_FAST_EVENTS",
    "ENV_FAST_EVENT_ROWS",
    "ENV_FAST_LOGS",
    "ENV_FAST_MIDDLEWARE",
    "ENV_FAST_ROUTES",
    "ENV_IDLE_TIMEOUT",
    "ENV_PORT",
    "ENV_SERVER_MODE",
    "ENV_WARM_RUNNER",
    "background_supported",
    "configured_port",
    "idle_timeout",
    "is_secret_variable",
    "server_mode",
    "warm_runner_enabled",
]

ENV_SERVER_MODE = "AODNCORE_PREFECT_SERVER"
ENV_IDLE_TIMEOUT = "AODNCORE_SERVER_IDLE_TIMEOUT"
ENV_PORT = "AODNCORE_SERVER_PORT"
ENV_WARM_RUNNER = "AODNCORE_WARM_RUNNER"
ENV_FAST_EVENTS = "AODNCORE_SERVER_FAST_EVENTS"
ENV_FAST_BUS = "AODNCORE_SERVER_FAST_BUS"
ENV_FAST_EVENT_ROWS = "AODNCORE_SERVER_FAST_EVENT_ROWS"
ENV_FAST_LOGS = "AODNCORE_SERVER_FAST_LOGS"
ENV_FAST_DOCKET = "AODNCORE_SERVER_FAST_DOCKET"
ENV_FAST_ROUTES = "AODNCORE_SERVER_FAST_ROUTES"
ENV_FAST_MIDDLEWARE = "AODNCORE_SERVER_FAST_MIDDLEWARE"

DEFAULT_IDLE_TIMEOUT = 1800.0
"""Seconds of no API traffic and no run in progress before the background server stops (30 minutes)."""

MODES = ("background", "ephemeral")


class ServerSettingError(ValueError):
    """An ``AODNCORE_*`` server variable has a value that cannot be used."""


def background_supported() -> bool:
    """The background server needs POSIX file locks and sessions (Linux, macOS); elsewhere runs are ephemeral."""
    return os.name == "posix"


def server_mode() -> str:
    """``background`` or ``ephemeral`` (``AODNCORE_PREFECT_SERVER``; ephemeral where background is unsupported)."""
    mode = (os.environ.get(ENV_SERVER_MODE) or "background").strip().lower()
    if mode not in MODES:
        raise ServerSettingError(f"{ENV_SERVER_MODE}={mode!r}: expected one of {', '.join(MODES)}")
    return mode if background_supported() else "ephemeral"


def idle_timeout() -> float:
    """Idle shutdown delay in seconds (``AODNCORE_SERVER_IDLE_TIMEOUT``); 0 means the server never stops by itself."""
    raw = os.environ.get(ENV_IDLE_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_IDLE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ServerSettingError(f"{ENV_IDLE_TIMEOUT}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise ServerSettingError(f"{ENV_IDLE_TIMEOUT}={raw!r}: must not be negative")
    return value


def configured_port() -> int:
    """The requested loopback port (``AODNCORE_SERVER_PORT``), 0 for any free port."""
    raw = os.environ.get(ENV_PORT, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > 65535:
        raise ServerSettingError(f"{ENV_PORT}={raw!r}: expected a port number (0-65535)")
    return int(raw)


_SERVER_OWN_SECRETS = ("PREFECT_SERVER_", "PREFECT_API_DATABASE_")
"""The server's own settings (its database URL and password, its API auth string): it needs them."""


def is_secret_variable(name: str, value: str) -> bool:
    """True for a credential the background server does not need: a secret-looking name
    (:data:`aodncore.prefect.credentials.SECRET_WORDS`) or a URI with a password, except the server's own settings."""
    from urllib.parse import urlsplit

    from aodncore.prefect.credentials import SECRET_WORDS

    if name.startswith(_SERVER_OWN_SECRETS):
        return False
    if any(word in name.lower() for word in SECRET_WORDS):
        return True
    if "://" in value:
        try:
            return bool(urlsplit(value).password)
        except ValueError:
            return True  # unparseable: do not hand it on
    return False


def warm_runner_enabled() -> bool:
    """True unless ``AODNCORE_WARM_RUNNER`` is 0/false/no/off, and only on Linux (abstract sockets, fork)."""
    raw = os.environ.get(ENV_WARM_RUNNER, "1").strip().lower()
    return sys.platform == "linux" and raw not in ("0", "false", "no", "off")
