"""``ingest_landing`` on a Dask cluster through ``prefect-dask``: a local cluster of worker processes against the
session's real Prefect API, and the refusals that keep Dask out of the ephemeral-server and threads traps."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from ingest_helpers import (  # noqa: F401 - restore_process_state is a fixture
    BAD_NC,
    BAD_PROFILE,
    GOOD_FILES,
    IMOS_DIR,
    expected_key,
    restore_process_state,
)

from aodncore.ingest import PUBLISHED, QUARANTINED, LandingObject
from aodncore.ingest.configure import LEDGER_FILE_NAME
from aodncore.ingest.ledger import IngestLedger
from aodncore.ingest.quarantine import reason_path_for
from aodncore.pipeline.imoshandler import ImosGenericHandler
from aodncore.prefect.daskrun import DaskConfigurationError, resolve_worker_api_url

pytest.importorskip("prefect_dask")

GOOD = list(GOOD_FILES)[:3]
BROKEN = [BAD_NC, BAD_PROFILE]


class WorkerReportingHandler(ImosGenericHandler):
    """The default handler, logging the process it runs in and the Prefect API URL of that process."""

    def preprocess(self) -> None:
        self.logger.info("worker pid=%d PREFECT_API_URL=%s", os.getpid(), os.environ.get("PREFECT_API_URL"))


def _land(landing: Path, names: list[str]) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(IMOS_DIR / name, landing / name)


def _read_all_logs(client, log_filter) -> list:
    logs: list = []
    while page := client.read_logs(log_filter=log_filter, limit=200, offset=len(logs)):
        logs.extend(page)
    return logs


def _flow_run_logs(flow_run_id, names: list[str]) -> list:
    """The flow run's logs, once every name appears in a handler record (the server stores them asynchronously)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        for _ in range(100):
            logs = _read_all_logs(client, LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            text = "\n".join(log.message for log in logs if "handler result for input_file" in log.message)
            if all(name in text for name in names):
                break
            time.sleep(0.2)
    return logs


def test_ingest_landing_on_a_local_dask_cluster_loses_nothing_and_keeps_the_logs(prefect_harness, tmp_path):
    from aodncore.ingest import progress
    from aodncore.prefect.flows import ingest_landing, plan_batches

    landing, base = tmp_path / "landing", tmp_path / "base"
    _land(landing, [*GOOD, *BROKEN])
    fingerprints = {name: LandingObject.from_path(landing / name).fingerprint for name in [*GOOD, *BROKEN]}
    sizes = {name: (landing / name).stat().st_size for name in [*GOOD, *BROKEN]}
    events: list[tuple[str, object]] = []

    def listener(event: str, payload: object) -> None:
        events.append((event, payload))

    progress.add_listener(listener)
    try:
        state = ingest_landing(str(landing), handler=f"{__name__}:WorkerReportingHandler", base_dir=str(base),
                               checks=["cf:1.6"], workers=2, dask_address="local", settle_seconds=0,
                               return_state=True)
    finally:
        progress.remove_listener(listener)

    assert state.is_completed(), state
    statuses = {outcome["name"]: outcome["status"] for outcome in state.result()["outcomes"]}
    assert statuses == {**{name: PUBLISHED for name in GOOD}, **{name: QUARANTINED for name in BROKEN}}
    # folded in as each batch came back, listed in batch order (as when the batches' lists were joined)
    batches = plan_batches([LandingObject(uri=(landing / name).as_uri(), name=name, size=size, fingerprint="")
                            for name, size in sizes.items()], 2)
    assert [outcome["name"] for outcome in state.result()["outcomes"]] == [o.name for b in batches for o in b]
    for name in GOOD:
        assert (base / "published" / expected_key(name)).read_bytes() == (IMOS_DIR / name).read_bytes()
    for name in BROKEN:
        stored = [p for p in (base / "error").rglob(name) if p.is_file()]
        assert len(stored) == 1, stored
        assert stored[0].read_bytes() == (IMOS_DIR / name).read_bytes()
        reason = json.loads(Path(reason_path_for(str(stored[0]))).read_text())
        assert reason["error_type"] == "user" and reason["reason"]
    assert list(landing.iterdir()) == []

    # the ledger, written on the flow's side, has every outcome
    with IngestLedger(base / LEDGER_FILE_NAME) as ledger:
        for name, status in statuses.items():
            entry = ledger.get((landing / name).as_uri(), fingerprints[name])
            assert entry is not None and entry.status == status, (name, entry)
    # progress reached this process although the files were processed in the Dask workers
    assert sorted(payload.name for event, payload in events if event == "done") == sorted(statuses)
    assert ("planned", len(statuses)) in events

    logs = _flow_run_logs(state.state_details.flow_run_id, list(statuses))
    assert any("on Dask (local)" in log.message for log in logs)
    handler_lines = [log for log in logs if "handler result for input_file" in log.message]
    for name in statuses:  # each worker-side handler record reached this flow run's logs, from its batch task
        assert any(name in log.message and log.task_run_id is not None for log in handler_lines), name
    assert all(log.name.startswith("aodncore") for log in handler_lines)
    # the files were processed in the Dask worker processes, which used this run's Prefect server
    from prefect.settings import PREFECT_API_URL

    reports = [re.search(r"worker pid=(\d+) PREFECT_API_URL=(\S+)", log.message) for log in logs]
    reports = [match.groups() for match in reports if match]
    assert len(reports) == len(statuses)
    pids = {pid for pid, _ in reports}
    assert str(os.getpid()) not in pids and 1 <= len(pids) <= 2
    assert {url for _, url in reports} == {PREFECT_API_URL.value().rstrip("/")}


@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_cli_ingests_on_a_local_dask_cluster_and_keeps_worker_records_off_the_console(tmp_path, capfd):
    from aodncore.cli import main

    landing, base = tmp_path / "landing", tmp_path / "base"
    _land(landing, [GOOD[0], BAD_NC])

    code = main(["ingest", str(landing), "--base-dir", str(base), "--check", "cf:1.6", "--workers", "2",
                 "--dask", "local", "--settle", "0"])

    assert code == 1  # something was quarantined
    captured = capfd.readouterr()
    assert "1 published" in captured.out and "1 quarantined" in captured.out
    assert (base / "published" / expected_key(GOOD[0])).read_bytes() == (IMOS_DIR / GOOD[0]).read_bytes()
    assert list(landing.iterdir()) == []
    # without --verbose the workers (writing to this terminal) print no library records either
    assert "failed the NC_COMPLIANCE_CHECK" not in captured.err
    assert "handler result for input_file" not in captured.err


@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
@pytest.mark.parametrize(("workers", "threads", "reason"), [(1, 2, "one thread each"), (2, 1, "process of their own")])
def test_cli_refuses_an_existing_cluster_whose_workers_share_a_process(tmp_path, capsys, workers, threads, reason):
    """netCDF/HDF5 is not thread-safe: several threads per worker, or workers in one process, are refused."""
    from distributed import LocalCluster

    from aodncore.cli import main

    landing = tmp_path / "landing"
    _land(landing, GOOD[:1])
    with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=False,
                      dashboard_address=None) as cluster:
        code = main(["ingest", str(landing), "--base-dir", str(tmp_path / "base"), "--dask", cluster.scheduler_address])

    assert code == 2
    assert reason in " ".join(capsys.readouterr().err.split())
    assert [p.name for p in landing.iterdir()] == GOOD[:1]  # nothing touched


