"""Worker processes kept between runs (``aodncore.ingest.keptpools``): a reused pool gives the same outcomes, log
lines and stores as a fresh one; anything the workers were started with that changed (environment), a crashed
worker, an overlapping run: a fresh pool; idle and exiting processes leave no worker behind."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, ENV_MARKER, GOOD_FILES, HANDLER_PREFIX, IMOS_DIR

from aodncore.ingest import FAILED, PUBLISHED, QUARANTINED, keptpools, list_landing
from aodncore.ingest.configure import build_settings
from aodncore.ingest.parallel import ProcessIngestPool


@pytest.fixture(autouse=True)
def no_kept_pool(monkeypatch):
    monkeypatch.delenv(keptpools.IDLE_SECONDS_ENV, raising=False)
    keptpools.stop_idle()
    yield
    keptpools.stop_idle()


def _gone(pids, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_running(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _worker_pids(pool: ProcessIngestPool) -> set[int]:
    return set(pool._executor._processes)


GOOD = next(iter(GOOD_FILES))


def _run(tmp_path: Path, caplog, tag: str, names=(GOOD, BAD_NC), handler=None, workers=2):
    """One run's worth of objects through a pool: (reused?, outcomes by name, normalised log lines, stores, pids)."""
    landing = tmp_path / f"landing-{tag}"
    landing.mkdir()
    for name in names:
        shutil.copy(IMOS_DIR / name, landing / name)
    options = {"handler": handler} if handler else {}
    base = tmp_path / f"base-{tag}"
    settings = build_settings(base_dir=str(base), **options)
    caplog.clear()
    objects = sorted(list_landing(str(landing)), key=lambda o: o.name)
    with ProcessIngestPool(settings, workers=workers) as pool:
        with ThreadPoolExecutor(len(objects)) as threads:  # as the batch tasks call it: all objects at once
            outcomes = dict(zip([obj.name for obj in objects], threads.map(pool.ingest, objects), strict=True))
        pids = _worker_pids(pool)
    lines = sorted(_normalised(r.getMessage(), tag) for r in caplog.records
                   if r.process != os.getpid() and r.name.startswith("aodncore"))
    stores = {kind: sorted(_normalised(str(p.relative_to(base / kind)), tag) for p in (base / kind).rglob("*")
                           if p.is_file())
              for kind in ("published", "archive", "error") if (base / kind).exists()}
    return pool.reused, outcomes, lines, stores, pids


def _normalised(text: str, tag: str) -> str:
    text = text.replace(f"-{tag}", "-<tag>")
    # quarantine folders are named <UTC second>-<id>: two runs may straddle a second
    return re.sub(r"\d{8}T\d{6}Z|[0-9a-f]{8,}|o-[\w]+|tmp\w+|\d+\.\d+ s", "<id>", text)


def test_a_reused_pool_gives_what_a_fresh_one_gives(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="aodncore")
    first = _run(tmp_path, caplog, "first")
    second = _run(tmp_path, caplog, "second")
    monkeypatch.setenv(keptpools.IDLE_SECONDS_ENV, "0")
    keptpools.stop_idle()
    monkeypatch.delenv(keptpools.IDLE_SECONDS_ENV)  # the same environment as the second run had
    fresh = _run(tmp_path, caplog, "fresh")

    assert (first[0], second[0], fresh[0]) == (False, True, False)
    assert second[4] == first[4] and not (fresh[4] & first[4])  # the same worker processes, then new ones
    assert {o.status for o in first[1].values()} == {PUBLISHED, QUARANTINED}
    for run in (second, fresh):
        assert {n: (o.status, o.error, o.check_result) for n, o in run[1].items()} == \
               {n: (o.status, o.error, o.check_result) for n, o in first[1].items()}
        assert run[2] == first[2] and run[2]  # every log line, in the same words
        assert run[3] == first[3] and run[3]["published"] and run[3]["error"]
    assert _gone(first[4])


def test_a_changed_environment_gets_a_fresh_pool_that_sees_it(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="aodncore")
    handler = f"{HANDLER_PREFIX}:EnvEchoHandler"
    monkeypatch.setenv(ENV_MARKER, "before")
    first = _run(tmp_path, caplog, "one", names=[next(iter(GOOD_FILES))], handler=handler)
    monkeypatch.setenv(ENV_MARKER, "after")
    second = _run(tmp_path, caplog, "two", names=[next(iter(GOOD_FILES))], handler=handler)

    assert second[0] is False and not (second[4] & first[4])
    assert _gone(first[4])  # the old pool was stopped, not left idle beside the new one
    (before,), (after,) = first[1].values(), second[1].values()
    assert before.status == after.status == FAILED
    assert f"{ENV_MARKER}=before" in before.error + "".join(first[2])
    assert f"{ENV_MARKER}=after" in "".join(second[2]) and f"{ENV_MARKER}=before" not in "".join(second[2])


