"""The warm runner starts the worker pools' fork server once; ``aodncore ingest`` runs forked from it start their
workers from that fork server (no fork server of their own), get the same results as a run in its own process, and
their workers see each run's own environment (a credential that changes between runs)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR, expected_key
from test_localserver import (
    _wait_for_warm_runner,
    assert_nothing_left,
    clean_env,
    pid_gone,
    run_cli,
    server_log,
)

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(900)]

RECORDING_HANDLER = '''
import json, os, pathlib
from aodncore.pipeline.imoshandler import ImosGenericHandler

class RecordingHandler(ImosGenericHandler):
    """Notes, per file, the process it ran in, that process's parent and the credential it sees."""
    def preprocess(self):
        name = os.path.basename(str(self.input_file))
        record = {"pid": os.getpid(), "ppid": os.getppid(), "secret": os.environ.get("AODNCORE_SFTP_PASSWORD")}
        (pathlib.Path(os.environ["RECORD_DIR"]) / (name + ".json")).write_text(json.dumps(record))
'''
GOOD = list(GOOD_FILES)[:2]


def _ingest(env: dict[str, str], base: Path, name: str, secret: str):
    """Two good files and a bad one through ``aodncore ingest --workers 2``: (result, the handler's records)."""
    landing = base / name / "landing"
    landing.mkdir(parents=True)
    for file_name in (*GOOD, BAD_NC):
        shutil.copy(IMOS_DIR / file_name, landing / file_name)
    records = base / name / "records"
    records.mkdir()
    result = run_cli({**env, "RECORD_DIR": str(records), "AODNCORE_SFTP_PASSWORD": secret}, "ingest",
                     f"{name}/landing", "--base-dir", f"{name}/store", "--workers", "2",
                     "--handler", "recordinghandler:RecordingHandler", cwd=base)
    return result, [json.loads(path.read_text()) for path in sorted(records.iterdir())]


def test_runs_forked_from_the_warm_runner_use_its_fork_server(tmp_path):
    home, helpers = tmp_path / "home", tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "recordinghandler.py").write_text(RECORDING_HANDLER)
    env = clean_env(home, PYTHONPATH=str(helpers))
    empty = tmp_path / "empty"
    empty.mkdir()
    try:
        assert run_cli(env, "ingest", str(empty), cwd=tmp_path).returncode == 0
        _wait_for_warm_runner(home)
        match = re.search(r"fork server started \(pid (\d+), warming cf:1\.6\)", server_log(home))
        assert match, server_log(home)
        fork_server = int(match.group(1))
        forked = server_log(home).count("run forked")

        runs = {name: _ingest(env, tmp_path, name, secret=f"secret-{name}") for name in ("one", "two")}
        cold = _ingest({**env, "AODNCORE_WARM_RUNNER": "0"}, tmp_path, "cold", secret="secret-cold")

        assert server_log(home).count("run forked") == forked + 2  # both warm runs were forked
        for name, (result, records) in {**runs, "cold": cold}.items():
            assert result.returncode == 1, result.stderr  # the bad file is quarantined
            assert "2 published, 1 quarantined" in result.stdout, result.stdout
            store = tmp_path / name / "store"
            for good in GOOD:
                assert (store / "published" / expected_key(good)).read_bytes() == (IMOS_DIR / good).read_bytes()
            assert list((store / "error").rglob(f"{BAD_NC}*"))
            assert len(records) == 3  # every file reached the handler in a worker
            assert {record["secret"] for record in records} == {f"secret-{name}"}  # this run's credential
            expected_parent = {fork_server} if name != "cold" else set()
            assert ({record["ppid"] for record in records} == expected_parent) == (name != "cold"), records
        assert runs["one"][0].stdout.splitlines()[-1:] == cold[0].stdout.splitlines()[-1:]
        assert not pid_gone(fork_server)
    finally:
        assert_nothing_left(home)
    assert pid_gone(fork_server) or _wait_gone(fork_server)


def _wait_gone(pid: int) -> bool:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if pid_gone(pid):
            return True
        time.sleep(0.1)
    return False
