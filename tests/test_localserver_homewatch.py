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
    paths.state_file.unlink(missing_ok=True)  # no test-left "server" for the session's clean-up to look at


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


@pytest.mark.parametrize("prefect_wrote", [[], ["memo_store.toml"]])
def test_a_home_that_prefect_made_again_is_removed_again(watched, prefect_wrote):
    """A removed home made anew (a warm runner's ``import prefect`` makes a missing PREFECT_HOME, block
    registration writes its memo there) holding only that: removed, so the removed home stays removed."""
    paths, watch = watched
    shutil.rmtree(paths.home)
    paths.home.mkdir(mode=0o700)
    for name in prefect_wrote:
        (paths.home / name).write_text("")
    assert watch.remove_remade_home()
    assert not paths.home.exists()


def test_a_new_home_with_anything_else_in_it_is_never_touched(watched):
    paths, watch = watched
    shutil.rmtree(paths.home)
    paths.ensure_directory()  # somebody's new home (a server of its own starting there)
    (paths.home / "memo_store.toml").write_text("")
    assert not watch.remove_remade_home()
    assert paths.directory.is_dir() and (paths.home / "memo_store.toml").exists()


def test_the_home_itself_is_never_removed_when_only_its_state_folder_went(watched):
    paths, watch = watched
    shutil.rmtree(paths.directory)
    assert not watch.remove_remade_home()
    assert paths.home.is_dir()