def test_a_pool_whose_worker_crashed_is_not_reused(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="aodncore")
    landing = tmp_path / "landing"
    landing.mkdir()
    name = next(iter(GOOD_FILES))
    shutil.copy(IMOS_DIR / name, landing / name)
    settings = build_settings(base_dir=str(tmp_path / "base-crash"), delete_landing=False)
    (obj,) = list(list_landing(str(landing)))
    with ProcessIngestPool(settings, workers=1) as pool:
        with pytest.raises(Exception, match="abruptly|terminated"):
            pool._executor.submit(os._exit, 3).result()  # a worker dies (as on a segfault or the OOM killer)
        crashed = pool.ingest(obj)
    assert crashed.status == FAILED and "BrokenProcessPool" in crashed.error  # the object is not lost
    after = _run(tmp_path, caplog, "after", names=[name])
    assert after[0] is False
    assert after[1][name].status == PUBLISHED


def test_a_pool_given_back_after_an_error_is_stopped(tmp_path):
    settings = build_settings(base_dir=str(tmp_path / "base"))
    with pytest.raises(KeyboardInterrupt), ProcessIngestPool(settings, workers=1) as pool:
        assert pool._executor.submit(os.getpid).result()
        pids = _worker_pids(pool)
        raise KeyboardInterrupt
    assert keptpools._idle is None and _gone(pids)


def test_overlapping_runs_never_share_a_pool(tmp_path):
    settings = build_settings(base_dir=str(tmp_path / "base"))
    with ProcessIngestPool(settings, workers=1) as first:
        with ProcessIngestPool(settings, workers=1) as second:
            assert second._executor is not first._executor and not second.reused
            assert second._executor.submit(os.getpid).result() != first._executor.submit(os.getpid).result()
            second_pids = _worker_pids(second)
        kept = keptpools._idle
        assert kept is not None and kept.executor is second._executor  # the one given back
        first_pids = _worker_pids(first)
    assert keptpools._idle.executor is first._executor  # the last given back is kept, the other stopped
    assert _gone(second_pids) and not _gone(first_pids, timeout=0.2)


def test_concurrent_runs_in_threads_each_get_their_own_pool(tmp_path):
    settings = build_settings(base_dir=str(tmp_path / "base"))
    with ProcessIngestPool(settings, workers=1):
        pass  # one pool kept idle
    executors = []
    barrier = threading.Barrier(2)

    def run() -> None:
        with ProcessIngestPool(settings, workers=1) as pool:
            executors.append(pool._executor)
            barrier.wait(timeout=30)
            pool._executor.submit(os.getpid).result()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(executors) == 2 and executors[0] is not executors[1]


def test_an_idle_pool_is_stopped_after_the_idle_time(tmp_path, monkeypatch):
    monkeypatch.setenv(keptpools.IDLE_SECONDS_ENV, "0.3")
    settings = build_settings(base_dir=str(tmp_path / "base"))
    with ProcessIngestPool(settings, workers=2) as pool:
        for future in [pool._executor.submit(time.sleep, 0.2) for _ in range(2)]:
            future.result()
        pids = _worker_pids(pool)
    assert len(pids) == 2 and keptpools._idle is not None
    assert _gone(pids, timeout=10) and keptpools._idle is None


def test_idle_seconds_zero_stops_the_workers_with_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv(keptpools.IDLE_SECONDS_ENV, "0")
    settings = build_settings(base_dir=str(tmp_path / "base"))
    with ProcessIngestPool(settings, workers=1) as pool:
        pool._executor.submit(os.getpid).result()
        pids = _worker_pids(pool)
    assert keptpools._idle is None and _gone(pids, timeout=0.5)


def test_no_worker_outlives_its_process(tmp_path):
    """A process that exits with a pool kept idle (default idle time: a minute) stops its workers at exit."""
    script = f"""
import os, sys
from aodncore.ingest.configure import build_settings
from aodncore.ingest.parallel import ProcessIngestPool
settings = build_settings(base_dir={str(tmp_path / "base")!r})
with ProcessIngestPool(settings, workers=2) as pool:
    import time
    for future in [pool._executor.submit(time.sleep, 0.2) for _ in range(2)]:
        future.result()
    print("PIDS", *pool._executor._processes, flush=True)
"""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert time.monotonic() - started < 50  # not waiting for the idle time
    pids = [int(pid) for pid in result.stdout.split("PIDS", 1)[1].split()]
    assert len(pids) == 2 and _gone(pids, timeout=10)
