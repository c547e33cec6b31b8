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

A child per call, or one child for many calls
    In processes aodncore controls — the worker processes of the ingest pool (kept pools included) and the fork
    host — the capped child is **long-lived** (:class:`aodncore.util.cappedchild.ReusedChild`): forked once, warm,
    it runs the calls one at a time, each under its own caps, and is replaced after a call that hit a cap or
    crashed, after a number of calls, or once it has grown (see that module). It sees the memory of its fork,
    with the caller's environment and working folder travelling per call — as the fork host always did — and a
    call with another ``key``, memory cap or ``prepare`` gets a new child. Everywhere else (a classic
    ``HandlerBase.run()`` script, a test, a notebook: code that may monkeypatch a check or register a suite at
    run time) each call gets a **fresh fork**, which sees the caller's memory as it is now. Such a process opts
    in with :func:`reuse_child`; ``AODNCORE_CAPPED_CHILD_REUSE=0`` switches reuse off everywhere (operators).

``prepare`` (e.g. a warm-up function) runs in the process that forks, before forking, so children start warm.
The result is :class:`CappedResult`; the caller decides what a limit or a crash means for its data.
"""

from __future__ import annotations

import atexit
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

from aodncore.util.cappedchild import (
    ChildUnavailable,
    ReusedChild,
    address_space,
    die_with_parent,
    pickled_outcome,
    quieten,
    run_outcome,
    write_all,
)

__all__ = ["REUSE_ENV", "CappedResult", "reuse_child", "run_capped"]

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct("!Q")
#: set to ``0`` (or ``false``/``no``/``off``) to give every capped call a freshly forked child, as before
REUSE_ENV = "AODNCORE_CAPPED_CHILD_REUSE"


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


# -- a capped child per call ---------------------------------------------------------------------------------------

def _child_main(function: Callable[..., Any], args: tuple, memory_bytes: int, write_fd: int) -> None:
    """In the forked child: quieten output, cap memory, run, send the outcome. Never returns."""
    status = 0
    try:
        die_with_parent()
        quieten()
        limit = None
        baseline = address_space()
        if memory_bytes and baseline is not None:
            limit = baseline + memory_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        payload = pickled_outcome(run_outcome(function, args, memory_bytes, baseline, limit))
        write_all(write_fd, _LENGTH.pack(len(payload)) + payload)
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        status = 70
    finally:
        os._exit(status)


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
    die_with_parent()
    reuse_child()  # the host is aodncore's own process: nothing monkeypatches it
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol stream
    while True:
        try:
            request = _receive(requests)
        except EOFError:
            return
        try:
            function, args, memory_bytes, timeout_seconds, prepare, environ, key, retire = pickle.loads(request)
            if environ != dict(os.environ):  # the caller's environment now (switches, credentials, data dirs)
                os.environ.clear()
                os.environ.update(environ)
            result = _run_here(function, args, memory_bytes, timeout_seconds, prepare, key, retire)
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
             prepare: Callable[[], Any] | None, key: Any = None, retire: Callable[[Any], bool] | None = None
             ) -> CappedResult:
        request = pickle.dumps((function, args, memory_bytes, timeout_seconds, prepare, dict(os.environ), key,
                                retire))
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
_reused = ReusedChild()
atexit.register(_reused.retire)
_reuse = False
_finalizer: Any = None


def _reset_in_child() -> None:
    global _host
    _host = _ForkHost()  # a forked process must not talk to its parent's host
    _reused.forget()  # nor to its parent's long-lived capped child (its retire() then does nothing)


os.register_at_fork(after_in_child=_reset_in_child)


def reuse_child(enabled: bool = True) -> None:
    """Let this process's capped calls share a long-lived child (see the module's docstring): for processes
    aodncore controls, where nothing changes check code at run time. ``enabled=False`` stops it (and the child)."""
    global _reuse, _finalizer
    _reuse = enabled
    if not enabled:
        _reused.retire()
    elif _finalizer is None:  # a pool worker leaves through os._exit, after multiprocessing's finalizers
        import multiprocessing.util

        _finalizer = multiprocessing.util.Finalize(None, _reused.retire, exitpriority=0)


def _reuse_allowed() -> bool:
    return _reuse and os.environ.get(REUSE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _single_threaded() -> bool:
    """Whether this process may fork the capped child itself (no other Python thread could hold a lock)."""
    return threading.active_count() == 1


def _run_here(function: Callable[..., Any], args: tuple, memory_bytes: int, timeout_seconds: float,
              prepare: Callable[[], Any] | None, key: Any, retire: Callable[[Any], bool] | None) -> CappedResult:
    """Prepare, then run the call in a child of this single-threaded process: the long-lived one where allowed,
    else (or when the call cannot be sent to it) a fresh fork."""
    if prepare is not None:
        prepare()
    if _reuse_allowed():
        if callable(key):
            key = key()
        try:
            prepared = pickle.dumps(prepare) if prepare is not None else None
        except Exception:  # noqa: BLE001 - cannot tell one preparation from another: a fresh fork
            prepared = ChildUnavailable
        if prepared is not ChildUnavailable:
            try:
                return CappedResult(*_reused.call(function, args, memory_bytes, timeout_seconds, (prepared, key),
                                                  retire))
            except ChildUnavailable as why:
                logger.debug("capped call in a freshly forked child: %s", why)
    else:
        _reused.retire()  # switched off meanwhile: no child left waiting
    return _fork_and_wait(function, args, memory_bytes, timeout_seconds)


def run_capped(function: Callable[..., Any], *args: Any, memory_bytes: int = 0, timeout_seconds: float = 0,
               prepare: Callable[[], Any] | None = None, key: Any = None,
               retire: Callable[[Any], bool] | None = None) -> CappedResult:
    """Run ``function(*args)`` in a child process with at most ``memory_bytes`` more address space and
    ``timeout_seconds`` of wall-clock time (``0`` = no cap).

    ``prepare`` runs before forking, in the forking process. From a process with several threads, the call goes
    through the fork host, so ``function``, ``args`` and ``prepare`` must be picklable. ``key``: picklable, the
    state of the forking process the call depends on beyond its arguments (e.g. which check suites are
    registered), or a function returning it (called after ``prepare``, where the fork happens); a long-lived
    child serves only calls with the key it was forked for. ``retire(value)``: True when an ``ok`` result
    means the long-lived child must not serve another call (a cap hit that the function itself caught).
    """
    if _single_threaded():
        return _run_here(function, args, memory_bytes, timeout_seconds, prepare, key, retire)
    return _host.call(function, args, memory_bytes, timeout_seconds, prepare, key, retire)


if __name__ == "__main__":  # pragma: no cover - the fork host
    # run the loop of the importable module, so that what it pickles names aodncore.util.capped, not __main__
    from aodncore.util import capped

    capped._host_main()
