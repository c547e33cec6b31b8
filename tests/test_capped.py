"""``aodncore.util.capped``: a function run in a child process under a memory cap and a timeout.

Both ways of making the child are exercised: a fork of this (single-threaded) process, and — when the calling
process has other threads — the fork host.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from aodncore.util import capped
from aodncore.util.capped import run_capped

MiB = 1024 ** 2
_prepared: list[int] = []


def allocate(count: int) -> int:
    return int(np.ones(count, dtype=np.uint8).sum())


def sleep_then(seconds: float, value: str) -> str:
    time.sleep(seconds)
    return value


def fail() -> None:
    raise ValueError("the function itself failed")


def crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def chatter() -> str:
    print("printed by the child")
    os.write(2, b"written to stderr by the child\n")
    return "quiet"


def prepare() -> None:
    _prepared.append(os.getpid())


def prepared_in() -> list[int]:
    return list(_prepared)


def pid() -> int:
    return os.getpid()


@pytest.fixture(params=["fork", "host"])
def mode(request, monkeypatch):
    """``fork``: this process forks the child itself (other test threads, e.g. a session's S3 server, only wait
    on sockets); ``host``: a second thread makes run_capped use the fork host."""
    if request.param == "fork":
        monkeypatch.setattr(capped, "_single_threaded", lambda: True)
        yield request.param
        return
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    yield request.param
    stop.set()
    thread.join()


def test_result_comes_back(mode):
    assert run_capped(allocate, 1000, memory_bytes=256 * MiB, timeout_seconds=30).value == 1000
    child = run_capped(pid)
    assert child.ok and child.value != os.getpid()


def test_memory_cap(mode):
    result = run_capped(allocate, 2048 * MiB, memory_bytes=256 * MiB)
    assert result.status == "memory"
    # without the cap the same call succeeds
    assert run_capped(allocate, 64 * MiB).ok


def test_timeout(mode):
    started = time.monotonic()
    result = run_capped(sleep_then, 60, "late", timeout_seconds=0.5)
    assert result.status == "time"
    assert time.monotonic() - started < 30  # killed, not waited for
    assert run_capped(sleep_then, 0, "in time", timeout_seconds=30).value == "in time"


def test_exceptions_and_crashes(mode):
    error = run_capped(fail)
    assert error.status == "error" and isinstance(error.value, ValueError)
    crashed = run_capped(crash)
    assert (crashed.status, crashed.value) == ("crashed", "SIGSEGV")


def test_child_output_never_reaches_the_console(mode, capfd):
    assert run_capped(chatter).value == "quiet"
    out, err = capfd.readouterr()
    assert "child" not in out and "child" not in err


def test_prepare_runs_in_the_forking_process_before_the_fork(mode):
    _prepared.clear()
    seen_by_child = run_capped(prepared_in, prepare=prepare).value
    assert len(seen_by_child) == 1  # the child inherited the prepared state
    if mode == "fork":
        assert seen_by_child == [os.getpid()] and _prepared == [os.getpid()]
    else:
        assert seen_by_child != [os.getpid()] and _prepared == []  # prepared in the fork host


def test_fork_host_restarts_after_dying():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        assert run_capped(pid).ok
        host = capped._host._process
        host.kill()
        host.wait()
        assert run_capped(allocate, 10).value == 10
        assert capped._host._process.pid != host.pid
    finally:
        stop.set()
        thread.join()


def environment_value() -> str | None:
    return os.environ.get("AODNCORE_TEST_CAPPED_ENV")


def test_the_callers_current_environment_reaches_the_child(mode, monkeypatch):
    monkeypatch.setenv("AODNCORE_TEST_CAPPED_ENV", "first")
    assert run_capped(environment_value).value == "first"
    monkeypatch.setenv("AODNCORE_TEST_CAPPED_ENV", "second")  # changed after the fork host started
    assert run_capped(environment_value).value == "second"


def write_pid_then_sleep(path: str) -> None:
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(60)


def _alive(process_id: int) -> bool:
    try:
        with open(f"/proc/{process_id}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_capped_child_does_not_outlive_a_killed_fork_host(tmp_path):
    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=True)
    helper.start()
    pid_file = tmp_path / "child.pid"
    outcome: list = []
    caller = threading.Thread(target=lambda: outcome.append(_call_catching(write_pid_then_sleep, str(pid_file))))
    try:
        caller.start()
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        capped._host._process.kill()
        caller.join(30)
        assert outcome and isinstance(outcome[0], RuntimeError)  # the caller hears the host died, not a hang
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        stop.set()
        helper.join()


def _call_catching(function, *args):
    try:
        return run_capped(function, *args, timeout_seconds=120)
    except RuntimeError as error:
        return error
