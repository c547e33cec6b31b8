"""Start, find, wait for, stop and describe the background server of a Prefect home (the client side).

:class:`BackgroundServer` is what a run uses: ``start()`` takes the run's lease (shared ``runs.lock``), then — under
``server.lock`` — reuses the recorded server if its process is alive, or binds a loopback port and launches
:mod:`.supervisor` on it and records it; it does not wait, so the server's start-up overlaps the caller's own.
``wait()`` blocks until the server answers its identity probe with the recorded token: a run that finds a
half-started server (another run just launched it) simply waits for it, and concurrent first runs launch one
server between them. A state file left by a crash or a reboot (dead pid, reused pid, nothing listening, another
token) is removed and a new server launched.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aodncore.prefect.localserver.settings import ENV_PORT, configured_port, idle_timeout, is_secret_variable
from aodncore.prefect.localserver.state import (
    FileLock,
    IdentityUnreachable,
    ServerPaths,
    ServerState,
    probe_identity,
    process_alive,
    process_start_ticks,
    read_state,
    remove_state,
    write_state,
)

__all__ = ["BackgroundServer", "ServerStartError", "ServerStatus", "server_status", "stop_server"]

logger = logging.getLogger("aodncore.prefect.localserver")

START_TIMEOUT = 180.0
"""Seconds a run waits for the background server to answer (a loaded machine's first start is slow)."""

LOG_ROTATE_BYTES = 10 * 1024 * 1024
"""``server.log`` is moved to ``server.log.1`` when a server starts and it is larger than this."""

_ENV_KEEP = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "VIRTUAL_ENV",
             "SHELL", "SYSTEMROOT")
_ENV_KEEP_PREFIXES = ("PREFECT_", "PYTHON", "LC_", "AODNCORE_", "XDG_")

_spawned: list[subprocess.Popen[bytes]] = []  # kept so that the objects outlive the runs that launched them


class ServerStartError(RuntimeError):
    """The background server could not be started (the message names its log file)."""


class _Stale(Exception):
    """The recorded server is not (or no longer) ours."""


