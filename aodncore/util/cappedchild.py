"""A long-lived capped child: forked once (warm), it runs capped calls one at a time, sent to it over a pipe.

Forking a capped child per call costs the forking process and the child ~25-30 ms of system time per call (page
tables of a big warm process copied, copy-on-write faults, the child's teardown), a third of checking a file with
``cf:1.6``. A :class:`ReusedChild` pays that once for many calls. Each call still gets what a freshly forked child
would give it:

* **memory**: before each call the child sets its ``RLIMIT_AS`` soft limit to its address space *now* plus the
  call's cap (the same headroom a fresh fork of a process of that size gets); its hard limit is its address space
  at fork time plus :data:`~aodncore.limits.CAPPED_CHILD_GROWTH_SLACK_BYTES` plus the cap, so no call can ever use
  more than that over a freshly forked child;
* **time**: the parent kills the child when the call's timeout passes;
* **a clean start**: the child is replaced after any call that did not end ``ok`` or ``error`` (memory, time,
  crashed) or whose ``ok`` result the caller's ``retire`` test flags (a MemoryError the function caught), after
  :data:`~aodncore.limits.CAPPED_CHILD_MAX_CALLS` calls, and once its peak address space has grown
  beyond the slack over its start (so an allocation near the cap in one call is never blamed on the next, and
  caches or malloc arenas grown by earlier calls cannot eat into a later call's cap);
* **the caller's state of the moment**: the caller's environment variables and working folder travel with each
  call. Nothing else does: the child sees the memory of its fork (functions and classes are sent by name and
  resolved *there*), so a caller that monkeypatches a function, registers a class or changes module state after
  the fork is not seen. Hence callers pass a ``key`` naming the state the call depends on (e.g. the compliance
  suites registered): a call with another key (or another memory cap, or another ``prepare``) gets a new child
  forked from the caller as it is now.

Where it is used is decided by :mod:`aodncore.util.capped` (processes aodncore controls: pool workers and the
fork host); a child that died or was killed between calls is replaced without the caller noticing.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import pickle
import resource
import select
import signal
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from aodncore.limits import CAPPED_CHILD_GROWTH_SLACK_BYTES, CAPPED_CHILD_MAX_CALLS

__all__ = ["ReusedChild", "ChildUnavailable"]

_LENGTH = struct.Struct("!Q")
_ACK = b"\x01"
#: share of the memory cap whose use marks an exception as caused by the cap (allocations fail near it)
_NEAR_CAP = 0.9


class ChildUnavailable(Exception):
    """The call cannot run in the reused child (it cannot be sent, or the child cannot resolve it): the caller
    runs it in a freshly forked child instead. Nothing of the call has run."""


def address_space() -> int | None:
    """This process's address space (bytes), from ``/proc/self/statm``."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_address_space() -> int | None:
    """The largest address space this process has had (``VmPeak``)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def die_with_parent() -> None:
    """Linux: have the kernel kill this process when its parent dies (no orphaned capped child or fork host)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def quieten() -> None:
    """In a capped child: nothing it prints, warns, logs or dumps may reach the parent's console."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child ends with os._exit
    faulthandler.disable()  # a crash is reported by the parent, not dumped on its console
    logging.disable(logging.CRITICAL)


def run_outcome(function: Callable[..., Any], args: tuple, memory_bytes: int, baseline: int | None,
                limit: int | None) -> tuple[str, Any]:
    """Run the call and classify it as the parent reports it: ``ok``, ``error`` or ``memory``."""
    try:
        return "ok", function(*args)
    except MemoryError:
        return "memory", None
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        peak = peak_address_space()
        near_cap = (limit is not None and baseline is not None and peak is not None
                    and peak >= baseline + _NEAR_CAP * memory_bytes)
        return ("memory", None) if near_cap else ("error", error)


def pickled_outcome(outcome: tuple[str, Any], *extra: Any) -> bytes:
    """``pickle.dumps(outcome)`` (or ``(outcome, *extra)``); an outcome that cannot be pickled becomes an error."""
    try:
        return pickle.dumps((outcome, *extra) if extra else outcome)
    except Exception as error:  # noqa: BLE001 - e.g. an exception that cannot be pickled
        failed = ("error", RuntimeError(f"{type(error).__name__}: {error}"))
        return pickle.dumps((failed, *extra) if extra else failed)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _slack(memory_bytes: int) -> int:
    """The growth allowed over the child's start: at most a quarter of the cap, so that growth near the cap always
    stands out (see :data:`_NEAR_CAP`)."""
    slack = CAPPED_CHILD_GROWTH_SLACK_BYTES
    return min(slack, memory_bytes // 4) if memory_bytes else slack


# -- in the child ----------------------------------------------------------------------------------------------

def _read_exactly_blocking(fd: int, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = os.read(fd, min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _serve(requests: int, replies: int, memory_bytes: int, parent: int) -> None:
    """The child's loop: read a call, acknowledge it, run it under the cap, reply; until the parent goes."""
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        return
    quieten()
    start = address_space()
    slack = _slack(memory_bytes)
    hard = start + slack + memory_bytes if memory_bytes and start is not None else None
    while True:
        header = _read_exactly_blocking(requests, _LENGTH.size)
        if header is None:
            return
        payload = _read_exactly_blocking(requests, _LENGTH.unpack(header)[0])
        if payload is None:
            return
        try:
            function, args, environ, cwd, retire = pickle.loads(payload)
        except BaseException as error:  # noqa: BLE001 - e.g. a class that does not exist in this (older) memory
            write_all(replies, _frame(pickle.dumps(("unavailable", f"{type(error).__name__}: {error}"))))
            continue
        write_all(replies, _ACK)
        if environ != os.environ:
            os.environ.clear()
            os.environ.update(environ)
        if cwd != os.getcwd():
            os.chdir(cwd)
        baseline = address_space()
        limit = None
        if hard is not None and baseline is not None:
            limit = min(baseline + memory_bytes, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        outcome = run_outcome(function, args, memory_bytes, baseline, limit)
        peak = peak_address_space()
        spent = start is None or peak is None or peak > start + slack
        if not spent and retire is not None and outcome[0] == "ok":
            try:
                spent = bool(retire(outcome[1]))
            except Exception:  # noqa: BLE001 - cannot tell: do not keep the child
                spent = True
        write_all(replies, _frame(pickled_outcome(outcome, spent)))


def _frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


# -- in the parent ---------------------------------------------------------------------------------------------

class ReusedChild:
    """One long-lived capped child of this (single-threaded) process, forked on its first call.

    :meth:`call` returns ``(status, value)`` as :class:`aodncore.util.capped.CappedResult` has them, or raises
    :class:`ChildUnavailable` when the call must run in a freshly forked child.
    """

    def __init__(self) -> None:
        self._pid: int | None = None
        self._requests = self._replies = -1
        self._buffer = b""
        self._key: Any = None
        self._calls = 0

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first call and after it was retired)."""
        return self._pid

    def call(self, function: Callable[..., Any], args: tuple, memory_bytes: int, timeout_seconds: float,
             key: Any = None, retire: Callable[[Any], bool] | None = None) -> tuple[str, Any]:
        """Run ``function(*args)`` in the child (a new one if the last is unfit for it); ``key``: the caller's
        state the call depends on (a call with another key gets a new child); ``retire``: run in the child on an
        ``ok`` result, True if the child must not serve another call (e.g. a MemoryError was caught inside)."""
        try:
            request = _frame(pickle.dumps((function, args, dict(os.environ), os.getcwd(), retire)))
        except Exception as error:  # noqa: BLE001 - a lambda, a local class...: a fresh fork inherits it
            raise ChildUnavailable(f"cannot send the call: {type(error).__name__}") from None
        key = (memory_bytes, key)
        if self._pid is not None and (self._key != key or self._calls >= CAPPED_CHILD_MAX_CALLS or self._exited()):
            self.retire()
        deadline = time.monotonic() + timeout_seconds if timeout_seconds else None
        try:
            if not self._start_call(request, memory_bytes, key, deadline):
                return self._timed_out()
            self._calls += 1
            try:
                payload = self._read_frame(deadline)
            except _Gone:
                return self._crashed()
        except ChildUnavailable:
            raise
        except BaseException:  # interrupted (or worse) while the child may run the call: never reuse it
            self.retire()
            raise
        if payload is None:
            return self._timed_out()
        (status, value), spent = pickle.loads(payload)
        if spent or status not in ("ok", "error"):
            self.retire()
        return status, value

    def retire(self) -> int | None:
        """Stop the child (if any) and reap it; its wait status."""
        pid, self._pid = self._pid, None
        self._close()
        if pid is None:
            return None
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return None

    def forget(self) -> None:
        """In a forked copy of the parent: drop the parent's child without touching it."""
        self._pid = None
        self._close()

    # -- internals --

    def _start_call(self, request: bytes, memory_bytes: int, key: Any, deadline: float | None) -> bool:
        """Send the call and wait for the child to take it (False: the deadline passed first). A child found dead
        before taking it (killed between calls) is replaced once: nothing of the call ran."""
        for attempt in (1, 2):
            if self._pid is None:
                self._fork(memory_bytes, key)
            try:
                write_all(self._requests, request)
                first = self._read(1, deadline)
                if first is None:
                    return False
                if first == _ACK:
                    return True
                self._buffer = first + self._buffer  # a refusal: the child cannot resolve the call
                reason = pickle.loads(self._read_frame(None))[1]
                raise ChildUnavailable(reason)
            except (_Gone, BrokenPipeError):
                self.retire()
                if attempt == 2:
                    raise ChildUnavailable("the capped child died before the call started") from None
        return False  # pragma: no cover - the loop returns or raises

    def _fork(self, memory_bytes: int, key: Any) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, which leaves through os._exit
            status = 0
            try:
                os.close(request_write)
                os.close(reply_read)
                _serve(request_read, reply_write, memory_bytes, parent)
            except BaseException:  # noqa: BLE001 - nothing may escape a forked child
                status = 70
            finally:
                os._exit(status)
        os.close(request_read)
        os.close(reply_write)
        self._pid, self._requests, self._replies = pid, request_write, reply_read
        self._buffer, self._key, self._calls = b"", key, 0

    def _close(self) -> None:
        for fd in (self._requests, self._replies):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._requests = self._replies = -1
        self._buffer = b""

    def _exited(self) -> bool:
        """Whether the child is gone (then reaped and forgotten)."""
        try:
            pid, _ = os.waitpid(self._pid, os.WNOHANG)
        except ChildProcessError:
            pid = self._pid
        if pid:
            self._pid = None
            self._close()
            return True
        return False

    def _read(self, size: int, deadline: float | None) -> bytes | None:
        """``size`` bytes from the child (None: the deadline passed); :class:`_Gone` if it closed its pipe."""
        while len(self._buffer) < size:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._replies], [], [], wait)
            if not ready:
                return None
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise _Gone
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_frame(self, deadline: float | None) -> bytes | None:
        header = self._read(_LENGTH.size, deadline)
        if header is None:
            return None
        return self._read(_LENGTH.unpack(header)[0], deadline)

    def _timed_out(self) -> tuple[str, Any]:
        self.retire()
        return "time", None

    def _crashed(self) -> tuple[str, Any]:
        wait_status = self.retire()
        if wait_status is not None and os.WIFSIGNALED(wait_status):
            return "crashed", signal.Signals(os.WTERMSIG(wait_status)).name
        code = os.waitstatus_to_exitcode(wait_status) if wait_status is not None else "unknown"
        return "crashed", f"exit status {code}"


class _Gone(Exception):
    """The child closed its pipe (it died)."""