def test_ingest_landing_on_an_existing_cluster_whose_workers_use_the_run_server(prefect_harness, tmp_path):
    from distributed import LocalCluster
    from prefect.settings import PREFECT_API_URL

    from aodncore.prefect.flows import ingest_landing

    landing, base = tmp_path / "landing", tmp_path / "base"
    _land(landing, [GOOD[0], BAD_NC])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"PREFECT_API_URL": PREFECT_API_URL.value()}) as cluster:
        state = ingest_landing(str(landing), base_dir=str(base), checks=["cf:1.6"], workers=2,
                               dask_address=cluster.scheduler_address, settle_seconds=0, return_state=True)

    assert state.is_completed(), state
    assert {o["name"]: o["status"] for o in state.result()["outcomes"]} == {GOOD[0]: PUBLISHED, BAD_NC: QUARANTINED}
    assert (base / "published" / expected_key(GOOD[0])).read_bytes() == (IMOS_DIR / GOOD[0]).read_bytes()
    assert list(landing.iterdir()) == []


def test_ingest_landing_refuses_an_existing_cluster_whose_workers_have_no_api_url(prefect_harness, tmp_path,
                                                                                   monkeypatch):
    from distributed import LocalCluster

    from aodncore.prefect.flows import ingest_landing

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    landing = tmp_path / "landing"
    _land(landing, GOOD[:1])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        state = ingest_landing(str(landing), base_dir=str(tmp_path / "base"), dask_address=cluster.scheduler_address,
                               settle_seconds=0, return_state=True)

    assert state.is_failed()
    with pytest.raises(DaskConfigurationError, match="no PREFECT_API_URL"):
        state.result()
    assert [p.name for p in landing.iterdir()] == GOOD[:1]