def server_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment handed to the server: locale, paths and Prefect/Python/aodncore settings, no credentials
    (:func:`~.settings.is_secret_variable`; runs handed to the warm runner bring their own)."""
    environ = dict(os.environ if environ is None else environ)
    return {key: value for key, value in environ.items()
            if (key in _ENV_KEEP or key.startswith(_ENV_KEEP_PREFIXES)) and not is_secret_variable(key, value)}


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as error:
        if not port:
            sock.close()
            raise
        logger.warning("port %d is not available (%s): the background Prefect server uses a free port", port,
                       error.strerror)
        sock.close()
        return _bind(0)
    sock.listen(128)
    return sock


def _open_log(paths: ServerPaths):
    try:
        if paths.log_file.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(paths.log_file, paths.log_file.with_name(paths.log_file.name + ".1"))
    except FileNotFoundError:
        pass
    return open(paths.log_file, "ab")


def code_stamp() -> str:
    """Modification times of the installed Prefect and of this package: a server started before an upgrade differs."""
    import importlib.util

    files = [Path(__file__).with_name("supervisor.py")]
    spec = importlib.util.find_spec("prefect")
    if spec is not None and spec.origin:
        files.append(Path(spec.origin))
    stamps = []
    for path in files:
        try:
            stamps.append(str(path.stat().st_mtime_ns))
        except OSError:
            stamps.append("-")
    return ":".join(stamps)


def _launch(paths: ServerPaths, environ: dict[str, str]) -> tuple[ServerState, subprocess.Popen[bytes]]:
    """Bind the port, start the supervisor process detached from this one, record it; (state, process)."""
    paths.ensure_directory()
    token = secrets.token_hex(16)
    timeout = idle_timeout()
    requested = configured_port()
    with _bind(requested) as sock, _open_log(paths) as log:
        port = sock.getsockname()[1]
        if requested and port != requested:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} WARNING port {requested} ({ENV_PORT}) is taken: "
                      f"listening on {port} instead\n".encode())
            log.flush()
        command = [sys.executable, "-P", "-m", "aodncore.prefect.localserver.supervisor",
                   "--listen-fd", str(sock.fileno()), "--home", str(paths.home), "--token", token,
                   "--idle-timeout", repr(timeout)]
        process = subprocess.Popen(
            command, env=server_environment(environ), cwd=paths.directory, stdin=subprocess.DEVNULL,
            stdout=log, stderr=log, close_fds=True, pass_fds=(sock.fileno(),), start_new_session=True,
        )
    _spawned.append(process)
    state = ServerState(pid=process.pid, port=port, token=token, started=time.time(),
                        pid_start=process_start_ticks(process.pid), prefect_home=str(paths.home),
                        idle_timeout=timeout, code_stamp=code_stamp())
    write_state(paths, state)
    logger.info("started the background Prefect server (pid %d, %s); log: %s", process.pid, state.ui_url,
                paths.log_file)
    return state, process


@dataclass
class BackgroundServer:
    """The background server a run uses; ``start()`` early, ``wait()`` before the first Prefect call."""

    home: Path
    state: ServerState | None = None
    launched: bool = False

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser().absolute()
        self.paths = ServerPaths(self.home)
        self._lease = FileLock(self.paths.runs_lock, shared=True)
        self._process: subprocess.Popen[bytes] | None = None
        self._environ = dict(os.environ)  # the caller's environment before it changes anything for Prefect

    @property
    def api_url(self) -> str:
        if self.state is None:
            raise RuntimeError("start() first")
        return self.state.api_url

    @property
    def lease_fd(self) -> int | None:
        """The descriptor of this run's shared ``runs.lock`` (handed to a warm-runner child with the run)."""
        return self._lease.fd

    def start(self) -> BackgroundServer:
        """Hold the run lease; reuse the running server or launch one (without waiting for it)."""
        if not self._lease.held and not self._lease.acquire(timeout=60):
            raise ServerStartError(f"the background Prefect server in {self.paths.directory} is stopping and "
                                   "did not finish within 60 s")
        with FileLock(self.paths.lock_file):
            state = read_state(self.paths)
            if state is not None and process_alive(state.pid, state.pid_start):
                if state.code_stamp == code_stamp() or not self._alone():
                    self.state, self.launched = state, False
                    return self
                if _is_our_server(state):
                    logger.info("the background Prefect server (pid %d) predates an upgrade: restarting it",
                                state.pid)
                    _terminate(state, 20.0)
            if state is not None:
                logger.info("removing the state of a background Prefect server that is gone (pid %d)", state.pid)
                remove_state(self.paths)
            self.state, self._process = _launch(self.paths, self._environ)
            self.launched = True
        return self

    def _alone(self) -> bool:
        """True when no other run holds the run lease (so the server may be replaced); keeps ours shared."""
        exclusive = FileLock(self.paths.runs_lock)
        self._lease.release()
        try:
            return exclusive.acquire(blocking=False)
        finally:
            exclusive.release()
            if not self._lease.acquire(timeout=60):  # the old server took it to stop for idleness, and hangs
                raise ServerStartError(f"the background Prefect server in {self.paths.directory} is stopping and "
                                       "did not finish within 60 s")

    def wait(self, timeout: float = START_TIMEOUT) -> BackgroundServer:
        """Block until the server answers; replaces a stale one. Raises :class:`ServerStartError`."""
        deadline = time.monotonic() + timeout
        for _attempt in range(3):
            if self.state is None:
                self.start()
            try:
                self._wait_for_identity(deadline)
                return self
            except _Stale:
                with FileLock(self.paths.lock_file):
                    remove_state(self.paths, self.state.token)
                self.state = None
        raise ServerStartError(f"could not start the background Prefect server; see {self.paths.log_file}")

    def _wait_for_identity(self, deadline: float) -> None:
        assert self.state is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerStartError(f"the background Prefect server did not answer within the timeout; "
                                       f"see {self.paths.log_file}")
            try:
                answer = probe_identity(self.state.port, timeout=min(remaining, 1.0))
            except IdentityUnreachable:
                self._raise_if_ours_exited()  # the server this run launched died: say why, do not relaunch
                raise _Stale() from None
            if answer:
                if answer.get("token") != self.state.token:
                    raise _Stale()
                return
            if answer is not None:
                raise _Stale()  # something else answers on that port
            self._raise_if_ours_exited()
            if not process_alive(self.state.pid, self.state.pid_start):
                raise _Stale()

    def _raise_if_ours_exited(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            with FileLock(self.paths.lock_file):
                remove_state(self.paths, self.state.token if self.state else None)
            raise ServerStartError(f"the background Prefect server exited with code {self._process.returncode} "
                                   f"while starting; see {self.paths.log_file}:\n{_log_tail(self.paths)}")

    def release(self) -> None:
        """Give up this run's lease (the server may then stop when idle)."""
        self._lease.release()


def _log_tail(paths: ServerPaths, lines: int = 15) -> str:
    try:
        return "\n".join(paths.log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass(frozen=True)
class ServerStatus:
    """What ``aodncore server status`` reports."""

    paths: ServerPaths
    state: ServerState | None
    running: bool
    identity: dict | None

    @property
    def runner_pid(self) -> int | None:
        return self.identity.get("runner_pid") if self.identity else None

    def runner_ready(self) -> bool:
        """True when the warm runner listens (it does once its imports are done)."""
        if not self.runner_pid:
            return False
        from aodncore.prefect.localserver.warmclient import runner_address

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(runner_address(self.paths.home))
            except OSError:
                return False
        return True


def server_status(home: Path) -> ServerStatus:
    """The background server of ``home``: recorded state, whether it runs and answers."""
    paths = ServerPaths(Path(home).expanduser().absolute())
    state = read_state(paths)
    if state is None or not process_alive(state.pid, state.pid_start):
        return ServerStatus(paths, state, False, None)
    try:
        identity = probe_identity(state.port, timeout=2.0)
    except IdentityUnreachable:
        return ServerStatus(paths, state, False, None)
    running = bool(identity) and identity.get("token") == state.token
    return ServerStatus(paths, state, running or identity is None, identity if running else None)


def stop_server(home: Path, timeout: float = 20.0) -> ServerState | None:
    """Stop the background server of ``home`` (SIGTERM, then SIGKILL after ``timeout``); the stopped one or None.

    Runs in progress lose their server: their flow runs end as crashed.
    """
    paths = ServerPaths(Path(home).expanduser().absolute())
    if not paths.directory.is_dir():
        return None
    with FileLock(paths.lock_file):
        state = read_state(paths)
        if state is None:
            return None
        if process_alive(state.pid, state.pid_start) and _is_our_server(state):
            _terminate(state, timeout)
        remove_state(paths)
        return state


def _is_our_server(state: ServerState) -> bool:
    """Only a process proven to be the recorded server is ever signalled: it answers with the recorded token, or
    (still starting) it is the very process recorded, as its kernel start time shows."""
    try:
        answer = probe_identity(state.port, timeout=2.0)
    except IdentityUnreachable:
        return False
    if answer is None:
        return state.pid_start is not None and process_start_ticks(state.pid) == state.pid_start
    return answer.get("token") == state.token


def _terminate(state: ServerState, timeout: float) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(state.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(state.pid)
            if not process_alive(state.pid, state.pid_start):
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (it then stops being a zombie)."""
    for process in _spawned:
        if process.pid == pid:
            process.poll()
            return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
