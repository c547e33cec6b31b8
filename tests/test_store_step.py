"""aodncore.pipeline.steps.store: StoreRunner with the local broker and real files."""

from __future__ import annotations

import logging
import os

import pytest

from aodncore.pipeline.common import PipelineFilePublishType as PT
from aodncore.pipeline.exceptions import InvalidStoreUrlError, StorageBrokerError
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection
from aodncore.pipeline.log import SYSINFO
from aodncore.pipeline.steps import get_store_runner as lazily_exported_get_store_runner
from aodncore.pipeline.steps.store import StoreRunner, get_store_runner
from aodncore.pipeline.storage import LocalFileStorageBroker


class RecordingBroker(LocalFileStorageBroker):
    """The real local broker, remembering which public calls it received."""

    def __init__(self, prefix):
        super().__init__(prefix)
        self.calls = []

    def upload(self, pipeline_files, is_stored_attr="is_stored", dest_path_attr="dest_path"):
        self.calls.append(("upload", len(pipeline_files), is_stored_attr, dest_path_attr))
        return super().upload(pipeline_files, is_stored_attr=is_stored_attr, dest_path_attr=dest_path_attr)

    def delete(self, pipeline_files, is_stored_attr="is_stored", dest_path_attr="dest_path"):
        self.calls.append(("delete", len(pipeline_files), is_stored_attr, dest_path_attr))
        return super().delete(pipeline_files, is_stored_attr=is_stored_attr, dest_path_attr=dest_path_attr)


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def broker(store):
    return RecordingBroker(str(store))


@pytest.fixture
def logger():
    return logging.getLogger("aodncore.test.store_step")


@pytest.fixture
def make_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()

    def _make(name, publish_type, dest_path=None, archive_path=None):
        path = src / name
        path.write_text(f"content of {name}")
        pf = PipelineFile(str(path), dest_path=dest_path, archive_path=archive_path, publish_type=publish_type)
        return pf

    return _make


def _deletion(dest_path, publish_type=PT.DELETE_ONLY):
    return PipelineFile(os.path.basename(dest_path), dest_path=dest_path, is_deletion=True, publish_type=publish_type)


def test_factory_builds_runner_on_url_broker(tmp_path):
    runner = get_store_runner(f"file://{tmp_path}", None, None)
    assert isinstance(runner, StoreRunner)
    assert isinstance(runner.broker, LocalFileStorageBroker)
    assert runner.broker.prefix == str(tmp_path)
    assert runner.archive_mode is False
    assert repr(runner) == f"StoreRunner(broker=LocalFileStorageBroker(prefix='{tmp_path}'))"
    assert get_store_runner(f"file://{tmp_path}", None, None, archive_mode=True).archive_mode is True
    assert lazily_exported_get_store_runner is get_store_runner


def test_factory_rejects_bad_url():
    with pytest.raises(InvalidStoreUrlError):
        get_store_runner("gopher://x/y", None, None)


def test_attribute_names_by_mode(broker):
    normal = StoreRunner(broker, None, None)
    assert (normal.is_stored_attr, normal.pending_addition_attr, normal.dest_path_attr) == (
        "is_stored", "pending_store_addition", "dest_path")
    archive = StoreRunner(broker, None, None, archive_mode=True)
    assert (archive.is_stored_attr, archive.pending_addition_attr, archive.dest_path_attr) == (
        "is_archived", "pending_archive", "archive_path")


def test_additions_are_uploaded(broker, store, make_file, logger, caplog):
    upload = make_file("a.nc", PT.UPLOAD_ONLY, dest_path="IMOS/a.nc")
    harvest_upload = make_file("b.nc", PT.HARVEST_UPLOAD, dest_path="IMOS/sub/b.nc")
    harvest_only = make_file("c.nc", PT.HARVEST_ONLY, dest_path="IMOS/c.nc")
    no_action = make_file("d.nc", PT.NO_ACTION, dest_path="IMOS/d.nc")
    files = PipelineFileCollection([upload, harvest_upload, harvest_only, no_action])
    with caplog.at_level(SYSINFO, logger=logger.name):
        StoreRunner(broker, None, logger).run(files)
    assert (store / "IMOS/a.nc").read_text() == "content of a.nc"
    assert (store / "IMOS/sub/b.nc").read_text() == "content of b.nc"
    assert not (store / "IMOS/c.nc").exists() and not (store / "IMOS/d.nc").exists()
    assert upload.is_stored and harvest_upload.is_stored
    assert not harvest_only.is_stored and not no_action.is_stored
    assert upload.published == "Yes"
    assert broker.calls == [("upload", 2, "is_stored", "dest_path")]
    assert any(r.name == logger.name for r in caplog.records)


