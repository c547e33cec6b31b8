"""The long-lived capped child (``aodncore.util.cappedchild``, used by pool workers and the fork host): the same
results as a child forked per call, on every real NetCDF file and in any order; every cap still holds on a later
call, and the child is replaced after a cap, a crash, an outside kill, N calls or growth; none is left behind."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from ingest_helpers import GOOD_FILES, IMOS_DIR

from aodncore.limits import CheckLimits
from aodncore.pipeline.steps import check
from aodncore.pipeline.steps.checklimits import LimitedCheckResult, check_in_capped_child
from aodncore.util import capped, cappedchild
from aodncore.util.capped import run_capped

MiB = 1024 ** 2
DATA = Path(__file__).parent / "data"
#: every NetCDF file the tests have (and the one that only claims to be)
NETCDF_FILES = sorted(str(p) for p in DATA.rglob("*.nc"))
_kept: list = []


@pytest.fixture
def reuse(monkeypatch):
    """This (test) process forks its capped children itself and shares one long-lived child, as a pool worker."""
    monkeypatch.setattr(capped, "_single_threaded", lambda: True)
    monkeypatch.delenv(capped.REUSE_ENV, raising=False)
    capped.reuse_child(True)
    yield capped._reused
    capped.reuse_child(False)


def child_pid() -> int:
    return os.getpid()


def allocate(count: int) -> int:
    return int(np.ones(count, dtype=np.uint8).sum())


def keep(count: int) -> int:
    _kept.append(np.ones(count, dtype=np.uint8))  # stays allocated in the child after the call
    return len(_kept)


def segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def exit_now() -> None:
    os._exit(7)


def cwd_and_env() -> tuple[str, str | None]:
    return os.getcwd(), os.environ.get("AODNCORE_TEST_CAPPED_CHILD")


def _comparable(result) -> tuple:
    return (type(result).__name__, bool(result.compliant), result.errors,
            tuple(line for line in result.log if "Report generated" not in line))


def _check_all(paths, tmp_path, checks=("cf:1.6", "imos:1.4")) -> dict[str, tuple]:
    params, caps = {"checks": list(checks)}, CheckLimits()
    return {path: _comparable(check_in_capped_child(check.ComplianceCheckerCheckRunner, params, path, caps,
                                                    work_dir=str(tmp_path)))
            for path in paths}


def test_every_real_netcdf_file_checks_the_same_in_one_reused_child_in_either_order(reuse, tmp_path):
    assert len(NETCDF_FILES) >= 20
    capped.reuse_child(False)
    fresh = _check_all(NETCDF_FILES, tmp_path)  # a child forked per file
    capped.reuse_child(True)
    forward = _check_all(NETCDF_FILES, tmp_path)
    child = reuse.pid
    backward = _check_all(NETCDF_FILES[::-1], tmp_path)
    assert reuse.pid == child is not None  # one child served every check of both orders
    assert forward == fresh
    assert backward == fresh
    assert {result[1] for result in fresh.values()} == {True, False}  # compliant and non-compliant files alike
    assert not os.listdir(tmp_path)


def _huge_variable_file(path: Path, length: int) -> Path:
    """A few KB of NetCDF-4 whose coordinate variable reads as ``length`` doubles (never written)."""
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.Conventions = "CF-1.6"
        ds.createDimension("TIME", length)
        var = ds.createVariable("TIME", "f8", ("TIME",), zlib=True, chunksizes=(1 << 20,))
        var.units, var.standard_name, var.axis = "days since 1950-01-01", "time", "T"
    return path


def test_the_memory_cap_holds_on_a_later_check_and_the_next_check_gets_a_fresh_child(reuse, tmp_path):
    good = [str(IMOS_DIR / name) for name in list(GOOD_FILES)[:3]]
    bomb = str(_huge_variable_file(tmp_path / "bomb.nc", 300_000_000))
    work = tmp_path / "work"
    work.mkdir()
    expected = _check_all(good, work, ("cf:1.6",))
    child = reuse.pid
    params, caps = {"checks": ["cf:1.6"]}, CheckLimits(memory_bytes=512 * MiB, timeout_seconds=120)
    result = check_in_capped_child(check.ComplianceCheckerCheckRunner, params, bomb, caps, work_dir=str(work))
    assert isinstance(result, LimitedCheckResult) and result.limit == "limits.check_memory_bytes"
    assert reuse.pid is None  # retired, not kept for the next file
    assert _check_all(good[:1], work, ("cf:1.6",)) == {good[0]: expected[good[0]]}
    assert reuse.pid not in (None, child)


def test_a_memory_bomb_after_good_calls_is_memory_and_the_next_call_is_fine(reuse):
    first = run_capped(child_pid, memory_bytes=256 * MiB).value
    for count in (10, 1000, 100_000):
        assert run_capped(allocate, count, memory_bytes=256 * MiB).value == count
    assert run_capped(child_pid, memory_bytes=256 * MiB).value == first
    assert run_capped(allocate, 1024 * MiB, memory_bytes=256 * MiB).status == "memory"
    # the cap is over the process as it is, not spent by earlier calls: just under it still fits
    assert run_capped(allocate, 200 * MiB, memory_bytes=256 * MiB).value == 200 * MiB
    assert run_capped(child_pid, memory_bytes=256 * MiB).value != first


def test_a_timeout_on_a_later_call_kills_the_child_and_the_next_call_gets_a_new_one(reuse):
    first = run_capped(child_pid, timeout_seconds=30).value
    started = time.monotonic()
    assert run_capped(time.sleep, 60, timeout_seconds=0.5).status == "time"
    assert time.monotonic() - started < 30
    assert not _alive(first)
    second = run_capped(child_pid, timeout_seconds=30).value
    assert second != first and _alive(second)


@pytest.mark.parametrize(("crash", "value"), [(segfault, "SIGSEGV"), (exit_now, "exit status 7")])
def test_a_crash_on_a_later_call_is_reported_and_the_next_call_gets_a_new_child(reuse, crash, value):
    first = run_capped(child_pid).value
    assert run_capped(allocate, 10).value == 10
    result = run_capped(crash)
    assert (result.status, result.value) == ("crashed", value)
    assert run_capped(allocate, 20).value == 20
    assert run_capped(child_pid).value != first


def test_a_child_killed_between_calls_is_replaced_without_the_caller_noticing(reuse):
    first = run_capped(child_pid).value
    os.kill(first, signal.SIGKILL)
    assert run_capped(allocate, 30).value == 30  # not "crashed": nothing of this call had run
    second = run_capped(child_pid).value
    assert second != first
    os.kill(second, signal.SIGKILL)
    time.sleep(0.2)  # dead and a zombie by now
    assert run_capped(child_pid).status == "ok"


def test_the_child_is_replaced_after_n_calls(reuse, monkeypatch):
    monkeypatch.setattr(cappedchild, "CAPPED_CHILD_MAX_CALLS", 3)
    pids = [run_capped(child_pid).value for _ in range(7)]
    assert pids[0] == pids[1] == pids[2] != pids[3]
    assert pids[3] == pids[4] == pids[5] != pids[6]


def test_the_child_is_replaced_once_it_has_grown_beyond_the_slack(reuse, monkeypatch):
    monkeypatch.setattr(cappedchild, "CAPPED_CHILD_GROWTH_SLACK_BYTES", 16 * MiB)
    first = run_capped(child_pid, memory_bytes=512 * MiB).value
    assert run_capped(keep, 4 * MiB, memory_bytes=512 * MiB).value == 1  # within the slack: kept
    assert run_capped(child_pid, memory_bytes=512 * MiB).value == first
    assert run_capped(keep, 32 * MiB, memory_bytes=512 * MiB).value == 2  # beyond: retired after the call
    second = run_capped(child_pid, memory_bytes=512 * MiB).value
    assert second != first
    assert run_capped(keep, 1, memory_bytes=512 * MiB).value == 1  # a fresh start: nothing kept from before


def test_a_call_with_another_cap_or_key_gets_its_own_child(reuse):
    first = run_capped(child_pid, memory_bytes=256 * MiB).value
    assert run_capped(child_pid, memory_bytes=256 * MiB).value == first
    second = run_capped(child_pid, memory_bytes=128 * MiB).value
    third = run_capped(child_pid, memory_bytes=128 * MiB, key=("suites", "added")).value
    assert len({first, second, third}) == 3


def test_the_callers_environment_and_working_folder_travel_with_each_call(reuse, monkeypatch, tmp_path):
    first = run_capped(child_pid).value
    monkeypatch.setenv("AODNCORE_TEST_CAPPED_CHILD", "one")
    monkeypatch.chdir(tmp_path)
    assert run_capped(cwd_and_env).value == (str(tmp_path), "one")
    monkeypatch.setenv("AODNCORE_TEST_CAPPED_CHILD", "two")
    monkeypatch.chdir(tmp_path.parent)
    assert run_capped(cwd_and_env).value == (str(tmp_path.parent), "two")
    assert run_capped(child_pid).value == first


def test_what_the_child_cannot_have_runs_in_a_fresh_fork(reuse):
    first = run_capped(child_pid).value
    assert run_capped(lambda: 41 + 1).value == 42  # cannot be sent: forked for it
    globals()["defined_later"] = _make_late_function()  # does not exist in the child's (older) memory
    try:
        assert run_capped(defined_later).value == "late"  # noqa: F821 - defined just above
    finally:
        del globals()["defined_later"]
    assert run_capped(child_pid).value == first  # and the long-lived child is still the one


def _make_late_function():
    def defined_later() -> str:
        return "late"

    defined_later.__qualname__ = "defined_later"
    return defined_later


def test_the_off_switch_gives_every_call_a_fresh_fork(reuse, monkeypatch):
    first = run_capped(child_pid).value
    monkeypatch.setenv(capped.REUSE_ENV, "0")
    pids = {run_capped(child_pid).value for _ in range(3)}
    assert len(pids) == 3 and first not in pids
    assert reuse.pid is None and not _alive(first)


def test_classic_processes_fork_per_call(monkeypatch):
    monkeypatch.setattr(capped, "_single_threaded", lambda: True)
    assert not capped._reuse  # nothing in a plain process (a HandlerBase.run() script, a test) turns it on
    pids = {run_capped(child_pid).value for _ in range(3)}
    assert len(pids) == 3 and capped._reused.pid is None


def _alive(process_id: int) -> bool:
    try:
        with open(f"/proc/{process_id}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children(process_id: int) -> list[int]:
    with open(f"/proc/{process_id}/task/{process_id}/children") as children:
        return [int(pid) for pid in children.read().split()]


def test_a_pool_workers_child_is_reused_and_goes_with_the_worker(tmp_path):
    from aodncore.ingest import PUBLISHED, list_landing
    from aodncore.ingest.configure import build_settings
    from aodncore.ingest.parallel import ProcessIngestPool

    landing = tmp_path / "landing"
    landing.mkdir()
    for name in list(GOOD_FILES)[:3]:
        shutil.copy(IMOS_DIR / name, landing / name)
    settings = build_settings(base_dir=str(tmp_path / "base"), checks=["cf:1.6"], delete_landing=False)
    pool = ProcessIngestPool(settings, workers=1)
    try:
        outcomes = [pool.ingest(obj) for obj in list_landing(str(landing))]
        assert [outcome.status for outcome in outcomes] == [PUBLISHED] * 3
        (worker,) = pool._executor._processes
        (child,) = _children(worker)  # one long-lived capped child checked all three files
        pool._hang_up()  # the run's links hold the worker (parallel.py): end them, as the run's end does
        assert pool._executor.submit(child_pid).result() == worker
    finally:
        pool.shutdown(keep=False)
    deadline = time.monotonic() + 30
    while (_alive(worker) or _alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker) and not _alive(child)
