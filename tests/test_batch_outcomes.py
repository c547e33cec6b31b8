"""Processed files join the run's result as they finish (``BatchOutcomes``; ``ingest_batch_task(on_outcome=…)``):
the result, table, state and CLI output are exactly those of adding every batch's outcome list in batch order,
while nothing per file is held for the run's length."""

from __future__ import annotations

import json
import random
import re
import shutil
import threading
from collections import Counter

import pytest
from ingest_helpers import BAD_NC, IMOS_DIR, restore_process_state  # noqa: F401

from aodncore.ingest import FileOutcome
from aodncore.ingest.outcome import FAILED, IGNORED, PUBLISHED, QUARANTINED, SKIPPED, WAITING
from aodncore.ingest.result import BatchOutcomes, IngestResult
from aodncore.limits import LISTED_PER_REASON

ATTEMPT = re.compile(r"/\d{8}T\d{6}Z-[0-9a-f]{8}/")
KEPT = "already ingested (same content); kept in the landing area"
SMALL_GOOD = "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV01_Profile-SBE-19plus_C-20160524T003914Z.nc"


def _outcome(batch: int, index: int, status: str, note: str | None = None) -> FileOutcome:
    name = f"b{batch:02d}-f{index:05d}.nc"
    return FileOutcome(source=f"file:///landing/{name}", name=name, status=status, note=note,
                       error="boom" if status == FAILED else None)


def _batch(rng: random.Random, batch: int, size: int) -> list[FileOutcome]:
    kinds = [(PUBLISHED, None)] * 12 + [(QUARANTINED, None), (FAILED, None), (SKIPPED, KEPT),
                                        (SKIPPED, "vanished"), (IGNORED, "hidden file"), (WAITING, "settling")]
    return [_outcome(batch, index, *rng.choice(kinds)) for index in range(size)]


def _plan_outcomes() -> list[FileOutcome]:
    return [_outcome(99, index, SKIPPED, KEPT) for index in range(3)] + [_outcome(99, 9, IGNORED, "hidden file")]


