"""The worker links' socket folders (:mod:`aodncore.ingest.sockdirs`): private, gone once the worker connected,
and those of a SIGKILLed run removed by the next pool start — never a live run's, another user's, a symlink's
target or anything not made by a run."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ingest_helpers import GOOD_FILES, IMOS_DIR

from aodncore.ingest import list_landing, sockdirs
from aodncore.ingest.configure import build_settings
from aodncore.ingest.outcome import PUBLISHED
from aodncore.ingest.parallel import ProcessIngestPool

NO_SUCH_PID = 2 ** 22 + 1  # above Linux's largest pid_max: never a running process

_HOLD_SOCKET_FOLDER = """
import socket, sys, time
from aodncore.ingest import sockdirs
with sockdirs.socket_folder() as folder:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(folder + "/" + sockdirs.SOCKET_NAME)
    listener.listen(1)
    print(folder, flush=True)
    time.sleep(120)
"""


@pytest.fixture
def temp_root(tmp_path, monkeypatch) -> Path:
    """A temporary folder of the test's own (short: a socket path must fit in 108 bytes), for this process and
    the processes it starts."""
    root = Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _holder(root: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "TMPDIR": str(root)}
    process = subprocess.Popen([sys.executable, "-c", _HOLD_SOCKET_FOLDER], stdout=subprocess.PIPE, text=True,
                               env=env)
    folder = Path(process.stdout.readline().strip())
    assert folder.parent == root and folder.name.startswith(f"{sockdirs.PREFIX}{process.pid}-"), folder
    return process, folder


def _stale_name(root: Path, tail: str = "abcdefgh") -> Path:
    return root / f"{sockdirs.PREFIX}{NO_SUCH_PID}-12345-{tail}"


def test_a_socket_folder_is_private_and_gone_with_its_socket_when_the_block_ends(temp_root):
    with sockdirs.socket_folder() as folder:
        info = os.lstat(folder)
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
        assert Path(folder).parent == temp_root
        assert Path(folder).name.startswith(f"{sockdirs.PREFIX}{os.getpid()}-"
                                            f"{sockdirs.process_start_ticks(os.getpid())}-")
        Path(folder, sockdirs.SOCKET_NAME).touch()
        assert sockdirs.sweep_stale([str(temp_root)]) == []  # its maker is alive: never swept
    assert list(temp_root.iterdir()) == []


def test_a_sigkilled_runs_folder_goes_with_the_next_pool_start_and_a_live_runs_stays(tmp_path):
    root = Path(tempfile.gettempdir())  # where this process's pools look (its fork server's folder is there too)
    killed, stale = _holder(root)
    live, alive = _holder(root)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert (stale / sockdirs.SOCKET_NAME).exists()  # SIGKILL: nothing ran to remove it

        landing = tmp_path / "landing"
        landing.mkdir()
        name = list(GOOD_FILES)[0]
        shutil.copy(IMOS_DIR / name, landing / name)
        settings = build_settings(base_dir=str(tmp_path / "base"), delete_landing=False)
        with ProcessIngestPool(settings, workers=1) as pool:  # a second run, beside the live one
            assert [pool.ingest(obj).status for obj in list_landing(str(landing))] == [PUBLISHED]

        assert not stale.exists()
        assert (alive / sockdirs.SOCKET_NAME).exists()  # the live run's folder and socket are untouched
        assert _folders_of(root, os.getpid()) == [_multiprocessing_folder()]  # its worker links' are gone
    finally:
        live.send_signal(signal.SIGKILL)
        live.wait()
    assert str(alive) in sockdirs.sweep_stale([str(root)])
    assert not alive.exists()


def _folders_of(root: Path, pid: int) -> list[Path]:
    return sorted(root.glob(f"{sockdirs.PREFIX}{pid}-*"))


def _multiprocessing_folder() -> Path:
    from multiprocessing import util

    return Path(util.get_temp_dir())


def test_a_folder_whose_lock_is_held_is_left_although_its_pid_is_unknown_here(temp_root):
    """Another PID namespace sharing the temporary folder: the pid in the name means nothing here, the lock does."""
    folder = _stale_name(temp_root)
    folder.mkdir(mode=0o700)
    (folder / sockdirs.SOCKET_NAME).touch()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_RDONLY)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True)\ntime.sleep(120)", str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert sockdirs.sweep_stale([str(temp_root)]) == []
        assert (folder / sockdirs.SOCKET_NAME).exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert sockdirs.sweep_stale([str(temp_root)]) == [str(folder)]


def test_the_sweep_never_follows_a_symlink_nor_removes_what_is_not_a_runs(temp_root, tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    link = _stale_name(temp_root, "symlink1")
    link.symlink_to(target, target_is_directory=True)
    nested = _stale_name(temp_root, "nested01")
    (nested / "sub").mkdir(parents=True)  # a run's folder holds socket files only: this is something else
    unnamed = temp_root / f"{sockdirs.PREFIX}not-a-pid"
    unnamed.mkdir()
    plain = _stale_name(temp_root, "plainfil")
    plain.write_text("a file, not a folder")
    stale = _stale_name(temp_root, "stale001")
    stale.mkdir(mode=0o700)
    (stale / sockdirs.SOCKET_NAME).touch()

    assert sockdirs.sweep_stale([str(temp_root)]) == [str(stale)]

    assert link.is_symlink() and (target / "keep.txt").read_text() == "mine"
    assert (nested / "sub").is_dir() and unnamed.is_dir() and plain.read_text() == "a file, not a folder"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder of another user needs root")
def test_another_users_folder_is_left_alone(temp_root):
    folder = _stale_name(temp_root, "otheruid")
    folder.mkdir(mode=0o700)
    (folder / sockdirs.SOCKET_NAME).touch()
    os.chown(folder / sockdirs.SOCKET_NAME, 65534, 65534)
    os.chown(folder, 65534, 65534)

    assert sockdirs.sweep_stale([str(temp_root)]) == []
    assert (folder / sockdirs.SOCKET_NAME).exists()


def test_the_folder_lock_is_held_while_the_block_runs(temp_root):
    with sockdirs.socket_folder() as folder:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_process_liveness_reads_the_start_time():
    own = sockdirs.process_start_ticks(os.getpid())
    assert own is not None and sockdirs.process_alive(os.getpid(), own)
    assert not sockdirs.process_alive(os.getpid(), str(int(own) + 1))  # the pid of another process now
    assert not sockdirs.process_alive(NO_SUCH_PID)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = sockdirs.process_start_ticks(child.pid)
        assert sockdirs.process_alive(child.pid, start)
        child.kill()
        deadline = time.monotonic() + 30
        while _state(child.pid) != "Z" and time.monotonic() < deadline:  # dead, not yet reaped
            time.sleep(0.01)
        assert _state(child.pid) == "Z"
        assert not sockdirs.process_alive(child.pid, start)  # a zombie is a dead run
    finally:
        child.kill()
        child.wait()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stream:
        return stream.read().rsplit(")", 1)[1].split()[0]
