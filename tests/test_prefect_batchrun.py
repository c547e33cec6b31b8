"""``aodncore.prefect.batchrun``'s shared queue: one ``ingest-batch`` task run per worker taking the planned
batches' files one at a time gives the run exactly the result, state, table and file log lines of one task run
per planned batch (``SHARED_FILES = False``), with half the task runs."""

from __future__ import annotations

import json
import random
import re
import shutil
import threading
import time

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR

from aodncore.ingest import FileOutcome
from aodncore.ingest.outcome import PUBLISHED
from aodncore.ingest.sources import LandingObject
from aodncore.prefect import batchrun

ATTEMPT = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")


def _object(batch: int, position: int) -> LandingObject:
    name = f"b{batch}-f{position:03d}.nc"
    return LandingObject(uri=f"file:///landing/{name}", name=name, size=1, fingerprint=name)


@pytest.mark.parametrize("seed", range(4))
def test_each_batch_passes_on_its_outcomes_in_its_own_order_whatever_task_ran_them(seed):
    rng = random.Random(seed)
    batches = [[_object(b, p) for p in range(rng.choice([0, 1, 7, 40]))] for b in range(rng.randint(1, 6))]
    passed: dict[int, list[str]] = {}
    lock = threading.Lock()

    def on_outcome(index: int, outcome: FileOutcome) -> None:
        with lock:
            passed.setdefault(index, []).append(outcome.name)

    shared = batchrun.SharedFiles(batches, on_outcome)
    ran: list[list[str]] = []

    def task(share, delays) -> None:
        mine = []
        for obj in share:
            time.sleep(delays.random() / 2000)  # the tasks finish files out of the planned order
            mine.append(obj.name)
            share.done(FileOutcome(source=obj.uri, name=obj.name, status=PUBLISHED))
        ran.append(mine)

    threads = [threading.Thread(target=task, args=(shared.share(), random.Random(seed * 10 + n))) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared.pending == 0
    assert {index: names for index, names in passed.items()} == {
        index: [obj.name for obj in batch] for index, batch in enumerate(batches) if batch}
    handed = sorted(name for mine in ran for name in mine)
    assert handed == sorted(obj.name for batch in batches for obj in batch)  # each file run once, by one task


def _landing(path):
    path.mkdir()
    for index, name in enumerate(sorted(GOOD_FILES)[:3] * 3):
        shutil.copy(IMOS_DIR / name, path / f"{name.removesuffix('.nc')}-r{index}.nc")
    shutil.copy(IMOS_DIR / BAD_NC, path / BAD_NC)
    shutil.copy(IMOS_DIR / BAD_NC, path / "zz-not-netcdf.nc")
    return path


def _read_back(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return tasks, artifacts, logs


def _file_lines(logs, landing, base) -> list[str]:
    """Every log line about a file (the batches' own status lines and Prefect's lines apart), paths taken out."""
    lines = []
    for log in logs:
        for line in log.message.splitlines():
            if line.startswith("batch ") or "Finished in state" in line or "flow run" in line.lower():
                continue
            line = ATTEMPT.sub("<attempt>", line.replace(str(landing), "<landing>").replace(str(base), "<base>"))
            lines.append(line)
    return sorted(lines)


@pytest.mark.prefect
def test_a_run_with_the_shared_queue_is_the_run_with_one_task_per_batch(prefect_harness, tmp_path, monkeypatch):
    from aodncore.prefect.flows import ingest_landing

    runs = {}
    for shared in (True, False):
        monkeypatch.setattr(batchrun, "SHARED_FILES", shared)
        landing, base = _landing(tmp_path / f"landing-{shared}"), tmp_path / f"base-{shared}"
        state = ingest_landing(str(landing), base_dir=str(base), settle_seconds=0, workers=2, return_state=True)
        tasks, artifacts, logs = _read_back(state.state_details.flow_run_id)
        result = state.result()
        outcomes = [{k: v for k, v in o.items() if k != "error_uri"} for o in result["outcomes"]]
        outcomes = json.loads(ATTEMPT.sub("<attempt>", json.dumps(outcomes).replace(str(landing), "<landing>")
                                                     .replace(str(base), "<base>")))
        (table,) = [a for a in artifacts if a.type == "table"]
        rows = table.data if isinstance(table.data, list) else json.loads(table.data)
        rows = json.loads(ATTEMPT.sub("<attempt>", json.dumps(rows).replace(str(base), "<base>")))
        batches = sorted(t.name for t in tasks if t.name.startswith("ingest-batch"))
        runs[shared] = {"state": (state.type, state.name, state.message), "counts": result["counts"],
                        "outcomes": outcomes, "rows": rows, "lines": _file_lines(logs, landing, base),
                        "batches": batches, "done": all(t.state.is_final() for t in tasks)}

    assert runs[True]["batches"] == ["ingest-batch-0", "ingest-batch-1"]  # one task run per worker
    assert runs[False]["batches"] == [f"ingest-batch-{n}" for n in range(4)]  # one per planned batch
    for key in ("state", "counts", "outcomes", "rows", "lines"):
        assert runs[True][key] == runs[False][key], key
    assert runs[True]["counts"] == {"published": 9, "quarantined": 2}
    assert runs[True]["done"] and runs[False]["done"]
