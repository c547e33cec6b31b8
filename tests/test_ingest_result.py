"""A run's result: full outcomes for what needs attention; published, already-ingested and ignored entries
summarised (a count per reason, the first few listed), so a large run or re-scan returns little — while the state
message, the table artifact and the CLI still count every entry, and the run's report lists every one."""

from __future__ import annotations

import json
import shutil
import threading
from types import SimpleNamespace

import pytest
from ingest_helpers import GOOD_FILES, IMOS_DIR, restore_process_state  # noqa: F401

from aodncore.ingest import FileOutcome, LandingObject, list_landing
from aodncore.ingest.configure import LEDGER_FILE_NAME
from aodncore.ingest.ledger import IngestLedger
from aodncore.ingest.outcome import FAILED, IGNORED, PUBLISHED, QUARANTINED, SKIPPED, WAITING
from aodncore.ingest.result import LISTED_PER_REASON, IngestResult

GOOD = next(iter(GOOD_FILES))
KEPT = "already ingested (same content); kept in the landing area"


def _outcome(index: int, status: str = SKIPPED, note: str | None = KEPT, **fields) -> FileOutcome:
    name = f"IMOS_x_{index:06d}.nc"
    return FileOutcome(source=f"s3://landing/{name}", name=name, status=status, note=note, **fields)


def _rescan(skipped: int) -> IngestResult:
    result = IngestResult()
    result.add(_outcome(0, PUBLISHED, None, destination="s3://public/IMOS/x.nc", stored=True))
    result.extend(_outcome(index) for index in range(1, skipped + 1))
    result.add(_outcome(skipped + 1, FAILED, None, error="RuntimeError: store down"))
    return result


def test_already_ingested_entries_are_counted_and_only_the_first_few_listed():
    result = _rescan(1000)

    assert result.total == 1002 and result.counts == {PUBLISHED: 1, SKIPPED: 1000, FAILED: 1}
    assert [o.status for o in result.outcomes] == [PUBLISHED] + [SKIPPED] * LISTED_PER_REASON + [FAILED]
    assert [o.name for o in result.outcomes[1:-1]] == [f"IMOS_x_{i:06d}.nc" for i in range(1, LISTED_PER_REASON + 1)]
    assert result.truncated
    published, summary = result.summaries
    assert (published.status, published.reason, published.count, published.listed) == (PUBLISHED, "", 1, 1)
    assert (summary.status, summary.reason, summary.count, summary.listed) == (SKIPPED, KEPT, 1000, LISTED_PER_REASON)
    assert result.truncation_lines() == [
        f"1000 skipped ({KEPT}); first {LISTED_PER_REASON} listed — `aodncore ingest --dry-run` lists every one"]
    data = result.to_dict()
    assert data["truncated"] is True and data["total"] == 1002
    assert data["counts"] == {PUBLISHED: 1, SKIPPED: 1000, FAILED: 1}
    assert data["summarised"] == [{"status": PUBLISHED, "reason": "", "count": 1, "listed": 1},
                                  {"status": SKIPPED, "reason": KEPT, "count": 1000, "listed": LISTED_PER_REASON}]
    assert data["report"] is None


def test_entries_needing_attention_are_all_listed_in_full():
    notes = {
        QUARANTINED: None, FAILED: None,
        WAITING: "still being written? changed 1 s ago",
        SKIPPED: "in progress elsewhere (claimed by another run)",
    }
    result = IngestResult()
    for status, note in notes.items():
        result.extend(_outcome(index, status, note) for index in range(3 * LISTED_PER_REASON))
    result.add(_outcome(0, SKIPPED, "landing object vanished; nothing to do"))

    assert len(result.outcomes) == result.total == 4 * 3 * LISTED_PER_REASON + 1
    assert not result.truncated and result.summaries == []
    assert [o.status for o in result.outcomes[:3 * LISTED_PER_REASON]] == [QUARANTINED] * 3 * LISTED_PER_REASON


def _published(index: int) -> FileOutcome:
    return _outcome(index, PUBLISHED, None, destination=f"s3://public/IMOS/x_{index}.nc", stored=True,
                    check_result="passed", files=[{"name": f"IMOS_x_{index:06d}.nc", "stored": True}])


def _run(published: int) -> IngestResult:
    result = IngestResult()
    for index in range(published):
        result.add(_published(index))
        if index % 100 == 7:  # attention-needing entries among them: every one listed
            result.add(_outcome(index, QUARANTINED, None, error="format check failed"))
    return result