@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_cli_limits_workers_without_an_existing_cluster(tmp_path, capsys):
    from aodncore.cli import main

    code = main(["ingest", str(IMOS_DIR / GOOD[0]), "--base-dir", str(tmp_path), "--workers", "32", "--dask", "local"])

    assert code == 2
    assert "at most 16" in capsys.readouterr().err


class TestWorkerApiUrl:
    def test_a_configured_server_is_used(self):
        url = "http://prefect.example:4200/api"
        assert resolve_worker_api_url(url, None, existing_cluster=True) == url
        assert resolve_worker_api_url(url + "/", "http://127.0.0.1:1/api/", existing_cluster=False) == url

    def test_the_ephemeral_server_is_handed_to_a_local_cluster(self):
        # Prefect's ephemeral server is a local HTTP server: the local cluster's workers get its address
        assert resolve_worker_api_url(None, "http://127.0.0.1:8123/api/", existing_cluster=False) == (
            "http://127.0.0.1:8123/api")

    def test_an_existing_cluster_needs_a_configured_server(self):
        with pytest.raises(DaskConfigurationError, match="PREFECT_API_URL"):
            resolve_worker_api_url(None, "http://127.0.0.1:8123/api/", existing_cluster=True)

    @pytest.mark.parametrize("client_url", [None, "", "http://ephemeral-prefect/api/", "file:///tmp/x"])
    def test_no_reachable_server_is_refused(self, client_url):
        with pytest.raises(DaskConfigurationError, match="PREFECT_API_URL"):
            resolve_worker_api_url(None, client_url, existing_cluster=False)


def test_a_failed_file_on_dask_fails_the_run_and_keeps_every_outcome(prefect_harness, tmp_path):
    from ingest_helpers import EXPLODE_MARKER, HANDLER_PREFIX

    from aodncore.prefect.flows import ingest_landing

    landing = tmp_path / "landing"
    _land(landing, GOOD[:1])
    doomed = f"IMOS_ANMN_{EXPLODE_MARKER}_20170201T000000Z_NRSDAR_FV01.nc"
    shutil.copy(IMOS_DIR / GOOD[0], landing / doomed)

    state = ingest_landing(str(landing), handler=f"{HANDLER_PREFIX}:SelectiveExplodingHandler",
                           base_dir=str(tmp_path / "base"), workers=2, dask_address="local", settle_seconds=0,
                           return_state=True)

    assert state.is_failed(), state
    outcomes = {o["name"]: o for o in state.result(raise_on_failure=False)["outcomes"]}
    assert outcomes[GOOD[0]]["status"] == PUBLISHED
    assert outcomes[doomed]["status"] == "failed" and "simulated system failure" in outcomes[doomed]["error"]
