"""The background Prefect server and the warm runner, through the real ``aodncore`` command in subprocesses.

Every test has its own ``PREFECT_HOME`` and stops its server at the end. Runs are read back from the server's API
(flow runs, their logs). ``subprocess.run(..., capture_output=True)`` returning at all shows that the background
processes do not hold the command's pipes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR, expected_key

from aodncore.prefect.localserver.control import server_status, stop_server
from aodncore.prefect.localserver.state import FileLock, ServerPaths, ServerState, process_start_ticks, read_state
from aodncore.prefect.localserver.state import write_state as write_server_state

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(900)]

AODNCORE = shutil.which("aodncore", path=str(Path(sys.executable).parent)) or "aodncore"
GOOD = next(iter(GOOD_FILES))
SECRET = "sekrit-b7e1c0a4"


def environment_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()

SLOW_HANDLER = '''
import os, pathlib, time
from aodncore.pipeline.imoshandler import ImosGenericHandler

class SlowHandler(ImosGenericHandler):
    """Signals that it started, then takes 20 s (the tests signal or kill the run long before)."""
    def preprocess(self):
        pathlib.Path(os.environ["SLOW_MARK"]).touch()
        time.sleep(20)
'''


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any Prefect or aodncore setting, plus ``extra``; servers stop by
    themselves after 5 idle minutes should a test fail to stop its own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "AODNCORE_"))}
    env.update(PREFECT_HOME=str(home), AODNCORE_SERVER_IDLE_TIMEOUT="300")
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([AODNCORE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def api(state: ServerState, path: str, body: dict | None = None) -> list | dict:
    request = urllib.request.Request(f"{state.api_url}{path}", data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def flow_runs(state: ServerState) -> list[dict]:
    return api(state, "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_DESC"})


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"


def processes_of(home: Path) -> list[int]:
    """Processes whose command line names ``home`` (the server and warm runner of that home)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(home).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if not pid_gone(pid)]


def assert_nothing_left(home: Path) -> None:
    stop_server(home)
    wait_for(lambda: not processes_of(home), 30, f"the processes of {home} to end")


