"""One reused working folder per worker thread inside a run folder (:func:`aodncore.ingest.scratch.object_folder`).

The same landing objects ingested with the folder reused and with a new folder per object (the fallback) give the
same outcomes, the same log lines, the same error store and published store, and leave nothing of any object in
the working folder.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, HANDLER_PREFIX, IMOS_DIR, aodncore_lines, comparable_outcomes

from aodncore.ingest import list_landing
from aodncore.ingest import scratch as scratch_module
from aodncore.ingest.configure import build_settings
from aodncore.ingest.runner import in_run_folder, ingest_object
from aodncore.ingest.scratch import object_folder, run_scratch

GOOD = list(GOOD_FILES)[:2]
_RANDOM = re.compile(r"[0-9a-f]{32}|[0-9a-f-]{36}|\d{8}T\d{6}Z?|o-\w{8}|(?<=-)[0-9a-f]{8}\b|(?<=Handler)\w{8}\b"
                     r"|datetime\.datetime\([^)]*\)")
"""Ids, time stamps and random folder names, which differ from run to run."""


def test_a_thread_reuses_one_emptied_folder_inside_a_run_folder(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    with run_scratch(tmp_path / "work") as run:
        with object_folder(str(run.path)) as first:
            os.makedirs(os.path.join(first, "landing", "deeper", "deepest"))
            Path(first, "landing", "a.nc").write_text("a")
            Path(first, "loose.txt").write_text("b")
            os.symlink(outside, os.path.join(first, "landing", "link"))
            os.symlink(tmp_path, os.path.join(first, "dirlink"))
            with object_folder(str(run.path)) as nested:  # in use: a nested call gets its own
                assert nested != first
        with object_folder(str(run.path)) as second:
            assert second == first
            assert sorted(os.listdir(second)) == ["landing"] and os.listdir(Path(second, "landing")) == []
        assert outside.read_text() == "keep me" and tmp_path.is_dir()
    assert not run.path.exists()


def test_outside_a_run_folder_every_object_gets_a_new_folder_removed_after(tmp_path):
    with object_folder(str(tmp_path)) as first:
        Path(first, "x").write_text("x")
    with object_folder(str(tmp_path)) as second:
        pass
    assert not Path(first).exists() and not Path(second).exists()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_emptied_is_not_reused(tmp_path, monkeypatch):
    with run_scratch(tmp_path / "work") as run:
        with object_folder(str(run.path)) as first:
            Path(first, "stuck").write_text("x")
            monkeypatch.setattr(scratch_module.os, "unlink", _refuse)  # neither emptied nor removed
        monkeypatch.undo()
        with object_folder(str(run.path)) as second:
            assert second != first and os.listdir(second) == []
        with object_folder(str(run.path)) as third:
            assert third == second
    assert not run.path.exists()  # the run's own clean-up takes the rest


def _refuse(path, *args, **kwargs):
    raise PermissionError(13, "refused", path)


def _run(tmp_path: Path, tag: str, reuse: bool, caplog, monkeypatch) -> tuple[list, list, list, list]:
    if not reuse:
        monkeypatch.setattr(scratch_module, "_is_run_folder", lambda path: False)
    landing = tmp_path / tag / "landing"
    landing.mkdir(parents=True)
    for name in (*GOOD, BAD_NC):
        shutil.copy(IMOS_DIR / name, landing / name)
    base = tmp_path / tag / "base"
    settings = build_settings(base_dir=str(base), checks=["cf:1.6"])
    caplog.clear()
    with run_scratch(tmp_path / tag / "work") as run:
        settings = in_run_folder(settings, run.path)
        outcomes = [ingest_object(obj, settings).to_dict() for obj in sorted(list_landing(str(landing)),
                                                                              key=lambda o: o.name)]
        left = sorted(str(p.relative_to(run.path)) for p in run.path.rglob("*") if p.is_file())
    monkeypatch.undo()

    def plain(text: str) -> str:
        return _RANDOM.sub("<id>", text.replace(str(tmp_path / tag), ""))

    outcomes = comparable_outcomes(outcomes)
    lines = aodncore_lines(caplog.records, plain)
    stores = sorted(plain(str(p.relative_to(base))) for p in base.rglob("*") if p.is_file() and
                    "ingest" not in p.name)
    return [plain(repr(o)) for o in outcomes], lines, stores, left


@pytest.mark.parametrize("handler", [None, f"{HANDLER_PREFIX}:ExplodingHandler"])
def test_reused_and_new_folders_give_the_same_outcomes_logs_and_stores(tmp_path, caplog, monkeypatch, handler):
    caplog.set_level(logging.DEBUG, logger="aodncore")
    if handler:
        original = build_settings
        monkeypatch.setattr(f"{__name__}.build_settings", lambda **kw: original(handler=handler, **kw))
    reused = _run(tmp_path, "reused", True, caplog, monkeypatch)
    if handler:
        monkeypatch.setattr(f"{__name__}.build_settings", lambda **kw: original(handler=handler, **kw))
    fresh = _run(tmp_path, "fresh", False, caplog, monkeypatch)

    for mine, theirs in zip(reused, fresh, strict=True):
        assert mine == theirs
    outcomes, lines, stores, left = reused
    assert len(outcomes) == 3 and lines and stores
    assert left == ["owner.json", "owner.lock"]  # nothing of any object left in the working folder


def test_folders_kept_for_runs_that_are_over_are_forgotten(tmp_path):
    for index in range(5):
        with run_scratch(tmp_path / f"work-{index}") as run:
            with object_folder(str(run.path)):
                pass
            with object_folder(str(run.path)):
                pass
    mine = [root for _pid, root in scratch_module._reusable.folders if root.startswith(str(tmp_path))]
    assert len(mine) == 1 and mine[0] == str(run.path)