def test_single_file_and_nothing_pending(broker, store, make_file):
    runner = StoreRunner(broker, None, None)
    pf = make_file("a.nc", PT.UPLOAD_ONLY, dest_path="a.nc")
    runner.run(pf)
    assert pf.is_stored
    broker.calls.clear()
    runner.run(pf)  # already stored: nothing pending, no broker call
    runner.run(PipelineFileCollection())
    assert broker.calls == []


def test_deletions_are_removed(broker, store, make_file):
    (store / "IMOS").mkdir()
    (store / "IMOS/old.nc").write_text("old")
    (store / "IMOS/keep.nc").write_text("keep")
    deletion = _deletion("IMOS/old.nc")
    unharvest_only = _deletion("IMOS/keep.nc", publish_type=PT.UNHARVEST_ONLY)
    addition = make_file("new.nc", PT.UPLOAD_ONLY, dest_path="IMOS/new.nc")
    StoreRunner(broker, None, None).run(PipelineFileCollection([deletion, unharvest_only, addition]))
    assert not (store / "IMOS/old.nc").exists()
    assert (store / "IMOS/keep.nc").exists()
    assert (store / "IMOS/new.nc").exists()
    assert deletion.is_stored and deletion.is_deleted
    assert not unharvest_only.is_stored
    assert broker.calls == [("upload", 1, "is_stored", "dest_path"), ("delete", 1, "is_stored", "dest_path")]


def test_undo_removes_uploaded_files(broker, store, make_file):
    runner = StoreRunner(broker, None, None)
    first = make_file("a.nc", PT.HARVEST_UPLOAD, dest_path="IMOS/a.nc")
    second = make_file("b.nc", PT.UPLOAD_ONLY, dest_path="IMOS/b.nc")
    files = PipelineFileCollection([first, second])
    runner.run(files)
    assert (store / "IMOS/a.nc").exists() and (store / "IMOS/b.nc").exists()

    first.should_undo = True
    broker.calls.clear()
    runner.run(files)
    assert not (store / "IMOS/a.nc").exists()
    assert (store / "IMOS/b.nc").exists()
    assert first.is_upload_undone and not second.is_upload_undone
    assert first.published == "No"
    assert broker.calls == [("delete", 1, "is_upload_undone", "dest_path")]


def test_undo_of_never_uploaded_file_is_harmless(broker, store, make_file):
    pf = make_file("a.nc", PT.UPLOAD_ONLY, dest_path="IMOS/a.nc")
    pf.should_undo = True
    StoreRunner(broker, None, None).run(pf)
    assert pf.is_upload_undone and not pf.is_stored
    assert not (store / "IMOS").exists()


def test_archive_mode_uses_archive_path(broker, store, make_file):
    archive_only = make_file("a.nc", PT.ARCHIVE_ONLY, archive_path="archive/a.nc")
    all_three = make_file("b.nc", PT.HARVEST_ARCHIVE_UPLOAD, dest_path="public/b.nc", archive_path="archive/b.nc")
    upload_only = make_file("c.nc", PT.UPLOAD_ONLY, dest_path="public/c.nc")
    files = PipelineFileCollection([archive_only, all_three, upload_only])
    StoreRunner(broker, None, None, archive_mode=True).run(files.filter_by_bool_attribute("pending_archive"))
    assert sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()) == [
        "archive/a.nc", "archive/b.nc"]
    assert archive_only.is_archived and all_three.is_archived
    assert not all_three.is_stored and not upload_only.is_archived
    assert broker.calls == [("upload", 2, "is_archived", "archive_path")]


def test_set_is_overwrite(broker, store, make_file):
    (store / "IMOS").mkdir()
    (store / "IMOS/a.nc").write_text("old")
    (store / "IMOS/b.nc.bak").write_text("old")
    a = make_file("a.nc", PT.UPLOAD_ONLY, dest_path="IMOS/a.nc")
    b = make_file("b.nc", PT.UPLOAD_ONLY, dest_path="IMOS/b.nc")
    runner = StoreRunner(broker, None, None)
    runner.set_is_overwrite(PipelineFileCollection([a, b]))
    assert a.is_overwrite is True and b.is_overwrite is False
    runner.run(PipelineFileCollection([a, b]))
    assert (store / "IMOS/a.nc").read_text() == "content of a.nc"


def test_upload_failure_propagates(broker, store, make_file):
    good = make_file("a.nc", PT.UPLOAD_ONLY, dest_path="IMOS/a.nc")
    bad = make_file("b.nc", PT.UPLOAD_ONLY, dest_path="IMOS/b.nc")
    files = PipelineFileCollection([good, bad])
    os.remove(bad.src_path)
    with pytest.raises(StorageBrokerError):
        StoreRunner(broker, None, None).run(files)
    assert good.is_stored and not bad.is_stored
