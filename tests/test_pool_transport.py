"""The worker pool's direct links (:mod:`aodncore.ingest.parallel`: one executor task per worker per run, the files
over a connection of its own) against one executor task per file, the transport before: the same landing objects
give the same outcomes, log lines, file events, ingest-record rows and stored files; a worker that dies fails its
file and every later one exactly as a dead executor task did, and the pool is not kept."""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR, aodncore_lines, comparable_outcomes

from aodncore.ingest import keptpools, list_landing
from aodncore.ingest import parallel as parallel_module
from aodncore.ingest.configure import build_settings
from aodncore.ingest.logbatch import LogBatch
from aodncore.ingest.outcome import FAILED, PUBLISHED
from aodncore.ingest.parallel import ProcessIngestPool
from aodncore.pipeline.imoshandler import ImosGenericHandler

GOOD = list(GOOD_FILES)[:3]
CRASH_MARKER = "CRASHNOW"
_RANDOM = re.compile(r"[0-9a-f]{32}|[0-9a-f-]{36}|\d{8}T\d{6}Z?|(?<=-)[0-9a-f]{8}\b|(?<=Handler)\w{8}\b"
                     r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.\d+:Z]*|datetime\.datetime\([^)]*\)|\d+\.\d+ ?s\b")


class CrashingHandler(ImosGenericHandler):
    """The default handler, except that the worker process dies (as on a segfault) on a file with the marker."""

    def preprocess(self) -> None:
        if CRASH_MARKER in str(self.input_file):
            os._exit(7)
        super().preprocess()


def _difference(mine, theirs) -> str:
    return "\n".join(difflib.unified_diff("\n".join(map(str, theirs)).splitlines(),
                                          "\n".join(map(str, mine)).splitlines(), lineterm=""))


def _landed_names() -> list[str]:
    return [f"{name.removesuffix('.nc')}-{index}.nc" for index in range(3) for name in (*GOOD, BAD_NC)]


def _landing(path: Path, *names: str) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    for index in range(3):  # several files per worker and batch
        for name in names:
            shutil.copy(IMOS_DIR / name, path / f"{name.removesuffix('.nc')}-{index}.nc")
    return path


def _flow_run(tmp_path: Path, direct: bool, monkeypatch, caplog) -> tuple:
    from aodncore.ingest.ledger import IngestLedger
    from aodncore.prefect import fileevents
    from aodncore.prefect.flows import ingest_landing

    monkeypatch.setattr(parallel_module, "DIRECT_LINKS", direct)
    events: list[dict] = []
    emitted = fileevents.FileEventEmitter.__call__

    def capture(self, obj, outcome):
        events.append(fileevents.file_event(obj, outcome, handler=outcome.handler or self.handler))
        return emitted(self, obj, outcome)

    monkeypatch.setattr(fileevents.FileEventEmitter, "__call__", capture)
    records: list[logging.LogRecord] = []  # each file's one record, before records are joined by timing
    add = LogBatch.add
    monkeypatch.setattr(LogBatch, "add", lambda self, record: (records.append(record), add(self, record))[1])
    landing = _landing(tmp_path / "landing", *GOOD, BAD_NC)
    base = tmp_path / "base"
    shutil.rmtree(base, ignore_errors=True)
    caplog.clear()
    state = ingest_landing(str(landing), base_dir=str(base), checks=["cf:1.6"], settle_seconds=0, workers=2,
                           return_state=True)
    result = state.result(raise_on_failure=False)
    monkeypatch.undo()

    def plain(text: str) -> str:
        return _RANDOM.sub("<id>", text.replace(str(tmp_path), ""))

    with IngestLedger(base / "ingest-record.sqlite") as record:
        rows = sorted(plain(repr({**vars(entry), "recorded_at": 0})) for name in _landed_names()
                      for entry in record.history((landing / name).as_uri()))
    stores = sorted((plain(str(p.relative_to(base))), hashlib.sha256(p.read_bytes()).hexdigest())
                    for p in base.rglob("*") if p.is_file() and "ingest-record" not in p.name
                    and p.suffix != ".json")
    sidecars = sorted(plain(p.read_text()) for p in base.rglob("*.json") if "ingest-record" not in p.name)
    outcomes = sorted(plain(repr(o)) for o in comparable_outcomes(result["outcomes"]))
    return ((state.type, state.name, plain(state.message), result["counts"]), outcomes,
            sorted(aodncore_lines(records, plain)), sorted(plain(repr(e)) for e in events), rows, stores, sidecars,
            [r for r in aodncore_lines(caplog.records, plain) if "worker process failed" in r[2]])


