"""Where a background server's files live, its state file, its locks, and how to tell it is alive.

Everything is under ``$PREFECT_HOME/aodncore-server/`` (one server per Prefect home, next to its ``prefect.db``):

* ``server.json`` — the running server: pid, process start time, port, API URL, a random token, start time;
* ``server.lock`` — held (exclusively, briefly) by whoever checks for, starts or stops the server;
* ``runs.lock`` — held *shared* by every run for its whole duration; the server stops for idleness only when it
  can take it exclusively (so never under a run), and holds it while stopping (so no run starts on a dying server);
* ``server.log`` — the server's own output (start-up, warnings, idle shutdown).

A state file is stale when its process is gone, or the pid now belongs to another process (after a reboot: the
kernel's process start time differs), or nothing answers with the right token on its port. Only the standard
library is used here: this runs before Prefect is imported.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "STATE_DIR_NAME",
    "FileLock",
    "ServerPaths",
    "ServerState",
    "probe_identity",
    "process_alive",
    "process_start_ticks",
    "read_state",
    "remove_state",
    "write_state",
]

STATE_DIR_NAME = "aodncore-server"
IDENTITY_PATH = "/aodncore/identity"


@dataclass(frozen=True)
class ServerPaths:
    """The files of the background server for one ``PREFECT_HOME``."""

    home: Path

    @property
    def directory(self) -> Path:
        return self.home / STATE_DIR_NAME

    @property
    def state_file(self) -> Path:
        return self.directory / "server.json"

    @property
    def lock_file(self) -> Path:
        return self.directory / "server.lock"

    @property
    def runs_lock(self) -> Path:
        return self.directory / "runs.lock"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def database(self) -> Path:
        return self.home / "prefect.db"

    def ensure_directory(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.directory


@dataclass(frozen=True)
class ServerState:
    """What ``server.json`` records about a running (or starting) background server."""

    pid: int
    port: int
    token: str
    started: float
    pid_start: int | None = None
    prefect_home: str = ""
    idle_timeout: float = 0.0
    code_stamp: str = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def read_state(paths: ServerPaths) -> ServerState | None:
    """The recorded server, or None when there is no (readable) state file."""
    try:
        data = json.loads(paths.state_file.read_text(encoding="utf-8"))
        return ServerState(**{key: data[key] for key in ServerState.__dataclass_fields__ if key in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_state(paths: ServerPaths, state: ServerState) -> None:
    """Record ``state`` atomically (readers never see a half-written file)."""
    paths.ensure_directory()
    temporary = paths.state_file.with_name(f".server.json.{os.getpid()}")
    temporary.write_text(json.dumps(asdict(state), indent=1), encoding="utf-8")
    os.replace(temporary, paths.state_file)


def remove_state(paths: ServerPaths, token: str | None = None) -> bool:
    """Remove the state file (only if it still names the server with ``token``, when given); True if removed."""
    if token is not None:
        current = read_state(paths)
        if current is None or current.token != token:
            return False
    try:
        paths.state_file.unlink()
        return True
    except FileNotFoundError:
        return False


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of process ``pid`` (Linux ``/proc``), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return int(fields[19])  # field 22 of stat(5); the list starts at field 3
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True when ``pid`` runs and (where the start time is known) is still the same process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive, but see the start time
    if start_ticks is not None:
        current = process_start_ticks(pid)
        if current is not None and current != start_ticks:
            return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class IdentityUnreachable(OSError):
    """Nothing listens on the recorded port: the state file is stale."""


def probe_identity(port: int, timeout: float) -> dict | None:
    """Ask the server on ``port`` who it is; None when it does not answer in time (e.g. still starting).

    Raises :class:`IdentityUnreachable` when the connection is refused (no server there at all). A plain HTTP/1.0
    request on a raw socket: importing ``http.client`` would cost more than the request.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"GET {IDENTITY_PATH} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except ConnectionRefusedError as error:
        raise IdentityUnreachable(errno.ECONNREFUSED, f"nothing listens on 127.0.0.1:{port}") from error
    except (TimeoutError, OSError):
        return None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        return {}
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


class FileLock:
    """An ``flock`` on a file: exclusive or shared, blocking with a timeout, released on close or process death."""

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = None
        self._held = False

    @property
    def fd(self) -> int | None:
        return self._fd

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._held

    def acquire(self, timeout: float | None = None, *, blocking: bool = True) -> bool:
        """Take the lock; False when ``blocking`` is False (or the timeout passes) and someone else holds it."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
                self._held = True
                return True
            except BlockingIOError:
                if not blocking or (deadline is not None and time.monotonic() >= deadline):
                    return False
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        self._held = False

    def __enter__(self) -> FileLock:
        if not self.acquire(timeout=120):
            raise TimeoutError(f"could not lock {self.path} within 120 s")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
