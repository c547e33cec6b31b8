"""Run one function in a child process under a memory cap and a timeout, and get its result back.

Used by the check step so that one crafted file cannot exhaust the machine: the child's address space is capped
(``RLIMIT_AS`` set to what the process already uses plus the cap) and it is killed when the timeout passes.

How the child is made
    * From a **single-threaded** process (a worker process of the ingest pool, a classic ``HandlerBase.run()``
      script) the child is forked right here: it inherits everything already loaded and warmed up, so the only
      per-call cost is the fork itself.
    * A process with **other threads** (a Prefect flow process, a Dask worker) is never forked: a fork copies locks
      other threads may hold. Instead a *fork host* is started once per process (``python -m aodncore.util.capped``:
      single-threaded, it imports and warms up what the calls need) and each call is sent to it over a pipe; the
      host forks the capped child from itself. Functions and arguments travel pickled, so they must be importable
      module-level objects; the caller's current environment variables travel with each call. What the caller
      changed in its own memory (a monkeypatched function, a class registered at run time) is not seen there.

``prepare`` (e.g. a warm-up function) runs in the process that forks, before forking, so children start warm.
The result is :class:`CappedResult`; the caller decides what a limit or a crash means for its data.
"""

from __future__ import annotations

import atexit
import faulthandler
import logging
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CappedResult", "run_capped"]

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("!Q")
#: share of the memory cap whose use marks an exception as caused by the cap (allocations fail near it)
_NEAR_CAP = 0.9


@dataclass(frozen=True)
class CappedResult:
    """What became of a capped call: ``status`` is ``ok`` (``value`` holds the result), ``error`` (``value`` holds
    the exception raised by the function), ``memory`` or ``time`` (a cap was hit) or ``crashed`` (the child died,
    ``value`` is the signal name)."""

    status: str
    value: Any = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# -- the capped child ----------------------------------------------------------------------------------------------

def _address_space() -> int | None:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _peak_address_space() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (no orphaned capped child or fork host)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child_main(function: Callable[..., Any], args: tuple, memory_bytes: int, write_fd: int) -> None:
    """In the forked child: quieten output, cap memory, run, send the outcome. Never returns."""
    status = 0
    try:
        _die_with_parent()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)  # a library printing or warning must not reach the console of the parent
        os.dup2(devnull, 2)
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child ends with os._exit
        faulthandler.disable()  # a crash is reported by the parent, not dumped on its console
        logging.disable(logging.CRITICAL)
        limit = None
        baseline = _address_space()
        if memory_bytes and baseline is not None:
            limit = baseline + memory_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            outcome = ("ok", function(*args))
        except MemoryError:
            outcome = ("memory", None)
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            peak = _peak_address_space()
            near_cap = limit is not None and peak is not None and peak >= baseline + _NEAR_CAP * memory_bytes
            outcome = ("memory", None) if near_cap else ("error", error)
        try:
            payload = pickle.dumps(outcome)
        except Exception as error:  # noqa: BLE001 - e.g. an exception that cannot be pickled
            payload = pickle.dumps(("error", RuntimeError(f"{type(error).__name__}: {error}")))
        _write_all(write_fd, _LENGTH.pack(len(payload)) + payload)
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        status = 70
    finally:
        os._exit(status)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_until(fd: int, deadline: float | None) -> tuple[bytes, bool]:
    """Everything the child writes until it closes the pipe; ``(data, timed_out)``."""
    chunks = []
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            return b"".join(chunks), True
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)


