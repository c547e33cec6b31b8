"""Handler working folders reused inside a caller's private folder (:mod:`aodncore.util.workdirs`).

Without reuse, :func:`working_directory` is :class:`tempfile.TemporaryDirectory`. With it, each run of a thread
gets a folder of the usual ``<prefix><random>`` name holding only the empty sub-folders, the path is gone after the
run, nothing of the run is left anywhere, and a folder a run damaged (mode, sub-folders) is removed, not reused.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

import pytest
from test_handlerbase import make_config, upload_only_handler

from aodncore.pipeline import HandlerBase
from aodncore.testlib import make_test_file
from aodncore.util.workdirs import SUBFOLDERS, reused_working_folders, working_directory


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "cfg")


@pytest.fixture
def empty_nc(tmp_path):
    path = str(tmp_path / "empty_file.nc")
    make_test_file(path)
    return path


def _one_run(base: Path, prefix: str = "DummyHandler", work=None) -> tuple[str, int, list[str]]:
    with working_directory(prefix, str(base)) as path:
        for name in SUBFOLDERS:
            os.makedirs(os.path.join(path, name), exist_ok=True)  # as HandlerBase does
        seen = sorted(os.listdir(path)) + [f"{name}:{os.listdir(os.path.join(path, name))}" for name in SUBFOLDERS]
        inode = os.stat(path).st_ino
        if work:
            work(Path(path))
    assert not os.path.lexists(path)
    return path, inode, seen


def _contents(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*"))


def test_without_reuse_it_is_a_temporary_directory(tmp_path):
    folder = working_directory("DummyHandler", str(tmp_path))
    assert isinstance(folder, tempfile.TemporaryDirectory)
    with folder as path:
        assert os.path.basename(path).startswith("DummyHandler") and os.path.dirname(path) == str(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with reused_working_folders(tmp_path / "elsewhere"):  # reuse is for that folder only
        assert isinstance(working_directory("DummyHandler", str(tmp_path)), tempfile.TemporaryDirectory)


def test_a_thread_reuses_one_folder_under_a_new_name_each_run(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep me")
    base = tmp_path / "run"
    base.mkdir()

    def messy(path: Path) -> None:
        (path / "collection" / "a.nc").write_bytes(b"a")
        (path / "products" / "deep" / "deeper").mkdir(parents=True)
        (path / "products" / "deep" / "deeper" / "b.txt").write_text("b")
        (path / "loose.txt").write_text("c")
        (path / "extra").mkdir()
        os.symlink(outside, path / "temp" / "dirlink")
        os.symlink(outside / "keep.txt", path / "filelink")

    with reused_working_folders(base):
        first, first_inode, first_seen = _one_run(base, work=messy)
        second, second_inode, second_seen = _one_run(base, prefix="OtherHandler")
        third, third_inode, third_seen = _one_run(base)
    assert second_inode == first_inode == third_inode and len({first, second, third}) == 3
    assert os.path.basename(second).startswith("OtherHandler") and len(os.path.basename(second)) == 20
    assert first_seen == second_seen == third_seen == [*SUBFOLDERS, *(f"{name}:[]" for name in SUBFOLDERS)]
    assert (outside / "keep.txt").read_text() == "keep me"
    spare = [entry for entry in base.iterdir()]
    assert len(spare) == 1 and _contents(spare[0]) == sorted(SUBFOLDERS)  # only the empty sub-folders
    assert stat.S_IMODE(spare[0].stat().st_mode) == 0o700


def _spare(base: Path) -> str:
    entries = list(base.iterdir())
    assert len(entries) == 1 and _contents(entries[0]) == sorted(SUBFOLDERS)
    return entries[0].name


def test_a_damaged_folder_is_removed_not_reused(tmp_path):
    base = tmp_path / "run"
    base.mkdir()
    damages = [
        lambda path: os.chmod(path / "temp", 0o555),
        lambda path: os.chmod(path, 0o755),
        lambda path: os.rmdir(path / "products"),
        lambda path: (os.rmdir(path / "temp"), os.symlink(tmp_path, path / "temp")),
    ]
    with reused_working_folders(base):
        _one_run(base)
        kept = _spare(base)
        _one_run(base)
        assert _spare(base) == kept  # a run that damages nothing: the same folder is kept
        for damage in damages:
            _path, _inode, _seen = _one_run(base, work=damage)
            assert list(base.iterdir()) == []  # removed, not kept
            _path, _inode, seen = _one_run(base)
            assert seen == [*SUBFOLDERS, *(f"{name}:[]" for name in SUBFOLDERS)]
            assert _spare(base) != kept  # a new one
            kept = _spare(base)
    assert tmp_path.is_dir()


def test_a_nested_run_gets_a_folder_of_its_own_and_threads_do_not_share(tmp_path):
    base = tmp_path / "run"
    base.mkdir()
    seen: dict[str, list[str]] = {}

    def other_thread() -> None:
        with reused_working_folders(base):
            seen["thread"] = _one_run(base)[2]

    with reused_working_folders(base):
        _one_run(base)
        kept = _spare(base)
        with working_directory("Outer", str(base)) as outer:
            assert os.path.basename(outer).startswith("Outer") and not (base / kept).exists()  # the kept one
            _one_run(base)  # nested: a folder of its own, kept after
            nested = _spare_name(base, outer)
        assert [entry.name for entry in base.iterdir()] == [nested]  # the outer one removed: one kept is enough
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert len(list(base.iterdir())) == 2  # the other thread kept one of its own
    assert not os.path.lexists(outer)
    assert seen["thread"] == [*SUBFOLDERS, *(f"{name}:[]" for name in SUBFOLDERS)]


def _spare_name(base: Path, outer: str) -> str:
    names = [entry.name for entry in base.iterdir() if entry.name != os.path.basename(outer)]
    assert len(names) == 1 and names[0].startswith("w-")
    return names[0]


def test_handlerbase_run_in_a_reused_folder(tmp_path, config, empty_nc):
    """As tests/test_handlerbase.py: the folder and its sub-folders exist while the handler runs, in ``tmp_dir``,
    named after the class, and are gone after ``run()`` — also when the run fails."""
    base = config.pipeline_config["global"]["tmp_dir"]
    seen = []

    def handler_for(error: Exception | None = None) -> HandlerBase:
        handler = upload_only_handler(empty_nc, config)

        def process() -> None:
            (Path(handler.products_dir) / "product.txt").write_text("x")
            seen.append((handler.instance_working_directory, os.stat(handler.instance_working_directory).st_ino,
                         {name: os.path.isdir(getattr(handler, name)) for name in
                          ("instance_working_directory", "collection_dir", "products_dir", "temp_dir")},
                         sorted(os.listdir(handler.collection_dir))))
            if error is not None:
                raise error

        handler.process = process
        return handler

    with reused_working_folders(base):
        for error in (None, RuntimeError("boom"), None):
            handler = handler_for(error)
            handler.run()
            assert (handler.error is None) == (error is None), handler.error
            working_dir = handler.instance_working_directory
            assert os.path.dirname(working_dir) == base and os.path.basename(working_dir).startswith("HandlerBase")
            assert not os.path.exists(working_dir)
    assert len({path for path, *_ in seen}) == 3 and len({inode for _, inode, *_ in seen}) == 1
    assert all(dirs == dict.fromkeys(dirs, True) for _, _, dirs, _ in seen)
    assert all(listing == [os.path.basename(empty_nc)] for *_, listing in seen)


def test_folders_kept_for_runs_that_are_over_are_forgotten(tmp_path):
    """A worker process kept between runs (:mod:`aodncore.ingest.keptpools`) works in a new run folder each run:
    what it kept for the earlier ones (removed with their run folders) is not held forever."""
    import shutil

    from aodncore.util import workdirs

    for index in range(5):
        base = tmp_path / f"run-{index}"
        base.mkdir()
        with reused_working_folders(base):
            _one_run(base)
            _one_run(base)
        shutil.rmtree(base)  # the run is over
    mine = [root for _pid, root in workdirs._state.spares if root.startswith(str(tmp_path))]
    assert mine == [str(tmp_path / "run-4")]


def test_reused_folder_names_are_eight_characters_of_tempfiles_alphabet(tmp_path):
    """The random part of a reused folder's name looks as ``tempfile``'s does: 8 of ``[a-z0-9_]``, varying."""
    import re

    from aodncore.util.workdirs import _random_name

    names = {_random_name() for _ in range(500)}
    assert len(names) > 490
    assert all(re.fullmatch(r"[a-z0-9_]{8}", name) for name in names)
    assert set("".join(names)) == set("abcdefghijklmnopqrstuvwxyz0123456789_")  # every character is used
    with reused_working_folders(tmp_path), working_directory("DummyHandler", str(tmp_path)) as path:
        assert re.fullmatch(r"DummyHandler[a-z0-9_]{8}", os.path.basename(path))
