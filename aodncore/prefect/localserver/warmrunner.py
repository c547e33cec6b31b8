"""The warm runner: a process with Prefect and aodncore already imported that forks a fresh process per run.

Started by the background server (:mod:`.supervisor`) once its API is idle after start-up, as
``python -P -m aodncore.prefect.localserver.warmrunner --home HOME``, with the environment of the run that
started the server. It sets the same Prefect variables an ``aodncore ingest`` run sets before importing Prefect,
imports what such a run imports (:data:`aodncore.prefect.runtime.RUN_MODULES`), then waits on a Unix socket only
its user may use (Linux abstract namespace, peer credentials checked on both sides). Single-threaded, so forking
is safe.

For each run the launcher (:mod:`.warmclient`) sends its argv, environment, working directory, umask, limits,
``sys.path`` and its stdin/stdout/stderr and run-lease descriptors. The runner refuses — and the launcher runs the
command itself — when the launcher's fingerprint differs or any file of an imported module (or Prefect's profiles
file) changed since start-up (it then exits; the server starts a new one later). Otherwise it forks: the child
becomes its own process group, takes the descriptors as 0/1/2, adopts the environment, directory, umask, limits,
argv and path, rebuilds Prefect's console logging for the new stderr, and calls the launcher's entry point
(``aodncore.cli:main``) — then exits through the normal interpreter shutdown (atexit handlers, Prefect's log and
event drains). The runner reports the child's exit status (or signal) to the launcher. A child whose launcher
disappears (killed) gets SIGTERM, so Prefect records the flow run as crashed instead of leaving it running.

Before it listens, it starts the worker pools' fork server (:func:`aodncore.ingest.parallel.start_fork_server`: a
fresh interpreter pre-importing the pipeline, compliance-checker warmed up for :data:`WARM_CHECKS`), so a run
forked from here starts its worker processes from it instead of starting a fork server of its own (1.3-1.5 s of CPU
and about as much wall time before its first file, BENCHMARKS.md). The workers still get the run's environment
(credentials) from the pool's initializer, and the run's working directory and ``sys.path`` from multiprocessing.

It exits on SIGTERM (when the server stops) after its children have finished, and when the server process is gone
(it gets SIGTERM then, even if the server was killed; runs already forked carry on).
"""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aodncore.prefect.localserver.warmclient import (
    PROTOCOL,
    environment_fingerprint,
    receive_message,
    runner_address,
    send_message,
)

logger = logging.getLogger("aodncore.prefect.localserver.warmrunner")

WARM_CHECKS = ("cf:1.6",)
"""The compliance suites the fork server warms up unless ``AODNCORE_FORKSERVER_WARM_CHECKS`` (comma-separated;
empty: none) says otherwise: the CF standard-name table and compliance-checker's lazy imports, which most suites
share (a worker warms what is missing on first use)."""


def _profiles_path(home: Path) -> Path:
    return Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()


def _stat(path: str) -> tuple[int, int] | None:
    try:
        result = os.stat(path)
    except OSError:
        return None
    return result.st_mtime_ns, result.st_size


def _code_stamp(extra: list[str]) -> dict[str, tuple[int, int] | None]:
    """(mtime, size) of every imported module's file, and of ``extra`` files (None: missing)."""
    stamp: dict[str, tuple[int, int] | None] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            stamp[path] = _stat(path)
    for path in extra:
        stamp[path] = _stat(path)
    return stamp


@dataclass
class ChildRun:
    """What the forked child needs to become the run."""

    message: dict[str, Any]
    fds: list[int]
    conn: socket.socket