def test_published_entries_are_counted_and_only_the_first_few_listed():
    result = _run(3000)

    assert result.total == 3030 and result.counts == {PUBLISHED: 3000, QUARANTINED: 30}
    listed = [o.name for o in result.outcomes if o.status == PUBLISHED]
    assert listed == [f"IMOS_x_{index:06d}.nc" for index in range(LISTED_PER_REASON)]  # the first, in order
    assert sum(o.status == QUARANTINED for o in result.outcomes) == 30
    assert result.truncated
    (summary,) = result.summaries
    assert (summary.status, summary.count, summary.listed) == (PUBLISHED, 3000, LISTED_PER_REASON)
    assert result.truncation_lines() == [
        f"3000 published; first {LISTED_PER_REASON} listed — a run with `--report FILE` (flow parameter "
        "report_path) lists every one"]
    result.report_path = "/data/run.jsonl"
    assert result.truncation_lines() == [
        f"3000 published; first {LISTED_PER_REASON} listed — every one is in the report /data/run.jsonl"]


def test_the_result_does_not_grow_with_published_entries():
    small, large = _run(1000), _run(3000)
    assert len(large.outcomes) - len(small.outcomes) == 20  # the 20 more quarantined, no more published
    small_json = json.dumps({**small.to_dict(), "outcomes": [o for o in small.to_dict()["outcomes"]
                                                              if o["status"] == PUBLISHED]})
    large_json = json.dumps({**large.to_dict(), "outcomes": [o for o in large.to_dict()["outcomes"]
                                                              if o["status"] == PUBLISHED]})
    assert len(large_json) - len(small_json) <= 10  # only the counts' digits differ


def test_each_no_op_reason_is_summarised_on_its_own():
    result = IngestResult()
    removed = "already ingested (same content); removed from the landing area"
    stuck = "already ingested (same content); could not be removed from the landing area"
    hidden = "hidden file (name starts with '.')"
    for index in range(50):
        result.add(_outcome(index, SKIPPED, removed if index % 2 else stuck))
        result.add(_outcome(index, IGNORED, hidden))
    by_reason = {(s.status, s.reason): (s.count, s.listed) for s in result.summaries}
    assert by_reason == {(SKIPPED, removed): (25, 20), (SKIPPED, stuck): (25, 20), (IGNORED, hidden): (50, 20)}
    assert len(result.outcomes) == 60 and result.counts == {SKIPPED: 50, IGNORED: 50}


def test_the_result_does_not_grow_with_already_ingested_entries():
    small, large = _rescan(100), _rescan(20_000)
    small_json, large_json = json.dumps(small.to_dict()), json.dumps(large.to_dict())
    assert len(small.outcomes) == len(large.outcomes) == LISTED_PER_REASON + 2
    assert len(large_json) - len(small_json) <= 10  # only the counts' digits differ
    assert large.counts[SKIPPED] == 20_000


def test_round_trip_through_json():
    result = _rescan(30)
    back = IngestResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.to_dict() == result.to_dict()
    assert back.truncation_lines() == result.truncation_lines()
    legacy = IngestResult.from_dict([_outcome(1).to_dict(), _outcome(2, PUBLISHED, None).to_dict()])
    assert legacy.counts == {SKIPPED: 1, PUBLISHED: 1} and len(legacy.outcomes) == 2
    with pytest.raises(ValueError, match="missing counts"):
        IngestResult.from_dict({"outcomes": []})


def test_state_message_and_table_count_every_entry():
    from aodncore.prefect.artifacts import result_table_rows
    from aodncore.prefect.states import final_state

    result = _rescan(1000)
    state = final_state(result.counts, result.to_dict(), what="ingest-landing")
    assert state.is_failed() and state.message == "ingest-landing: 1 of 1002 failed, 1 published, 1000 skipped"

    rows = result_table_rows(result)
    assert len(rows) == len(result.outcomes) + 1
    marker = rows[-1]
    assert marker["status"] == SKIPPED
    assert marker["name"].startswith(f"… {1000 - LISTED_PER_REASON} more not listed (list truncated): 1000 skipped")