@pytest.mark.prefect
def test_direct_links_and_a_task_per_file_give_the_same_run(prefect_harness, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="aodncore")
    direct = _flow_run(tmp_path, True, monkeypatch, caplog)
    per_file = _flow_run(tmp_path, False, monkeypatch, caplog)

    for mine, theirs in zip(direct, per_file, strict=True):
        assert mine == theirs, _difference(mine, theirs)
    summary, outcomes, lines, events, rows, stores, _sidecars, crashes = direct
    assert summary[3] == {PUBLISHED: 3 * len(GOOD), "quarantined": 3}
    files = 3 * (len(GOOD) + 1)
    assert len(outcomes) == len(lines) == len(events) == len(rows) == files and stores and not crashes


def _pool_run(tmp_path: Path, direct: bool, monkeypatch, caplog, names: list[str]) -> tuple:
    monkeypatch.setattr(parallel_module, "DIRECT_LINKS", direct)
    landing = tmp_path / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir()
    for name in names:
        shutil.copy(IMOS_DIR / GOOD[0], landing / name)
    settings = build_settings(base_dir=str(tmp_path / f"base-{direct}"), delete_landing=False,
                              handler=f"{__name__}:CrashingHandler")
    objects = sorted(list_landing(str(landing)), key=lambda obj: obj.name)
    caplog.clear()
    with ProcessIngestPool(settings, workers=1) as pool:
        outcomes = [pool.ingest(obj) for obj in objects]
        broken = pool._broken
    kept = keptpools._idle
    monkeypatch.undo()
    lines = [(r.levelname, r.getMessage().replace(str(tmp_path), "")) for r in caplog.records
             if r.name == parallel_module.__name__]
    return [(o.name, o.status, o.error) for o in outcomes], lines, broken, kept is None


def test_a_worker_that_dies_fails_its_file_and_the_later_ones_as_before(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="aodncore")
    names = ["a-first.nc", f"b-{CRASH_MARKER}.nc", "c-after.nc", "d-after.nc"]
    direct = _pool_run(tmp_path, True, monkeypatch, caplog, names)
    per_file = _pool_run(tmp_path, False, monkeypatch, caplog, names)

    assert direct == per_file, _difference(direct, per_file)
    outcomes, lines, broken, not_kept = direct
    assert outcomes[0][1] == PUBLISHED
    assert [(status, error) for _name, status, error in outcomes[1:]] == [
        (FAILED, "worker failed: BrokenProcessPool")] * 3
    assert [level for level, _ in lines] == ["ERROR"] * 3 and f"b-{CRASH_MARKER}.nc" in lines[0][1]
    assert broken and not_kept  # the pool is stopped, not kept for the next run


def test_a_kept_pool_serves_the_next_run_over_new_links(tmp_path, monkeypatch):
    """The links end with their run (every executor task done), so the workers can be kept and serve the next
    run; nothing is left in the socket folder's place."""
    monkeypatch.setattr(parallel_module, "DIRECT_LINKS", True)
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in GOOD:
        shutil.copy(IMOS_DIR / name, landing / name)
    settings = build_settings(base_dir=str(tmp_path / "base"), delete_landing=False)
    objects = list(list_landing(str(landing)))
    pids = []
    folders = []
    for _run in range(2):
        with ProcessIngestPool(settings, workers=2) as pool:
            assert {pool.ingest(obj).status for obj in objects} == {PUBLISHED}
            folders.append(_own_socket_folders())  # each existed only while its worker connected
            pids.append(sorted(pool._executor._processes))
        assert not pool._executor._pending_work_items  # every worker's task ended with the run
    assert pids[0] == pids[1]  # the same (kept) worker processes
    assert folders == [[], []] and _own_socket_folders() == []


def _own_socket_folders() -> list[str]:
    """This process's worker-link socket folders (:mod:`aodncore.ingest.sockdirs`) in the temporary folder and
    /tmp (not multiprocessing's own folder, where the fork server listens)."""
    from multiprocessing import util

    from aodncore.ingest import sockdirs

    prefix, own = f"{sockdirs.PREFIX}{os.getpid()}-", os.path.basename(util.get_temp_dir())
    return [name for root in {tempfile.gettempdir(), "/tmp"} for name in os.listdir(root)
            if name.startswith(prefix) and name != own]
