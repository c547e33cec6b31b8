"""The archive step hard-links a run's declared private copy (``aodncore.util.privatecopies``) and gives exactly
what the copy path gives: same bytes, permission bits and a fresh modification time; every other case copies."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR, restore_process_state  # noqa: F401

from aodncore.ingest import PUBLISHED, QUARANTINED, LandingObject
from aodncore.ingest.configure import build_settings
from aodncore.ingest.runner import ingest_object
from aodncore.pipeline import PipelineFile, PipelineFileCollection, PipelineFilePublishType
from aodncore.pipeline.exceptions import InvalidFileContentError, StorageBrokerError
from aodncore.pipeline.imoshandler import ImosGenericHandler
from aodncore.pipeline.steps.store import StoreRunner
from aodncore.pipeline.storage import LocalFileStorageBroker
from aodncore.util.fileops import safe_copy_file
from aodncore.util.privatecopies import ARCHIVE_BY_LINK_ENV, archive_uploads, private_sources

GOOD = next(iter(GOOD_FILES))
OLD_TIME = 1_000_000_000  # 2001: the landing file's time the private copy keeps (fetch copies it)


def _private(folder: Path, data: bytes = b"private copy\n", mode: int = 0o640) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "input.nc"
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, (OLD_TIME, OLD_TIME))
    return path


def _archive(broker: LocalFileStorageBroker, source: Path, archive_path: str = "pipe/input.nc") -> Path:
    pipeline_file = PipelineFile(str(source), archive_path=archive_path)
    broker.upload(pipeline_file, is_stored_attr="is_archived", dest_path_attr="archive_path")
    return Path(broker.prefix) / archive_path


def _archived(tmp_path: Path, source: Path, *, declare: bool = True, archiving: bool = True,
              mode: int | None = None) -> Path:
    broker = LocalFileStorageBroker(str(tmp_path / "archive"))
    broker.mode = mode
    uploads = archive_uploads() if archiving else contextlib.nullcontext()
    with private_sources(*([str(source)] if declare else [])), uploads:
        return _archive(broker, source)


def _same_inode(a: Path, b: Path) -> bool:
    return os.stat(a).st_ino == os.stat(b).st_ino and os.stat(a).st_dev == os.stat(b).st_dev


def _leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def test_a_declared_private_copy_is_linked_with_the_bytes_mode_and_time_a_copy_gives(tmp_path):
    source = _private(tmp_path / "processing")
    before = time.time()
    copied = _archived(tmp_path / "copied", source, declare=False)
    linked = _archived(tmp_path / "linked", source)

    assert not _same_inode(copied, source) and _same_inode(linked, source)
    for target in (copied, linked):
        info = os.stat(target)
        assert target.read_bytes() == source.read_bytes()
        assert stat.S_IMODE(info.st_mode) == 0o640
        assert info.st_mtime >= before - 1  # the moment it was archived, not the landing file's time
        assert _leftovers(target.parent) == []
    assert source.read_bytes() == b"private copy\n" and stat.S_IMODE(os.stat(source).st_mode) == 0o640


def test_an_existing_archive_object_is_replaced_by_the_link(tmp_path):
    source = _private(tmp_path / "processing")
    target = tmp_path / "archive" / "pipe" / "input.nc"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"an older version\n")

    assert _archived(tmp_path, source) == target
    assert _same_inode(target, source) and target.read_bytes() == b"private copy\n"
    assert _leftovers(target.parent) == []


@pytest.mark.parametrize("declare, archiving", [(False, True), (True, False)])
def test_undeclared_sources_and_other_stores_copy(tmp_path, declare, archiving):
    source = _private(tmp_path / "processing")
    target = _archived(tmp_path, source, declare=declare, archiving=archiving)
    assert not _same_inode(target, source) and target.read_bytes() == source.read_bytes()


def test_a_declared_path_replaced_by_another_file_is_copied(tmp_path):
    source = _private(tmp_path / "processing")
    broker = LocalFileStorageBroker(str(tmp_path / "archive"))
    with private_sources(str(source)), archive_uploads():
        other = tmp_path / "other.nc"
        other.write_bytes(b"someone else's file\n")
        os.replace(other, source)
        target = _archive(broker, source)
    assert not _same_inode(target, source) and target.read_bytes() == b"someone else's file\n"


def test_a_declared_path_turned_into_a_symlink_is_copied_not_linked(tmp_path):
    source = _private(tmp_path / "processing")
    elsewhere = tmp_path / "elsewhere.nc"
    elsewhere.write_bytes(b"what the symlink names\n")
    broker = LocalFileStorageBroker(str(tmp_path / "archive"))
    with private_sources(str(source)), archive_uploads():
        source.unlink()
        source.symlink_to(elsewhere)
        target = _archive(broker, source)
    assert not target.is_symlink() and not _same_inode(target, elsewhere)
    assert target.read_bytes() == b"what the symlink names\n"
    assert _leftovers(target.parent) == []


def test_a_store_on_another_file_system_gets_a_copy(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system to archive to")
    source = _private(tmp_path / "processing")
    store = Path(tempfile.mkdtemp(dir=shm, prefix="aodncore-test-"))
    try:
        broker = LocalFileStorageBroker(str(store))
        with private_sources(str(source)), archive_uploads():
            target = _archive(broker, source)  # os.link fails with EXDEV
        assert target.read_bytes() == source.read_bytes() and stat.S_IMODE(os.stat(target).st_mode) == 0o640
        assert _leftovers(target.parent) == []
    finally:
        shutil.rmtree(store)


def test_a_source_at_its_link_limit_gets_a_copy(tmp_path):
    source = _private(tmp_path / "processing")
    links = tmp_path / "links"
    links.mkdir()
    for index in range(70_000):  # ext4 allows 65,000 names per file
        try:
            os.link(source, links / str(index))
        except OSError as error:
            if error.errno != errno.EMLINK:
                raise
            break
    else:
        pytest.skip("this file system has no small hard-link limit")
    target = _archived(tmp_path, source)
    assert not _same_inode(target, source) and target.read_bytes() == source.read_bytes()
    assert _leftovers(target.parent) == []


def test_a_store_mode_the_private_copy_lacks_means_a_copy_and_the_private_copy_keeps_its_mode(tmp_path):
    source = _private(tmp_path / "processing", mode=0o640)
    target = _archived(tmp_path / "other", source, mode=0o644)
    assert not _same_inode(target, source) and stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(source).st_mode) == 0o640
    assert _leftovers(target.parent) == []
    assert _same_inode(_archived(tmp_path / "same", source, mode=0o640), source)


def test_archiving_onto_the_source_itself_fails_as_the_copy_does(tmp_path):
    errors = []
    for declare in (False, True):
        source = _private(tmp_path / f"declared-{declare}")
        broker = LocalFileStorageBroker(str(source.parent))
        with private_sources(*([str(source)] if declare else [])), archive_uploads():
            with pytest.raises(StorageBrokerError) as raised:
                _archive(broker, source, archive_path="input.nc")
            hard_link = source.parent / "hard-link.nc"
            os.link(source, hard_link)  # someone else's link of the same file: also "the same file"
            with pytest.raises(StorageBrokerError) as raised_link:
                _archive(broker, source, archive_path="hard-link.nc")
        errors.append((str(raised.value).replace(str(source.parent), "<dir>"),
                       str(raised_link.value).replace(str(source.parent), "<dir>")))
        assert source.read_bytes() == b"private copy\n"
    assert errors[0] == errors[1]
    assert "can't refer to the same file" in errors[0][0]


def test_archiving_twice_to_one_path_in_one_block_succeeds_as_copies_do(tmp_path):
    source = _private(tmp_path / "processing")
    broker = LocalFileStorageBroker(str(tmp_path / "archive"))
    with private_sources(str(source)), archive_uploads():
        first = _archive(broker, source)
        second = _archive(broker, source)
    assert first == second and _same_inode(second, source) and second.read_bytes() == source.read_bytes()


def test_concurrent_copies_to_the_same_archive_path_never_tear_or_rewrite_it(tmp_path):
    ours, theirs = b"A" * 300_000, b"B" * 300_000
    source = _private(tmp_path / "processing", data=ours)
    other = tmp_path / "theirs.nc"
    other.write_bytes(theirs)
    broker = LocalFileStorageBroker(str(tmp_path / "archive"))
    target = tmp_path / "archive" / "pipe" / "input.nc"
    stop, seen, failures = threading.Event(), set(), []

    def copier() -> None:
        try:
            while not stop.is_set():
                safe_copy_file(str(other), str(target), overwrite=True)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(target.read_bytes())
            except FileNotFoundError:
                pass

    threads = [threading.Thread(target=copier), threading.Thread(target=reader)]
    with private_sources(str(source)), archive_uploads():
        _archive(broker, source)
        for thread in threads:
            thread.start()
        try:
            for _ in range(300):
                _archive(broker, source)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not failures
        assert seen <= {ours, theirs}  # whole files only, never torn
        assert source.read_bytes() == ours  # the shared inode was never rewritten by the copier
        assert target.read_bytes() in (ours, theirs)
        _archive(broker, source)
    assert target.read_bytes() == ours and _same_inode(target, source)
    assert _leftovers(target.parent) == []


def test_the_archive_keeps_the_replaced_version_when_linking(tmp_path):
    source = _private(tmp_path / "processing", data=b"version 2\n")
    target = tmp_path / "archive" / "pipe" / "input.nc"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"version 1\n")
    runner = StoreRunner(LocalFileStorageBroker(str(tmp_path / "archive")), None, None, archive_mode=True)
    pipeline_file = PipelineFile(str(source), archive_path="pipe/input.nc",
                                 publish_type=PipelineFilePublishType.ARCHIVE_ONLY)
    with private_sources(str(source)):
        runner.run(PipelineFileCollection([pipeline_file]))

    assert pipeline_file.is_archived and _same_inode(target, source)
    (kept,) = [p for p in target.parent.iterdir() if p.name.startswith("input.v")]
    assert kept.read_bytes() == b"version 1\n" and not _same_inode(kept, source)


#: inode comparisons made by :class:`_InodeRecordingHandler` after its publish step
seen_links: list[bool] = []


class _InodeRecordingHandler(ImosGenericHandler):
    """Records whether the archived input is its input file (same inode) once published."""

    def postprocess(self) -> None:
        archived = os.path.join(self.config.pipeline_config["global"]["archive_uri"][len("file://"):],
                                self.input_file_archive_path)
        seen_links.append(_same_inode(Path(archived), Path(self.input_file)))


class _RefusedAfterArchiveHandler(ImosGenericHandler):
    """Refuses its input (a data error) after it was archived and published."""

    def postprocess(self) -> None:
        raise InvalidFileContentError(f"{self.file_basename}: refused after publishing")


def _ingest(tmp_path: Path, handler_class, name: str = GOOD):
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    shutil.copy(IMOS_DIR / name, landing / name)
    settings = replace(build_settings(base_dir=str(tmp_path / "base")), handler_class=handler_class)
    outcome = ingest_object(LandingObject.from_path(landing / name), settings)
    return outcome, tmp_path / "base"


@pytest.mark.parametrize("switch, linked", [(None, True), ("0", False)])
def test_the_runner_archives_its_private_copy_by_link_unless_switched_off(tmp_path, monkeypatch, switch, linked):
    if switch is None:
        monkeypatch.delenv(ARCHIVE_BY_LINK_ENV, raising=False)
    else:
        monkeypatch.setenv(ARCHIVE_BY_LINK_ENV, switch)
    seen_links.clear()
    outcome, base = _ingest(tmp_path, _InodeRecordingHandler)
    assert outcome.status == PUBLISHED, outcome.error
    assert seen_links == [linked]
    (archived,) = list((base / "archive").rglob(GOOD))
    assert archived.read_bytes() == (IMOS_DIR / GOOD).read_bytes() and os.stat(archived).st_nlink == 1


def test_the_classic_loop_archives_by_copy(tmp_path):
    from aodncore.pipeline.defaultconfig import default_config

    config = default_config(tmp_path / "base")
    work = tmp_path / "incoming"
    work.mkdir()
    input_file = Path(shutil.copy(IMOS_DIR / GOOD, work / GOOD))
    seen_links.clear()
    handler = _InodeRecordingHandler(str(input_file), config=config)
    handler.run()
    assert handler.error is None and seen_links == [False]


def test_a_file_refused_after_archiving_gets_its_own_copy_in_the_error_store(tmp_path):
    outcome, base = _ingest(tmp_path, _RefusedAfterArchiveHandler)
    assert outcome.status == QUARANTINED, outcome.error
    (archived,) = list((base / "archive").rglob(GOOD))
    (kept,) = list((base / "error").rglob(GOOD))
    assert not _same_inode(archived, kept)
    assert archived.read_bytes() == kept.read_bytes() == (IMOS_DIR / GOOD).read_bytes()
    assert os.stat(archived).st_nlink == 1 and os.stat(kept).st_nlink == 1


def _tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_ingest_landing_gives_the_same_outcomes_and_stores_with_and_without_the_link(tmp_path, monkeypatch):
    from aodncore.prefect.flows import ingest_landing

    runs = {}
    for switch in ("1", "0"):
        monkeypatch.setenv(ARCHIVE_BY_LINK_ENV, switch)
        landing, base = tmp_path / f"landing-{switch}", tmp_path / f"base-{switch}"
        landing.mkdir()
        for name in [*list(GOOD_FILES)[:3], BAD_NC]:
            shutil.copy(IMOS_DIR / name, landing / name)
        os.chmod(landing / GOOD, 0o600)
        result = ingest_landing(str(landing), base_dir=str(base), settle_seconds=0, workers=2)
        text = json.dumps(result["outcomes"]).replace(str(base), "<base>").replace(str(landing), "<landing>")
        outcomes = sorted(({k: v for k, v in o.items() if k != "error_uri"} for o in json.loads(text)),
                          key=lambda o: o["name"])
        runs[switch] = (result["counts"], outcomes, _tree(base / "archive"), _tree(base / "published"),
                        sorted(p.name for p in (base / "error").rglob("*.nc")))
    assert runs["1"] == runs["0"]
    counts, _, archive, _, quarantined = runs["1"]
    assert counts == {PUBLISHED: 3, QUARANTINED: 1} and quarantined == [BAD_NC]
    assert len(archive) == 3 and archive[f"{next(iter(archive)).split('/')[0]}/{GOOD}"][1] == 0o600