def server_log(home: Path) -> str:
    return ServerPaths(home).log_file.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One background server for the tests that only use it (its home, environment, a scratch folder)."""
    base = tmp_path_factory.mktemp("shared-server")
    home = base / "home"
    helpers = base / "helpers"
    helpers.mkdir()
    (helpers / "slowhandler.py").write_text(SLOW_HANDLER)
    empty = base / "empty"
    empty.mkdir()
    # runs of this module carry PYTHONPATH (the slow handler): the warm runner must have started with it too
    # and a credential: it must reach the runs, never the server, its state file or the warm runner
    env = clean_env(home, PYTHONPATH=str(helpers), AODNCORE_SFTP_PASSWORD=SECRET)
    yield {"home": home, "env": env, "base": base, "empty": empty}
    stop_server(home)


def test_first_run_starts_a_server_that_records_the_run_and_later_runs_reuse_it(shared):
    first = run_cli(shared["env"], "ingest", str(shared["empty"]), cwd=shared["base"])

    assert first.returncode == 0, first.stderr
    assert "no files found" in first.stdout
    state = read_state(ServerPaths(shared["home"]))
    assert state is not None and state.prefect_home == str(shared["home"])
    runs = flow_runs(state)
    assert [(run["flow_id"] is not None, run["state_type"]) for run in runs] == [(True, "COMPLETED")]
    logs = api(state, "/logs/filter", {"logs": {"flow_run_id": {"any_": [runs[0]["id"]]}}})
    assert any("0 landing object(s) found" in log["message"] for log in logs), logs

    second = run_cli(shared["env"], "ingest", str(shared["empty"]), cwd=shared["base"])

    assert second.returncode == 0, second.stderr
    assert read_state(ServerPaths(shared["home"])).pid == state.pid  # reused, not restarted
    assert len(flow_runs(state)) == 2
    assert server_log(shared["home"]).count("Prefect API ready") == 1
    state_text = ServerPaths(shared["home"]).state_file.read_text()
    assert set(json.loads(state_text)) == {"pid", "port", "token", "started", "pid_start", "prefect_home",
                                           "idle_timeout", "code_stamp"}
    assert SECRET not in state_text and SECRET not in server_log(shared["home"])
    if sys.platform == "linux":
        assert SECRET.encode() not in environment_of(state.pid)


def _wait_for_warm_runner(home: Path) -> None:
    wait_for(lambda: server_status(home).runner_ready(), 180, "the warm runner")


def _ingest_sample(env: dict[str, str], base: Path, name: str) -> subprocess.CompletedProcess:
    """Ingest one good and one bad file given by paths relative to ``base`` (the working directory)."""
    landing = base / name / "landing"
    landing.mkdir(parents=True)
    for file_name in (GOOD, BAD_NC):
        shutil.copy(IMOS_DIR / file_name, landing / file_name)
    return run_cli(env, "ingest", f"{name}/landing", "--base-dir", f"{name}/store", "--workers", "1", cwd=base)


def test_warm_runner_run_behaves_like_a_run_in_process(shared):
    home, base = shared["home"], shared["base"]
    run_cli(shared["env"], "ingest", str(shared["empty"]), cwd=base)  # the server exists (whatever ran before)
    _wait_for_warm_runner(home)
    forked_before = server_log(home).count("run forked")

    warm = _ingest_sample(shared["env"], base, "warm")
    cold = _ingest_sample({**shared["env"], "AODNCORE_WARM_RUNNER": "0"}, base, "cold")

    assert server_log(home).count("run forked") == forked_before + 1  # the first went warm, the second not
    # the credential in the runs' environment neither reached the warm runner nor kept the run from it
    assert SECRET.encode() not in environment_of(server_status(home).runner_pid)
    assert warm.returncode == cold.returncode == 1, (warm.stderr, cold.stderr)  # a bad file: quarantined
    for result, name in ((warm, "warm"), (cold, "cold")):
        assert "1 published, 1 quarantined" in result.stdout, result.stdout
        store = base / name / "store"  # relative paths were resolved in the launcher's working directory
        assert (store / "published" / expected_key(GOOD)).read_bytes() == (IMOS_DIR / GOOD).read_bytes()
        assert list((store / "error").rglob(f"{BAD_NC}*"))
    assert sorted(warm.stdout.splitlines()[-1:]) == sorted(cold.stdout.splitlines()[-1:])
    runs = flow_runs(read_state(ServerPaths(home)))
    assert [run["state_type"] for run in runs[:2]] == ["COMPLETED", "COMPLETED"]


def test_warm_runner_refuses_a_different_environment_and_the_run_still_happens(shared):
    home = shared["home"]
    run_cli(shared["env"], "ingest", str(shared["empty"]), cwd=shared["base"])
    _wait_for_warm_runner(home)
    refused_before = server_log(home).count("run not taken: environment differs")

    result = run_cli({**shared["env"], "AODNCORE_SOMETHING_NEW": "1"}, "ingest", str(shared["empty"]),
                     cwd=shared["base"])

    assert result.returncode == 0, result.stderr
    assert server_log(home).count("run not taken: environment differs") == refused_before + 1


def test_signals_reach_a_warm_run_and_it_ends_like_a_run_in_process(shared):
    home, base = shared["home"], shared["base"]
    run_cli(shared["env"], "ingest", str(shared["empty"]), cwd=base)
    _wait_for_warm_runner(home)
    results = {}
    for mode, extra in (("warm", {}), ("cold", {"AODNCORE_WARM_RUNNER": "0"})):
        landing = base / f"slow-{mode}"
        landing.mkdir()
        shutil.copy(IMOS_DIR / GOOD, landing / GOOD)
        mark = base / f"slow-{mode}.started"
        env = {**shared["env"], **extra, "SLOW_MARK": str(mark)}
        process = subprocess.Popen(
            [AODNCORE, "ingest", str(landing), "--base-dir", str(base / f"slow-{mode}-store"), "--workers", "1",
             "--handler", "slowhandler:SlowHandler"],
            env=env, cwd=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        wait_for(mark.exists, 240, f"the {mode} run to reach the handler")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        results[mode] = (process.returncode, err)
    assert results["warm"][0] == results["cold"][0] != 0, results
    assert ("aborted" in results["warm"][1]) == ("aborted" in results["cold"][1]), results


def test_a_warm_run_whose_launcher_is_killed_ends_as_crashed_not_running(shared):
    home, base = shared["home"], shared["base"]
    run_cli(shared["env"], "ingest", str(shared["empty"]), cwd=base)
    _wait_for_warm_runner(home)
    state = read_state(ServerPaths(home))
    landing = base / "slow-killed"
    landing.mkdir()
    shutil.copy(IMOS_DIR / GOOD, landing / GOOD)
    mark = base / "slow-killed.started"
    forked_before = server_log(home).count("run forked")
    process = subprocess.Popen(
        [AODNCORE, "ingest", str(landing), "--base-dir", str(base / "slow-killed-store"), "--workers", "1",
         "--handler", "slowhandler:SlowHandler"],
        env={**shared["env"], "SLOW_MARK": str(mark)}, cwd=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for(mark.exists, 240, "the run to reach the handler")
    assert server_log(home).count("run forked") == forked_before + 1
    process.kill()
    process.wait()

    def latest_state() -> str | None:
        latest = flow_runs(state)[0]["state_type"]
        return latest if latest != "RUNNING" else None

    assert wait_for(latest_state, 120, "the orphaned run to end") in ("CRASHED", "FAILED", "CANCELLED")


def test_server_commands_status_stop_start(shared, capsys, monkeypatch):
    from aodncore.cli import main

    for name in [key for key in os.environ if key.startswith(("PREFECT_", "AODNCORE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PREFECT_HOME", str(shared["home"]))
    run_cli(shared["env"], "ingest", str(shared["empty"]), cwd=shared["base"])
    state = read_state(ServerPaths(shared["home"]))

    assert main(["server", "status"]) == 0
    out = capsys.readouterr().out
    assert state.api_url in out and str(ServerPaths(shared["home"]).log_file) in out and "running" in out
    assert main(["server", "status", "--url"]) == 0
    assert capsys.readouterr().out.strip() == state.api_url

    _wait_for_warm_runner(shared["home"])  # a warm runner is there to be stopped too
    assert main(["server", "stop"]) == 0
    assert f"stopped (pid {state.pid})" in capsys.readouterr().out
    wait_for(lambda: not processes_of(shared["home"]), 30, "the server and its warm runner to exit")
    assert read_state(ServerPaths(shared["home"])) is None
    assert main(["server", "status"]) == 3
    assert "not running" in capsys.readouterr().out
    assert main(["server", "stop"]) == 0
    assert "not running" in capsys.readouterr().out

    assert main(["server", "start"]) == 0
    assert "started" in capsys.readouterr().out
    restarted = read_state(ServerPaths(shared["home"]))
    assert restarted.pid != state.pid and server_status(shared["home"]).running


def test_a_user_prefect_api_url_is_used_as_it_is(shared, tmp_path):
    run_cli(shared["env"], "ingest", str(shared["empty"]), cwd=shared["base"])
    theirs = read_state(ServerPaths(shared["home"]))  # stands for the user's own server
    before = len(flow_runs(theirs))
    other_home = tmp_path / "other-home"

    result = run_cli(clean_env(other_home, PREFECT_API_URL=theirs.api_url), "ingest", str(shared["empty"]),
                     cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert len(flow_runs(theirs)) == before + 1
    assert not ServerPaths(other_home).directory.exists()  # nothing of ours started for the other home


def test_concurrent_first_runs_start_one_server(tmp_path):
    home = tmp_path / "home"
    env = clean_env(home)
    try:
        processes = [subprocess.Popen([AODNCORE, "ingest", _empty(tmp_path)], env=env, cwd=tmp_path,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(3)]
        results = [process.communicate(timeout=400) + (process.returncode,) for process in processes]
        assert [code for _, _, code in results] == [0, 0, 0], results
        log = server_log(home)
        assert log.count("created from the template") == 1 and log.count("Prefect API ready") == 1, log
        assert [run["state_type"] for run in flow_runs(read_state(ServerPaths(home)))] == ["COMPLETED"] * 3
        assert_nothing_left(home)
    finally:
        stop_server(home)


def _empty(tmp_path: Path) -> str:
    folder = tmp_path / "empty-landing"
    folder.mkdir(exist_ok=True)
    return str(folder)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("leftover", ["dead process", "pid now used by another process"])
def test_a_stale_state_file_is_replaced(tmp_path, leftover):
    home = tmp_path / "home"
    paths = ServerPaths(home)
    other = None
    if leftover == "dead process":
        pid, ticks = _dead_pid(), None
    else:  # e.g. after a reboot: the recorded pid runs, but it is not a server and nothing listens on the port
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        pid, ticks = other.pid, process_start_ticks(other.pid)
    write_server_state(paths, ServerState(pid=pid, port=_closed_port(), token="old", started=0.0, pid_start=ticks))
    try:
        result = run_cli(clean_env(home), "ingest", _empty(tmp_path), cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        state = read_state(paths)
        assert state.token != "old" and state.pid != pid
        assert flow_runs(state)[0]["state_type"] == "COMPLETED"
        if other is not None:
            assert other.poll() is None  # somebody else's process is left alone
        assert_nothing_left(home)  # also a warm runner still starting when its server was stopped
    finally:
        stop_server(home)
        if other is not None:
            other.kill()
            other.wait()


def test_idle_server_stops_but_never_under_a_run(tmp_path):
    home = tmp_path / "home"
    paths = ServerPaths(home)
    env = clean_env(home, AODNCORE_SERVER_IDLE_TIMEOUT="2", AODNCORE_WARM_RUNNER="0")
    try:
        assert run_cli(env, "ingest", _empty(tmp_path), cwd=tmp_path).returncode == 0
        state = read_state(paths)
        lease = FileLock(paths.runs_lock, shared=True)  # what every run holds while it runs
        assert lease.acquire(timeout=10)
        time.sleep(8)
        assert not pid_gone(state.pid), "stopped although a run was in progress"
        lease.release()

        wait_for(lambda: pid_gone(state.pid), 60, "the idle server to stop")
        assert read_state(paths) is None
        assert "idle for" in server_log(home)
        assert not server_status(home).running
        assert_nothing_left(home)
    finally:
        stop_server(home)


def test_a_taken_port_falls_back_to_a_free_one(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            result = run_cli(clean_env(home, AODNCORE_SERVER_PORT=str(port)), "ingest", _empty(tmp_path), cwd=tmp_path)

            assert result.returncode == 0, result.stderr
            state = read_state(ServerPaths(home))
            assert state.port != port
            assert f"port {port} (AODNCORE_SERVER_PORT) is taken" in server_log(home)
        finally:
            stop_server(home)


def _uvicorn_children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[1]) == pid and b"uvicorn" in command:
                children.append(int(entry.name))
    return children


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ephemeral_mode_never_leaves_its_server_behind(tmp_path, sig):
    env = clean_env(tmp_path / "home", AODNCORE_PREFECT_SERVER="ephemeral")
    process = subprocess.Popen([AODNCORE, "ingest", _empty(tmp_path)], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        servers = wait_for(lambda: _uvicorn_children(process.pid), 120, "the ephemeral server", interval=0.05)
        process.send_signal(sig)
        process.wait(timeout=120)
        wait_for(lambda: all(pid_gone(pid) for pid in servers), 30, "the ephemeral server to stop")
        assert not ServerPaths(tmp_path / "home").directory.exists()  # no background server in this mode
    finally:
        if process.poll() is None:
            process.kill()


def test_credentials_are_kept_from_the_background_processes_but_not_from_the_server_itself():
    from aodncore.prefect.localserver.control import server_environment
    from aodncore.prefect.localserver.warmclient import environment_fingerprint

    run_env = {
        "PATH": "/usr/bin", "PREFECT_LOGGING_LEVEL": "INFO",
        "AODNCORE_SFTP_PASSWORD": "pw1", "AODNCORE_INGEST_RECORD_URL": "postgresql://bob:pw2@db/ingest",
        "PREFECT_API_KEY": "pw3", "AWS_SECRET_ACCESS_KEY": "pw4",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://prefect:pw5@db/prefect",
    }

    assert server_environment(run_env) == {
        "PATH": "/usr/bin", "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://prefect:pw5@db/prefect",  # its own
    }
    # aodncore's credentials (read when used) do not keep a run from the warm runner; Prefect's (read at import) do
    without_aodncore_secrets = {key: value for key, value in run_env.items() if not key.startswith("AODNCORE_")}
    without_prefect_key = {key: value for key, value in run_env.items() if key != "PREFECT_API_KEY"}
    assert environment_fingerprint(run_env, []) == environment_fingerprint(without_aodncore_secrets, [])
    assert environment_fingerprint(run_env, []) != environment_fingerprint(without_prefect_key, [])


def _remove_home(home: Path) -> None:
    """``rm -rf home`` as a person would, again until it is gone: the server may be adding a file to it (its
    block-registration memo) while the folder is walked, which makes one walk fail with "Directory not empty"."""
    deadline = time.monotonic() + 30
    while home.exists() and time.monotonic() < deadline:
        shutil.rmtree(home, ignore_errors=True)
    assert not home.exists()


@pytest.mark.parametrize("when", ["at once", "while its warm runner starts"])
def test_a_server_whose_home_is_removed_stops_and_never_makes_it_again(tmp_path, when):
    """Removed at once, the server sees it before it starts its warm runner; removed while the warm runner imports
    Prefect (which makes a missing ``PREFECT_HOME``), the server removes the folder made again once everything of
    it has stopped."""
    home = tmp_path / "home"
    paths = ServerPaths(home)
    try:
        assert run_cli(clean_env(home), "ingest", _empty(tmp_path), cwd=tmp_path).returncode == 0
        state = read_state(paths)
        wait_for(lambda: server_status(home).running, 60, "the server to be up")
        if when != "at once":
            wait_for(lambda: len(processes_of(home)) > 1, 120, "the warm runner to start", interval=0.01)
        _remove_home(home)

        wait_for(lambda: pid_gone(state.pid), 120, "the server of a removed home to stop")
        wait_for(lambda: not processes_of(home), 60, "its warm runner to end")
        assert not home.exists()
    finally:
        stop_server(home)
