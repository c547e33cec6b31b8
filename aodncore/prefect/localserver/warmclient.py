"""The launcher's side of the warm runner: hand ``aodncore ingest`` to a pre-imported process, or say no.

A run handed over is the same command in a fresh process forked from the warm runner (see :mod:`.warmrunner`):
it gets this process's stdin/stdout/stderr (so it writes straight to the terminal or the caller's pipes), its
run lease, environment, working directory, umask, limits, ``sys.argv`` and ``sys.path``; signals sent to this
process are passed on (Ctrl-C, hangup, quit, stop/continue to the run's process group as a terminal would;
SIGTERM, SIGWINCH, SIGUSR1/2 to the run's process), and this process exits with the run's exit status (or dies
of the run's signal). Only the import of Prefect and aodncore
(~1-2 s) is saved.

Nothing is handed over — the command runs in this process as usual — unless every input the pre-imported modules
depend on is the same as the warm runner's: the Python executable, interpreter flags and ``sys.path``, every
``PREFECT_*``, ``PYTHON*``, locale and ``AODNCORE_*`` variable (aodncore's credentials excepted: read when used,
they never reach the runner), no ``prefect.toml``/``pyproject.toml``/``.env`` in
the working directory, and installed code unchanged since the runner started (it checks its files' times).
``--verbose``, ``--help`` and ``--dry-run`` runs, other commands, and any user-configured ``PREFECT_API_URL``
always run here.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["delegate", "environment_fingerprint", "runner_address"]

PROTOCOL = 1
HANDOVER_TIMEOUT = 10.0
"""Seconds to wait for the runner to accept (fork) a run before running it here instead."""

_FINGERPRINT_PREFIXES = ("PREFECT_", "PYTHON", "LC_", "AODNCORE_")
_FINGERPRINT_NAMES = ("LANG", "LANGUAGE")
_FINGERPRINT_IGNORED = ("PREFECT_HOME", "AODNCORE_SERVER_IDLE_TIMEOUT", "AODNCORE_SERVER_PORT",
                        "AODNCORE_WARM_RUNNER", "AODNCORE_PREFECT_SERVER")
_IGNORED_FLAGS = ("safe_path",)  # the runner runs with -P; only its sub-processes' sys.path[0] differs
_CWD_CONFIG = ("prefect.toml", "pyproject.toml", ".env")
_RUN_HERE = ("-v", "--verbose", "--help", "-h", "--dry-run")
"""Options that keep ``ingest`` in this process (console logging set up differently; no Prefect at all)."""
_TO_GROUP = ("SIGINT", "SIGHUP", "SIGQUIT", "SIGCONT")
"""Signals a terminal sends to its whole foreground group (in-process, the CLI's worker processes get them too)."""
_TO_PROCESS = ("SIGTERM", "SIGWINCH", "SIGUSR1", "SIGUSR2")
"""Signals meant for the command's process only (``kill PID``, window size changes)."""


def runner_address(home: Path) -> str:
    """The warm runner's socket for a Prefect home (Linux abstract namespace: no file to go stale)."""
    digest = hashlib.sha256(str(Path(home).expanduser().absolute()).encode()).hexdigest()[:24]
    return f"\0aodncore-warm-runner-{digest}"


def environment_fingerprint(environ: Mapping[str, str], path: list[str]) -> str:
    """A digest of everything the runner's pre-imported modules depend on (see the module doc)."""
    from aodncore.prefect.localserver.settings import is_secret_variable

    # aodncore's credentials (read when used, never at import) are left out: the runner never has them (see
    # control.server_environment) and each run brings its own; Prefect's stay in, so a run with e.g. an API key the
    # runner lacks (its settings were read at import) runs in its own process
    variables = {key: value for key, value in environ.items()
                 if (key.startswith(_FINGERPRINT_PREFIXES) or key in _FINGERPRINT_NAMES)
                 and key not in _FINGERPRINT_IGNORED
                 and not (key.startswith("AODNCORE_") and is_secret_variable(key, value))}
    flags = {name: getattr(sys.flags, name) for name in dir(sys.flags)
             if not name.startswith("_") and name not in _IGNORED_FLAGS and isinstance(getattr(sys.flags, name), int)}
    facts = {
        "executable": os.path.realpath(sys.executable),
        "version": sys.version,
        "flags": flags,
        "xoptions": sorted(map(str, sys._xoptions.items())),
        "warnoptions": sys.warnoptions,
        "path": path,
        "environ": sorted(variables.items()),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _eligible(argv: list[str]) -> bool:
    if not argv or argv[0] != "ingest" or any(arg in _RUN_HERE for arg in argv[1:]):
        return False
    from aodncore.prefect.localserver.settings import server_mode, warm_runner_enabled

    try:
        if not warm_runner_enabled() or server_mode() != "background":
            return False
    except ValueError:
        return False  # a bad setting: let the command report it
    if any(os.path.exists(name) for name in _CWD_CONFIG):
        return False
    from aodncore.prefect.runtime import user_api_url_configured

    return not user_api_url_configured()


def send_message(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One length-prefixed JSON message (file descriptors go with its first bytes)."""
    body = json.dumps(message).encode()
    header = struct.pack("!I", len(body))
    if fds:
        socket.send_fds(sock, [header], fds)
    else:
        sock.sendall(header)
    sock.sendall(body)


def receive_message(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and any descriptors sent with it; (None, []) at end of stream."""
    fds: list[int] = []
    if max_fds:
        header, fds, _flags, _address = socket.recv_fds(sock, 4, max_fds)
    else:
        header = sock.recv(4)
    while header and len(header) < 4:
        more = sock.recv(4 - len(header))
        if not more:
            break
        header += more
    if len(header) < 4:
        for fd in fds:
            os.close(fd)
        return None, []
    (length,) = struct.unpack("!I", header)
    body = bytearray()
    while len(body) < length:
        chunk = sock.recv(min(length - len(body), 1 << 20))
        if not chunk:
            return None, fds
        body += chunk
    return json.loads(body), fds


def _peer_uid(sock: socket.socket) -> int:
    credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def _connect(home: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX)  # a stream socket (the default type)
    try:
        sock.connect(runner_address(home))
        if _peer_uid(sock) != os.getuid():  # somebody else's process took the name: never talk to it
            raise ConnectionRefusedError
    except OSError:
        sock.close()
        return None
    return sock


def _request(argv: list[str], entry: str) -> dict[str, Any]:
    umask = os.umask(0)
    os.umask(umask)
    path = list(sys.path)
    import resource

    limits = {name: resource.getrlimit(getattr(resource, name)) for name in ("RLIMIT_NOFILE", "RLIMIT_CORE")}
    return {
        "protocol": PROTOCOL,
        "entry": entry,
        "argv": ["aodncore", *argv],
        "argv0": sys.argv[0],
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "umask": umask,
        "path": path,
        "fingerprint": environment_fingerprint(os.environ, path[1:]),
        "limits": limits,
    }


class _Forwarder:
    """Pass this process's signals on to the run's process group while it runs."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        for name in _TO_GROUP + _TO_PROCESS:
            number = getattr(signal, name, None)
            if number is not None:
                self.previous[number] = signal.signal(number, self._forward)
        if hasattr(signal, "SIGTSTP"):
            self.previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, self._stop)

    def _forward(self, number: int, _frame: object) -> None:
        if self.pgid is None:
            self.pending.append(number)
            return
        try:
            if signal.Signals(number).name in _TO_GROUP:
                os.killpg(self.pgid, number)
            else:
                os.kill(self.pgid, number)  # the run's first process leads its group: pgid == pid
        except ProcessLookupError:
            pass

    def _stop(self, _number: int, _frame: object) -> None:
        """Ctrl-Z: stop the run, then this process; both continue on SIGCONT (forwarded)."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        os.kill(os.getpid(), signal.SIGSTOP)

    def started(self, pgid: int) -> None:
        self.pgid = pgid
        for number in self.pending:
            self._forward(number, None)
        self.pending.clear()

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def delegate(argv: list[str], entry: str = "aodncore.cli:main") -> int | None:
    """Run ``aodncore argv`` in the warm runner; its exit code, or None when it must run in this process.

    ``entry`` (``module:function``) is what the run's process calls with ``argv``; it returns the exit code.
    """
    if sys.platform != "linux" or not _eligible(argv):
        return None
    from aodncore.prefect.localserver.state import FileLock, ServerPaths
    from aodncore.prefect.runtime import default_prefect_home

    home = Path(os.environ.get("PREFECT_HOME") or default_prefect_home()).expanduser().absolute()
    sock = _connect(home)
    if sock is None:
        return None
    lease = FileLock(ServerPaths(home).runs_lock, shared=True)
    forwarder = _Forwarder()
    try:
        if not lease.acquire(timeout=0.5):
            return None  # the server is stopping: the normal path waits for that and starts a new one
        sock.settimeout(HANDOVER_TIMEOUT)
        send_message(sock, _request(argv, entry), [0, 1, 2, lease.fd])
        forwarder.install()
        reply, _ = receive_message(sock)
        if not reply or "pid" not in reply:
            return None  # refused (different environment, changed code) or gone: nothing ran
        forwarder.started(reply["pid"])
        sock.settimeout(None)
        return _wait_for_status(sock, forwarder)
    except (OSError, ValueError):
        return None if forwarder.pgid is None else _lost(forwarder)
    finally:
        forwarder.restore()
        lease.release()
        sock.close()


def _wait_for_status(sock: socket.socket, forwarder: _Forwarder) -> int:
    while True:
        try:
            message, _ = receive_message(sock)
        except InterruptedError:
            continue
        if message is None:
            return _lost(forwarder)
        if "signal" in message:
            forwarder.restore()
            number = int(message["signal"])
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)  # die the way the run died
            return 128 + number
        if "exit" in message:
            return int(message["exit"])


def _lost(forwarder: _Forwarder) -> int:
    sys.stderr.write("error: the aodncore warm runner went away during the run (see `aodncore server status`)\n")
    return 1