class WarmRunner:
    """The accept/fork/reap loop."""

    def __init__(self, home: Path, fingerprint: str, parent: int) -> None:
        self.home = home
        self.fingerprint = fingerprint
        self.stamp = _code_stamp([str(_profiles_path(home))])
        self.limits = {name: _limit(name) for name in ("RLIMIT_NOFILE", "RLIMIT_CORE")}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(runner_address(home))
        self.listener.listen(32)
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.parent = parent
        self.pid = os.getpid()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def refusal(self, message: dict[str, Any] | None) -> str | None:
        if not message or message.get("protocol") != PROTOCOL or ":" not in str(message.get("entry")):
            return "protocol"
        if message.get("fingerprint") != self.fingerprint:
            return "environment differs"
        for name, (_soft, hard) in message.get("limits", {}).items():
            if name in self.limits and _exceeds(hard, self.limits[name][1]):
                return f"{name} hard limit differs"
        if any(_stat(path) != stat for path, stat in self.stamp.items()):
            self.stopping = True
            return "installed code changed"
        return None

    def serve(self) -> ChildRun | None:
        """Serve until stopped; in a forked child, return its run instead."""
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        logger.info("warm runner ready (pid %d, %d modules)", os.getpid(), len(sys.modules))
        while not self.stopping or self.children:
            waiting = [self._wake_r] + ([self.listener] if not self.stopping else [])
            readable, _, _ = select.select(waiting, [], [], 5.0)
            self._drain_wakeups()
            self._reap()
            if os.getppid() != self.parent:
                self.stopping = True  # the server is gone
            if self.listener in readable and not self.stopping:
                run = self._accept()
                if run is not None:
                    return run
        self.listener.close()
        return None

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _accept(self) -> ChildRun | None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return None
        fds: list[int] = []
        try:
            conn.settimeout(5.0)
            if _peer_uid(conn) != os.getuid():
                conn.close()
                return None
            message, fds = receive_message(conn, max_fds=4)
            if message is None:
                raise _Refused  # a readiness probe (``aodncore server status``): connect and close
            reason = self.refusal(message) if len(fds) == 4 else "descriptors missing"
            if reason:
                logger.info("run not taken: %s", reason)
                send_message(conn, {"refused": reason})
                raise _Refused
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                return ChildRun(message, fds, conn)
            try:
                os.setpgid(pid, pid)  # also done by the child: whoever is first, the group exists before the reply
            except OSError:
                pass
            self.children[pid] = conn
            send_message(conn, {"pid": pid})
            logger.info("run forked: pid %d (aodncore %s)", pid, message["argv"][1])  # no arguments: secrets
        except (_Refused, OSError, ValueError):
            conn.close()
        finally:
            if os.getpid() == self.pid:  # the child keeps the descriptors: they are its stdio and lease
                for fd in fds:
                    os.close(fd)
        return None

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status, usage = os.wait3(os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                report = {"signal": os.WTERMSIG(status)}
            else:
                report = {"exit": os.waitstatus_to_exitcode(status)}
            logger.info("run finished: pid %d, %s, %.2f s CPU", pid, report, usage.ru_utime + usage.ru_stime)
            try:
                send_message(conn, report)
            except OSError:
                pass
            conn.close()

    def close_in_child(self) -> None:
        self.listener.close()
        signal.set_wakeup_fd(-1)
        os.close(self._wake_r)
        os.close(self._wake_w)
        for conn in self.children.values():
            conn.close()
        self.children.clear()


class _Refused(Exception):
    pass


def _limit(name: str) -> tuple[int, int]:
    import resource

    return resource.getrlimit(getattr(resource, name))


def _exceeds(value: int, limit: int) -> bool:
    import resource

    if limit == resource.RLIM_INFINITY:
        return False
    return value == resource.RLIM_INFINITY or value > limit


def _peer_uid(sock: socket.socket) -> int:
    credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


# -- the child ------------------------------------------------------------------------------------------------------


def _reopen_stdio() -> None:
    """New ``sys.stdin/stdout/stderr`` on descriptors 0-2, buffered as Python buffers them at start-up."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED")) or sys.flags.unbuffered
    streams = []
    for fd, mode, template in ((0, "r", sys.__stdin__), (1, "w", sys.__stdout__), (2, "w", sys.__stderr__)):
        encoding = getattr(template, "encoding", None) or "utf-8"
        errors = getattr(template, "errors", None) or "strict"
        interactive = os.isatty(fd)
        raw = io.FileIO(fd, mode, closefd=False)
        if mode == "r":
            buffered = io.BufferedReader(raw)
            line_buffering = False
        elif unbuffered:
            buffered = raw
            line_buffering = False
        else:
            buffered = io.BufferedWriter(raw)
            line_buffering = interactive or fd == 2
        stream = io.TextIOWrapper(buffered, encoding=encoding, errors=errors, line_buffering=line_buffering,
                                  write_through=unbuffered and mode == "w")
        streams.append(stream)
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams


def _watch_launcher(conn: socket.socket) -> None:
    """SIGTERM this run's process group when its launcher goes away (e.g. killed with SIGKILL)."""

    def watch() -> None:
        try:
            conn.settimeout(None)
            while conn.recv(1):
                pass
        except OSError:
            pass
        os.killpg(0, signal.SIGTERM)

    threading.Thread(target=watch, name="aodncore-launcher-watch", daemon=True).start()


def become_run(runner: WarmRunner, run: ChildRun) -> int:
    """In the forked child: take over the launcher's process state and run the command; the exit code."""
    message = run.message
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    runner.close_in_child()
    from aodncore.ingest.parallel import adopt_inherited_fork_server

    adopt_inherited_fork_server()
    for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stdin, stdout, stderr, _lease = run.fds  # the lease stays open (held) for the life of the run
    for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(source, target)
        os.close(source)
    os.chdir(message["cwd"])
    os.umask(message["umask"])
    os.environ.clear()
    os.environ.update(message["environ"])
    time.tzset()
    import resource

    for name, (soft, hard) in message.get("limits", {}).items():
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        except (ValueError, OSError):
            pass
    sys.argv = [message["argv0"], *message["argv"][1:]]
    sys.path[:] = message["path"]
    _reopen_stdio()
    _reset_process_caches()
    _watch_launcher(run.conn)
    import importlib

    module, _, function = message["entry"].partition(":")
    return getattr(importlib.import_module(module), function)(message["argv"][1:])


def _reset_process_caches() -> None:
    """Forget what was derived from the runner's own terminal, directories and log."""
    import tempfile

    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)

    tempfile.tempdir = None
    try:
        import rich

        rich._console = None
    except ImportError:
        pass
    from aodncore.prefect.runtime import quiet_prefect_console

    quiet_prefect_console()  # the same defaults ingest sets (this run is not --verbose)
    from prefect.logging.configuration import setup_logging

    setup_logging(incremental=False)  # console handlers on the new stderr