def _fork_and_wait(function: Callable[..., Any], args: tuple, memory_bytes: int, timeout_seconds: float
                   ) -> CappedResult:
    """Fork a capped child of *this* (single-threaded) process and collect its outcome."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which exits through os._exit
        os.close(read_fd)
        _child_main(function, args, memory_bytes, write_fd)
    os.close(write_fd)
    exited = False
    try:
        deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        data, timed_out = _read_until(read_fd, deadline)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, wait_status = os.waitpid(pid, 0)
        exited = True
    finally:
        os.close(read_fd)
        if not exited:  # interrupted while waiting: never leave the child behind
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
    if timed_out:
        return CappedResult("time")
    if len(data) >= _LENGTH.size:
        (length,) = _LENGTH.unpack(data[:_LENGTH.size])
        if len(data) - _LENGTH.size == length:
            status, value = pickle.loads(data[_LENGTH.size:])
            return CappedResult(status, value)
    if os.WIFSIGNALED(wait_status):
        return CappedResult("crashed", signal.Signals(os.WTERMSIG(wait_status)).name)
    return CappedResult("crashed", f"exit status {os.waitstatus_to_exitcode(wait_status)}")


# -- the fork host (for processes with threads) ------------------------------------------------------------------------

def _send(stream: Any, message: Any) -> None:
    payload = pickle.dumps(message)
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _receive(stream: Any) -> Any:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError("the fork host closed its pipe")
    (length,) = _LENGTH.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        raise EOFError("the fork host closed its pipe")
    return pickle.loads(payload)


def _host_main() -> None:  # pragma: no cover - runs in the fork host process (exercised by the tests through it)
    """The fork host's loop: one request at a time, each run in a capped child forked from here."""
    _die_with_parent()
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol stream
    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return
        try:
            function, args, memory_bytes, timeout_seconds, prepare, environ = pickle.loads(request)
            if environ != dict(os.environ):  # the caller's environment now (switches, credentials, data dirs)
                os.environ.clear()
                os.environ.update(environ)
            if prepare is not None:
                prepare()
            result = _fork_and_wait(function, args, memory_bytes, timeout_seconds)
        except BaseException as error:  # noqa: BLE001 - reported to the caller
            result = CappedResult("error", _picklable(error))
        _send(replies, result)


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.dumps(error)
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


class _ForkHost:
    """The helper process a threaded process sends its capped calls to (one at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the host must import what the caller can
        process = subprocess.Popen(
            [sys.executable, "-m", "aodncore.util.capped"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True,
        )
        logger.debug("started fork host process %d for capped calls", process.pid)
        return process

    def call(self, function: Callable[..., Any], args: tuple, memory_bytes: int, timeout_seconds: float,
             prepare: Callable[[], Any] | None) -> CappedResult:
        request = pickle.dumps((function, args, memory_bytes, timeout_seconds, prepare, dict(os.environ)))
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            try:
                _send(self._process.stdin, request)
            except OSError:  # it died since the last call: start a new one (nothing was run yet)
                self._stop()
                self._process = self._start()
                _send(self._process.stdin, request)
            try:
                return _receive(self._process.stdout)
            except (EOFError, OSError):  # it died during the call: do not run the call a second time
                self._stop()
                raise RuntimeError("the fork host process for capped calls died") from None

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        with self._lock:
            self._stop()


_host = _ForkHost()
atexit.register(_host.stop)


def _reset_in_child() -> None:
    global _host
    _host = _ForkHost()  # a forked process must not talk to its parent's host


os.register_at_fork(after_in_child=_reset_in_child)


def _single_threaded() -> bool:
    """Whether this process may fork the capped child itself (no other Python thread could hold a lock)."""
    return threading.active_count() == 1


def run_capped(function: Callable[..., Any], *args: Any, memory_bytes: int = 0, timeout_seconds: float = 0,
               prepare: Callable[[], Any] | None = None) -> CappedResult:
    """Run ``function(*args)`` in a child process with at most ``memory_bytes`` more address space and
    ``timeout_seconds`` of wall-clock time (``0`` = no cap).

    ``prepare`` runs before forking, in the forking process. From a process with several threads, the call goes
    through the fork host, so ``function``, ``args`` and ``prepare`` must be picklable.
    """
    if _single_threaded():
        if prepare is not None:
            prepare()
        return _fork_and_wait(function, args, memory_bytes, timeout_seconds)
    return _host.call(function, args, memory_bytes, timeout_seconds, prepare)


if __name__ == "__main__":  # pragma: no cover - the fork host
    # run the loop of the importable module, so that what it pickles names aodncore.util.capped, not __main__
    from aodncore.util import capped

    capped._host_main()
