"""HomeWatch: how the background server tells that its home is no longer its own (no server started here)."""

from __future__ import annotations

import shutil

import pytest

from aodncore.prefect.localserver.state import ServerPaths, ServerState, write_state
from aodncore.prefect.localserver.supervisor import HomeWatch


@pytest.fixture
def watched(tmp_path):
    """A state folder and a HomeWatch on it (closed afterwards)."""
    paths = ServerPaths(tmp_path / "home")
    paths.ensure_directory()
    watch = HomeWatch(paths, "ours")
    yield paths, watch
    watch.close()


def test_a_home_left_alone_is_not_lost_with_or_without_its_state_file(watched):
    paths, watch = watched
    assert watch.lost() is None  # the launcher writes server.json just after starting the server
    write_state(paths, ServerState(pid=1, port=2, token="ours", started=0.0))
    assert watch.lost() is None


def test_a_removed_state_folder_is_lost(watched):
    paths, watch = watched
    shutil.rmtree(paths.home)
    assert watch.lost() == f"{paths.directory} was removed"
    assert not paths.home.exists()  # asking never makes it again


def test_a_replaced_state_folder_is_lost(watched):
    paths, watch = watched
    shutil.rmtree(paths.directory)
    paths.ensure_directory()
    assert watch.lost() == f"{paths.directory} was replaced"


def test_a_state_file_naming_another_server_is_lost(watched):
    paths, watch = watched
    write_state(paths, ServerState(pid=4242, port=2, token="theirs", started=0.0))
    assert watch.lost() == f"{paths.state_file} names another server (pid 4242)"
    paths.state_file.unlink()  # no test-left server for the session's clean-up to look at