def _start_fork_server() -> None:
    """The worker pools' fork server, for every run forked from here (best effort: else each run starts its own)."""
    from aodncore.ingest.parallel import WARM_CHECKS_ENV, start_fork_server

    configured = os.environ.get(WARM_CHECKS_ENV)
    checks = WARM_CHECKS if configured is None else tuple(name for name in configured.split(",") if name)
    try:
        pid = start_fork_server(checks)
    except Exception as error:  # noqa: BLE001 - the runs start their own then
        logger.warning("fork server not started: %s: %s", type(error).__name__, error)
        return
    logger.info("fork server started (pid %s, warming %s)", pid, ",".join(checks) or "no suites")


def _die_with(parent: int) -> None:
    """Get SIGTERM when the server process ends, however it ends (Linux ``PR_SET_PDEATHSIG``; the runs forked
    later do not inherit it); exit now if it has already gone (while this process was starting)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aodncore-warm-runner")
    parser.add_argument("--home", required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    _die_with(args.parent_pid)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"))
    logger.addHandler(handler)  # not the root logger: the runs forked from here configure their own logging
    logger.setLevel(logging.INFO)
    logger.propagate = False
    home = Path(args.home).expanduser().absolute()
    fingerprint = environment_fingerprint(os.environ, list(sys.path))  # before the run defaults below
    from aodncore.prefect.runtime import (
        background_client_defaults,
        import_run_modules,
        prepare_prefect_environment,
        quiet_prefect_console,
    )

    os.environ.setdefault("PREFECT_HOME", str(home))
    prepare_prefect_environment(home)
    background_client_defaults()
    quiet_prefect_console()
    gc.disable()
    started = time.monotonic()
    try:
        import_run_modules()
    finally:
        gc.enable()
        gc.freeze()
    logger.info("preloaded in %.1f s", time.monotonic() - started)
    _start_fork_server()
    if threading.active_count() != 1:
        logger.warning("not forking: importing started threads (%s)", [t.name for t in threading.enumerate()])
        return 0
    try:
        runner = WarmRunner(home, fingerprint, args.parent_pid)
    except OSError as error:
        logger.info("another warm runner serves %s (%s)", home, error)
        return 0
    run = runner.serve()
    if run is None:
        logger.info("stopped")
        return 0
    return become_run(runner, run)


if __name__ == "__main__":
    sys.exit(main())
