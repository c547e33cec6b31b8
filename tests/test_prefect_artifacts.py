"""Outcome table and failure report artifacts, read back from a real Prefect API."""

import json

import pytest

from aodncore.ingest import FAILED, PUBLISHED, QUARANTINED, FileOutcome
from aodncore.prefect.artifacts import (
    failure_report_markdown,
    failure_summary_markdown,
    outcome_table_rows,
    sanitise_key,
)

GOOD = FileOutcome(source="s3://landing/IMOS/a.nc", name="a.nc", status=PUBLISHED, check_result="passed",
                   publish_type="HARVEST_UPLOAD", destination="IMOS/ANMN/a.nc", stored=True, archived=True)
BAD = FileOutcome(source="s3://landing/IMOS/b|bad.nc", name="b|bad.nc", status=QUARANTINED, check_result="failed",
                  publish_type="HARVEST_UPLOAD", error="IMOS compliance check failed: global attribute 'title' missing",
                  error_uri="s3://user:secret@errors/IMOS/b|bad.nc",
                  files=[{"name": "b|bad.nc", "check_passed": False, "publish_type": "HARVEST_UPLOAD"}])


@pytest.mark.parametrize("key, expected", [
    ("Ingest Batch_2024/01", "ingest-batch-2024-01"),
    ("--a--b--", "a-b"),
    ("Ünïcode!!", "n-code"),
    ("***", None),
    (None, None),
])
def test_sanitise_key(key, expected):
    assert sanitise_key(key) == expected


def test_rows_and_markdown_content():
    rows = outcome_table_rows([GOOD, BAD])
    assert rows[0] == {"name": "a.nc", "status": PUBLISHED, "check result": "passed",
                       "publish type": "HARVEST_UPLOAD", "destination": "IMOS/ANMN/a.nc", "stored": True,
                       "archived": True, "error": ""}
    markdown = failure_report_markdown(BAD)
    assert "global attribute 'title' missing" in markdown
    assert "error store" in markdown
    assert "secret" not in markdown and "***@errors" in markdown
    assert "| b\\|bad.nc | no | HARVEST_UPLOAD |" in markdown



def _refused(index: int, status: str = QUARANTINED) -> FileOutcome:
    return FileOutcome(source=f"file:///land/f{index}.nc", name=f"f{index}.nc", status=status, check_result="failed",
                       error=f"# not a heading {index}\nsecond line", error_uri=f"s3://k:pw@errors/f{index}.nc")


def test_failure_summary_reports_the_first_files_in_full_and_counts_the_rest():
    outcomes = [_refused(index) for index in range(4)] + [_refused(4, FAILED)]
    markdown = failure_summary_markdown(outcomes, limit=3)
    assert markdown.splitlines()[0] == "# 5 file(s) refused or failed: 1 failed, 4 quarantined"
    for index in range(3):  # each in full, its title one level down, its sections below that
        assert f"## `f{index}.nc` was refused and kept in the error store" in markdown
        assert f"# not a heading {index}\nsecond line" in markdown  # the reason verbatim, inside its code block
    assert markdown.count("### Reason") == 3
    assert "f3.nc" not in markdown and "f4.nc" not in markdown
    assert "… and 2 more, not shown here" in markdown
    assert "pw@" not in markdown and "***@errors/f0.nc" in markdown


def test_failure_summary_of_few_files_has_no_more_line():
    markdown = failure_summary_markdown([_refused(0)], limit=20)
    assert "more, not shown" not in markdown
    assert markdown.endswith("\n") and not markdown.endswith("\n\n")
    body = failure_report_markdown(_refused(0)).split("\n", 1)[1]  # the per-file report less its title
    assert body.replace("## Reason", "### Reason") in markdown

@pytest.mark.prefect
def test_artifacts_are_created_in_the_run(prefect_harness):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from aodncore.prefect.artifacts import create_failure_report, create_failure_summary, create_outcome_table

    @flow
    def report():
        create_outcome_table([GOOD, BAD], key="Ingest Batch 1")
        create_failure_report(BAD, key="failure b|bad.nc")
        create_failure_summary([BAD, _refused(1, FAILED)], key="Ingest Batch 1-refused")

    state = report(return_state=True)
    assert state.is_completed(), state
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {"ingest-batch-1", "failure-b-bad-nc", "ingest-batch-1-refused"}
    table = by_key["ingest-batch-1"]
    assert table.type == "table"
    data = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [row["name"] for row in data] == ["a.nc", "b|bad.nc"]
    assert data[1]["check result"] == "failed" and data[1]["error"].startswith("IMOS compliance")
    assert "1 published" in table.description and "1 quarantined" in table.description
    failure = by_key["failure-b-bad-nc"]
    assert failure.type == "markdown" and "global attribute 'title' missing" in failure.data
    summary = by_key["ingest-batch-1-refused"]
    assert summary.type == "markdown" and summary.description == "2 refused or failed: 1 failed, 1 quarantined"
    assert "global attribute 'title' missing" in summary.data and "`f1.nc`" in summary.data
