"""A run's report (``--report FILE``, flow parameter ``report_path``): one JSON line per landing entry of every
status, written as the run goes, while the result lists only the first few published entries."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
from ingest_helpers import BAD_NC, IMOS_DIR, restore_process_state  # noqa: F401

from aodncore.ingest import FileOutcome
from aodncore.ingest.outcome import IGNORED, PUBLISHED, QUARANTINED, SKIPPED
from aodncore.ingest.report import ReportPathError, RunReport, check_report_path
from aodncore.ingest.result import IngestResult
from aodncore.limits import LISTED_PER_REASON

SMALL_GOOD = "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV01_Profile-SBE-19plus_C-20160524T003914Z.nc"
PUBLISHED_FILES = LISTED_PER_REASON + 5


def _outcome(index: int, status: str = PUBLISHED) -> FileOutcome:
    return FileOutcome(source=f"file:///landing/f{index:05d}.nc", name=f"f{index:05d}.nc", status=status)


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_outcome_is_written_in_batches_from_several_threads(tmp_path):
    path = tmp_path / "run.jsonl"
    report = RunReport(str(path), flush_lines=50)

    def add(start: int) -> None:
        for index in range(start, start + 1000):
            report.add(_outcome(index))

    threads = [threading.Thread(target=add, args=(start,)) for start in (0, 1000, 2000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = path.read_text(encoding="utf-8").count("\n")
    assert written % 50 == 0 and written >= 2950  # whole batches so far, nothing held beyond one batch
    report.close()
    report.close()  # idempotent
    lines = _lines(path)
    assert report.lines == len(lines) == 3000
    assert sorted(line["name"] for line in lines) == [f"f{index:05d}.nc" for index in range(3000)]
    assert lines[0] == _outcome(int(lines[0]["name"][1:6])).to_dict()  # the outcome dict, every key
    with pytest.raises(ValueError, match="closed"):
        report.add(_outcome(1))


def test_the_result_writes_what_it_is_given_to_the_report_unless_already_reported(tmp_path):
    path = tmp_path / "run.jsonl"
    with RunReport(str(path)) as report:
        result = IngestResult(report=report)
        result.extend(_outcome(index) for index in range(3 * LISTED_PER_REASON))
        result.add(_outcome(9999, SKIPPED), report=False)  # reported where it finished (an outcome hook)
    assert result.counts == {PUBLISHED: 3 * LISTED_PER_REASON, SKIPPED: 1}
    assert len(result.outcomes) == LISTED_PER_REASON + 1
    assert [line["name"] for line in _lines(path)] == [f"f{index:05d}.nc" for index in range(3 * LISTED_PER_REASON)]
    assert result.to_dict()["report"] == str(path)


@pytest.mark.parametrize(("path", "message"), [
    ("", "empty"),
    ("s3://bucket/report.jsonl", "must be a local file path"),
    ("{tmp}/missing/report.jsonl", "does not exist"),
    ("{tmp}", "is a folder"),
])
def test_a_report_path_that_cannot_be_written_is_refused_in_one_line(tmp_path, path, message):
    with pytest.raises(ReportPathError, match=message) as caught:
        check_report_path(path.format(tmp=tmp_path))
    assert "\n" not in str(caught.value)
    assert check_report_path(f"file://{tmp_path}/r.jsonl") == f"{tmp_path}/r.jsonl"
    assert not (tmp_path / "r.jsonl").exists()  # checking creates nothing


def test_a_report_path_inside_a_local_landing_area_is_refused(tmp_path):
    landing = tmp_path / "landing"
    (landing / "sub").mkdir(parents=True)
    for inside in (landing / "r.jsonl", landing / "sub" / "r.jsonl"):
        with pytest.raises(ReportPathError, match="inside the landing area"):
            check_report_path(str(inside), [str(landing), "s3://bucket/landing/"])
    beside = tmp_path / "landing-report.jsonl"  # a sibling whose name starts like the folder's
    assert check_report_path(str(beside), [str(landing), f"file://{landing}"]) == str(beside)


def _landing(tmp_path, published: int = PUBLISHED_FILES):
    landing = tmp_path / "landing"
    landing.mkdir()
    stem = SMALL_GOOD.removesuffix(".nc")
    for index in range(published):
        shutil.copy(IMOS_DIR / SMALL_GOOD, landing / f"{stem}-r{index:03d}.nc")
    shutil.copy(IMOS_DIR / BAD_NC, landing / BAD_NC)
    (landing / ".hidden").write_bytes(b"x")
    return landing


def _table_rows(state) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    (table,) = [artifact for artifact in artifacts if artifact.type == "table"]
    return json.loads(table.data) if isinstance(table.data, str) else table.data


@pytest.mark.prefect
def test_a_flow_run_lists_the_first_published_and_reports_every_entry(prefect_harness, tmp_path):
    from aodncore.prefect.flows import ingest_landing

    landing, report = _landing(tmp_path), tmp_path / "report.jsonl"
    state = ingest_landing(str(landing), base_dir=str(tmp_path / "base"), settle_seconds=0, workers=2,
                           report_path=str(report), return_state=True)

    total = PUBLISHED_FILES + 2
    assert state.message == f"ingest-landing: 1 of {total} quarantined, {PUBLISHED_FILES} published, 1 ignored"
    result = state.result()
    assert result["counts"] == {PUBLISHED: PUBLISHED_FILES, QUARANTINED: 1, IGNORED: 1}
    assert result["report"] == str(report) and result["truncated"] is True
    statuses = [o["status"] for o in result["outcomes"]]
    assert statuses.count(PUBLISHED) == LISTED_PER_REASON and statuses.count(QUARANTINED) == 1
    assert {(s["status"], s["count"], s["listed"]) for s in result["summarised"]} == {
        (PUBLISHED, PUBLISHED_FILES, LISTED_PER_REASON), (IGNORED, 1, 1)}

    lines = _lines(report)
    assert len(lines) == len({line["name"] for line in lines}) == total  # each entry once
    by_name = {line["name"]: line for line in lines}
    assert sum(line["status"] == PUBLISHED for line in lines) == PUBLISHED_FILES
    assert by_name[BAD_NC]["status"] == QUARANTINED and by_name[".hidden"]["status"] == IGNORED
    for listed in result["outcomes"]:  # every listed outcome is in the report, the same
        assert by_name[listed["name"]] == listed

    rows = _table_rows(state)
    assert len(rows) == LISTED_PER_REASON + 3  # 20 published, quarantined, ignored, the more-row
    assert rows[-1]["status"] == PUBLISHED and rows[-1]["name"].startswith(
        f"… {PUBLISHED_FILES - LISTED_PER_REASON} more not listed (list truncated): {PUBLISHED_FILES} published; "
        f"first {LISTED_PER_REASON} listed — every one is in the report {report}")


@pytest.mark.prefect
def test_a_flow_run_with_a_bad_report_path_fails_at_once_and_changes_nothing(prefect_harness, tmp_path):
    from aodncore.prefect.flows import ingest_landing

    landing = _landing(tmp_path, published=1)
    before = sorted(p.name for p in landing.iterdir())
    state = ingest_landing(str(landing), base_dir=str(tmp_path / "base"), settle_seconds=0,
                           report_path=str(tmp_path / "nowhere" / "r.jsonl"), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ReportPathError) and "does not exist" in str(error)
    assert sorted(p.name for p in landing.iterdir()) == before


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_cli_report_option(capsys, tmp_path):
    from aodncore.cli import main

    landing, report = _landing(tmp_path), tmp_path / "report.jsonl"
    base = tmp_path / "base"
    assert main(["ingest", str(landing), "--base-dir", str(base), "--settle", "0", "--report", str(report)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("published ") for line in lines) == LISTED_PER_REASON
    assert sum(line.startswith("quarantined ") for line in lines) == 1
    assert f"{PUBLISHED_FILES} published; first {LISTED_PER_REASON} listed — every one is in the report {report}" \
        in lines
    assert lines[-1] == (f"{PUBLISHED_FILES} published, 1 quarantined, 1 ignored — every entry is in the report "
                         f"{report}")
    assert len(_lines(report)) == PUBLISHED_FILES + 2

    for bad in (["--report", str(tmp_path / "missing" / "r.jsonl")], ["--report", str(report), "--dry-run"]):
        assert main(["ingest", str(landing), "--base-dir", str(base), "--settle", "0", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and ("--report" in err or "report path" in err)
        assert len(err.splitlines()) == 1
