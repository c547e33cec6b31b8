"""A real ``prefect server start`` for the tests of deployment, state and event behaviour (one per session).

``PrefectServer.start()`` runs ``python -m prefect server start`` on a free loopback port with its own
``PREFECT_HOME`` (a temporary folder, SQLite database there), the UI off, telemetry off and every service that
automations and triggers need on; it waits for ``/api/health``. ``stop()`` sends SIGINT (Prefect's clean shutdown)
and ``start()`` again brings the same server back on the same port and database (used to test outages).

Clients in the test process should be created with :meth:`PrefectServer.client` (explicit URL, so they never
talk to the session's ``prefect_test_harness``); processes the tests start get :meth:`PrefectServer.env`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

_SERVICES = ("TRIGGERS", "ACTIONS", "EVENT_PERSISTER", "SCHEDULER", "LATE_RUNS", "FOREMAN", "TASK_RUN_RECORDER")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_environment() -> dict[str, str]:
    """This process's environment without Prefect settings (the test session's own, or a CLI test's)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}


class PrefectServer:
    """One ``prefect server start`` process; ``api_url`` is its API (``http://127.0.0.1:<port>/api``)."""

    def __init__(self, startup_timeout: float = 120.0) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="aodncore-prefect-server-"))
        self.home = self.base / "server-home"
        self.client_home = self.base / "client-home"  # PREFECT_HOME of processes the tests start
        self.home.mkdir()
        self.client_home.mkdir()
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.base / "server.log"

    def _server_env(self) -> dict[str, str]:
        env = _clean_environment()
        env.update({
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            # automations react within a second or two
            "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true",
            "PREFECT_SERVER_SERVICES_LATE_RUNS_AFTER_SECONDS": "PT5S",
        })
        for service in _SERVICES:
            env[f"PREFECT_SERVER_SERVICES_{service}_ENABLED"] = "true"
        return env

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a process that must use this server (and no server of its own)."""
        env = _clean_environment()
        env.update({
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.client_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        })
        env.update(extra)
        return env

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def start(self) -> PrefectServer:
        """Start the server (again) and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self._server_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.healthy():
                return self
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"prefect server did not answer within {self.startup_timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server cleanly (SIGINT, as Ctrl-C), killing it only if it does not stop in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @contextmanager
    def client(self):
        """A synchronous Prefect client of this server (whatever the test session's own settings are)."""
        from prefect.client.orchestration import SyncPrefectClient

        with SyncPrefectClient(self.api_url) as client:
            yield client