def test_pending_drains_stay_bounded_and_keep_plan_order(monkeypatch):
    """Already-ingested S3 objects are removed on a few threads, but their outcomes are added to the result as
    they come (a bounded window), never all held until the end."""
    from aodncore.prefect import flows

    pending: list[int] = []
    gate = threading.Semaphore(0)

    def slow_dispose(obj, settings):
        gate.acquire(timeout=5)
        return FileOutcome(source=obj.uri, name=obj.name, status=SKIPPED,
                           note="already ingested (same content); removed from the landing area")

    monkeypatch.setattr(flows, "dispose_skipped", slow_dispose)
    result = IngestResult()
    threads = 2
    with flows._InPlanOrder(SimpleNamespace(delete_landing=True), result, threads=threads) as ordered:
        for index in range(300):
            gate.release()
            ordered.dispose(LandingObject(uri=f"s3://b/f{index:03d}.nc", name=f"f{index:03d}.nc", size=1,
                                          fingerprint="etag", bucket="b", key=f"f{index:03d}.nc"))
            pending.append(len(ordered._pending))
        ordered.add(FileOutcome(source="s3://b/late.nc", name="late.nc", status=WAITING, note="changed"))
    assert max(pending) <= 4 * threads + 1
    assert result.counts == {SKIPPED: 300, WAITING: 1}
    assert [o.name for o in result.outcomes] == [f"f{i:03d}.nc" for i in range(LISTED_PER_REASON)] + ["late.nc"]


def _landing_with_ingested(tmp_path, count: int):
    """A landing folder: ``count`` files already in the ingest record, one new real file, one dotfile."""
    landing, base = tmp_path / "landing", tmp_path / "base"
    landing.mkdir()
    for index in range(count):
        (landing / f"IMOS_old_{index:03d}.nc").write_bytes(f"content {index}".encode())
    base.mkdir()
    with IngestLedger(base / LEDGER_FILE_NAME) as ledger:
        ledger.record_many([(obj, FileOutcome(source=obj.uri, name=obj.name, status=PUBLISHED))
                            for obj in list_landing(str(landing))])
    shutil.copy(IMOS_DIR / GOOD, landing / GOOD)
    (landing / ".hidden").write_bytes(b"x")
    return landing, base


@pytest.mark.prefect
def test_a_rescan_returns_counts_and_the_first_few_and_its_table_says_truncated(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from aodncore.prefect.flows import ingest_landing

    landing, base = _landing_with_ingested(tmp_path, 45)
    state = ingest_landing(str(landing), base_dir=str(base), settle_seconds=0, delete_landing=False,
                           return_state=True)

    assert state.is_completed() and state.message == "ingest-landing: 1 of 47 published, 45 skipped, 1 ignored"
    result = state.result()
    assert result["total"] == 47 and result["counts"] == {PUBLISHED: 1, SKIPPED: 45, IGNORED: 1}
    assert result["truncated"] is True
    assert {(s["status"], s["count"], s["listed"]) for s in result["summarised"]} == {
        (PUBLISHED, 1, 1), (SKIPPED, 45, LISTED_PER_REASON), (IGNORED, 1, 1)}
    listed = [o["name"] for o in result["outcomes"] if o["status"] == SKIPPED]
    assert listed == [f"IMOS_old_{index:03d}.nc" for index in range(LISTED_PER_REASON)]  # the first, in order
    assert [o["name"] for o in result["outcomes"] if o["status"] == PUBLISHED] == [GOOD]

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    (table,) = [artifact for artifact in artifacts if artifact.type == "table"]
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert len(rows) == LISTED_PER_REASON + 3  # published, 20 skipped, ignored, the truncation marker
    assert rows[-1]["name"].startswith(f"… {45 - LISTED_PER_REASON} more not listed (list truncated): 45 skipped")
    assert "47 file(s)" in table.description and "list truncated" in table.description


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_cli_summary_says_how_many_and_dry_run_lists_every_one(capsys, tmp_path):
    from aodncore.cli import main

    landing, base = _landing_with_ingested(tmp_path, 30)
    code = main(["ingest", str(landing), "--base-dir", str(base), "--keep-landing", "--settle", "0"])
    lines = capsys.readouterr().out.splitlines()

    assert code == 0
    assert sum(line.startswith("skipped ") for line in lines) == LISTED_PER_REASON
    assert f"30 skipped ({KEPT}); first {LISTED_PER_REASON} listed — `aodncore ingest --dry-run` lists every one" \
        in lines
    assert lines[-1] == ("1 published, 30 skipped, 1 ignored — not every entry is listed; a run with "
                         "`--report FILE` writes every one")

    assert main(["ingest", str(landing), "--base-dir", str(base), "--dry-run", "--settle", "0"]) == 0
    dry = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("skipped ") for line in dry) == 31  # every one, the new file too now