@pytest.mark.parametrize("seed", range(6))
def test_folding_batches_as_they_finish_gives_the_result_of_adding_them_in_order(seed):
    rng = random.Random(seed)
    batches = [_batch(rng, batch, rng.choice([0, 1, 5, 30, 200])) for batch in range(rng.randint(1, 6))]
    expected = IngestResult(listed_per_reason=rng.choice([1, 3, LISTED_PER_REASON]))
    expected.extend(_plan_outcomes())
    folded = IngestResult(listed_per_reason=expected.listed_per_reason)
    folded.extend(_plan_outcomes())
    for batch in batches:
        expected.extend(batch)

    processed = BatchOutcomes(folded)
    barrier = threading.Barrier(len(batches))

    def run(index: int) -> None:  # the batches' threads interleave
        barrier.wait()
        for outcome in batches[index]:
            processed.add(index, outcome)

    threads = [threading.Thread(target=run, args=(index,)) for index in reversed(range(len(batches)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert processed.counts == Counter(outcome.status for batch in batches for outcome in batch)
    processed.join()

    assert folded.to_dict() == expected.to_dict()
    assert [o.name for o in folded.outcomes] == [o.name for o in expected.outcomes]
    assert folded.truncation_lines() == expected.truncation_lines()


def test_a_batch_holds_only_what_the_result_may_list():
    result = IngestResult()
    processed = BatchOutcomes(result)
    for batch in range(4):
        for index in range(2000):
            processed.add(batch, _outcome(batch, index, PUBLISHED))
        processed.add(batch, _outcome(batch, 2000, QUARANTINED))
    held = sum(len(batch.kept) for batch in processed._batches.values())
    assert held == LISTED_PER_REASON + 4  # batch 0's first 20 published and each batch's quarantined file
    processed.join()
    assert result.counts == {PUBLISHED: 8000, QUARANTINED: 4}
    assert [o.name for o in result.outcomes[:LISTED_PER_REASON]] == [f"b00-f{i:05d}.nc" for i in range(20)]
    assert [o.status for o in result.outcomes[LISTED_PER_REASON:]] == [QUARANTINED] * 4
    assert result.summaries[0].count == 8000 and result.summaries[0].listed == LISTED_PER_REASON


def _landing(path, published: int):
    path.mkdir()
    stem = SMALL_GOOD.removesuffix(".nc")
    for index in range(published):
        shutil.copy(IMOS_DIR / SMALL_GOOD, path / f"{stem}-r{index:03d}.nc")
    shutil.copy(IMOS_DIR / BAD_NC, path / BAD_NC)
    shutil.copy(IMOS_DIR / BAD_NC, path / "zz-not-netcdf.nc")
    (path / ".hidden").write_bytes(b"x")
    return path


def _table(state) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    (table,) = [artifact for artifact in artifacts if artifact.type == "table"]
    return json.loads(table.data) if isinstance(table.data, str) else table.data


def _comparable(outcome: dict) -> dict:
    """An outcome dict without what differs between two runs of the same files (the attempt's error-store
    folder names the time and a random id)."""
    return {key: value for key, value in outcome.items() if key != "error_uri"}


def _lists_returned(monkeypatch):
    """Run the flow as before the fold: every batch task returns its outcome list, added in batch order."""
    from aodncore.prefect import flows

    original = flows._run_batches_here

    def returning_lists(todo, settings, workers, *, on_outcome=None):
        outcomes = original(todo, settings, workers)
        assert isinstance(outcomes, list)
        for outcome in outcomes:
            on_outcome(0, outcome)
        return {}

    monkeypatch.setattr(flows, "_run_batches_here", returning_lists)


def _fresh_landing(tmp_path, published: int):
    """A new landing folder of ``published`` good files (and the refused and ignored ones), a new empty base."""
    landing, base = tmp_path / "landing", tmp_path / "base"
    shutil.rmtree(landing, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)
    _landing(landing, published)
    return landing, base


@pytest.mark.prefect
def test_a_multi_batch_run_with_two_workers_gives_the_same_result_table_and_state_as_returned_lists(
        prefect_harness, tmp_path, monkeypatch):
    from aodncore.prefect.flows import ingest_landing

    published = LISTED_PER_REASON + 6
    runs = {}
    for how in ("folded", "lists"):
        if how == "lists":
            _lists_returned(monkeypatch)
        landing, base = _fresh_landing(tmp_path, published)
        state = ingest_landing(str(landing), base_dir=str(base), settle_seconds=0, workers=2, return_state=True)
        result = state.result()
        rows = [{key: value for key, value in row.items() if key != "error"} for row in _table(state)]
        runs[how] = (state.type, state.name, state.message, {**result, "outcomes": [
            _comparable(outcome) for outcome in result["outcomes"]]}, rows)

    assert runs["folded"] == runs["lists"]
    state_type, name, message, result, _ = runs["folded"]
    assert message == f"ingest-landing: 2 of {published + 3} quarantined, {published} published, 1 ignored"
    assert result["counts"] == {PUBLISHED: published, QUARANTINED: 2, IGNORED: 1}
    assert [o["status"] for o in result["outcomes"]].count(PUBLISHED) == LISTED_PER_REASON


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_the_cli_prints_the_same_with_and_without_the_fold(tmp_path, capsys, monkeypatch):
    from aodncore.cli import main

    printed = {}
    for how in ("folded", "lists"):
        if how == "lists":
            _lists_returned(monkeypatch)
        landing, base = _fresh_landing(tmp_path, LISTED_PER_REASON + 2)
        code = main(["ingest", str(landing), "--base-dir", str(base), "--settle", "0", "--workers", "2"])
        # the error-store folder of an attempt names its time and a random id
        printed[how] = (code, ATTEMPT.sub("<attempt>", capsys.readouterr().out).splitlines())
    assert printed["folded"] == printed["lists"]
    assert printed["folded"][0] == 1


@pytest.mark.prefect
def test_a_direct_caller_of_the_batch_task_gets_the_outcomes_or_with_on_outcome_the_counts(prefect_harness,
                                                                                           tmp_path):
    from prefect import flow

    from aodncore.ingest import list_landing
    from aodncore.ingest.configure import build_settings
    from aodncore.prefect import ingest_batch_task

    landing = _landing(tmp_path / "landing", 3)
    settings = build_settings(base_dir=str(tmp_path / "base"), delete_landing=False)
    objects = sorted(list_landing(str(landing)), key=lambda obj: obj.uri)
    seen: list[FileOutcome] = []

    @flow
    def direct() -> tuple:
        listed = ingest_batch_task(objects, settings, return_state=True)
        counted = ingest_batch_task(objects, settings, batch_label="again", on_outcome=seen.append,
                                    return_state=True)
        return listed, counted

    listed, counted = direct()
    outcomes = listed.result()
    assert [o.name for o in outcomes] == [obj.name for obj in objects]
    assert [o.status for o in outcomes] == [PUBLISHED] * 3 + [QUARANTINED] * 2  # "IMOS_…" < "not_…" < "zz…"
    assert listed.name == counted.name == "Quarantined"
    assert counted.result() == {PUBLISHED: 3, QUARANTINED: 2}
    assert [(o.name, o.status) for o in seen] == [(o.name, o.status) for o in outcomes]
    assert listed.message == "batch 0: 2 of 5 quarantined, 3 published"
    assert counted.message == "batch again: 2 of 5 quarantined, 3 published"


def _outcomes_alive_at_the_last_file(tmp_path, files: int) -> int:
    """How many ``FileOutcome`` objects are alive when the last file of a 2-worker flow run has finished."""
    import gc

    from aodncore.ingest import LandingObject, progress
    from aodncore.ingest.record import RecordWriter
    from aodncore.prefect.flows import ingest_landing

    landing = tmp_path / f"landing-{files}"
    landing.mkdir()
    for index in range(files):
        shutil.copy(IMOS_DIR / SMALL_GOOD, landing / f"{SMALL_GOOD.removesuffix('.nc')}-m{index:04d}.nc")
    seen = {"done": 0}

    def listener(event, payload):
        if event == "planned":
            seen["planned"] = payload
        elif event == "done":
            seen["done"] += 1
            if seen["done"] == seen.get("planned"):
                gc.collect()
                things = gc.get_objects()
                # the ingest-record writer holds the outcomes it has not written yet (its batch: at most 200, or
                # half a second's worth), queued or in a write under way, as (object, outcome) pairs; not the run's
                # held state
                unwritten = {id(outcome) for thing in things if isinstance(thing, RecordWriter)
                             for _, outcome in list(thing._pending)}
                unwritten |= {id(thing[1]) for thing in things if isinstance(thing, tuple) and len(thing) == 2
                              and isinstance(thing[0], LandingObject) and isinstance(thing[1], FileOutcome)}
                seen["alive"] = sum(isinstance(thing, FileOutcome) and id(thing) not in unwritten for thing in things)

    progress.add_listener(listener)
    try:
        state = ingest_landing(str(landing), base_dir=str(tmp_path / f"base-{files}"), settle_seconds=0, workers=2,
                               return_state=True)
    finally:
        progress.remove_listener(listener)
    assert state.is_completed() and state.result()["counts"] == {PUBLISHED: files}
    return seen["alive"]


@pytest.mark.prefect
def test_a_run_does_not_hold_an_outcome_per_file(prefect_harness, tmp_path, monkeypatch):
    from aodncore.ingest import result

    monkeypatch.setattr(result, "LISTED_PER_REASON", 2)  # each of the 4 batches may keep the first 2 published
    small, large = _outcomes_alive_at_the_last_file(tmp_path, 30), _outcomes_alive_at_the_last_file(tmp_path, 90)
    # before the fold every processed outcome was held until the last batch ended (60 more here); now only those
    # the result may list (the fold's and the result's: a few per batch)
    assert large - small < 20 and large < 40, (small, large)
