"""Flow and task behaviour a Prefect user relies on, on the session's ``prefect_harness``: no-op success for
duplicate events, retry-safe step tasks with one summary line each, secrets refused before a run exists, and the
state rule itself."""

from __future__ import annotations

import shutil

import pytest
from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR

from aodncore.ingest.configure import LEDGER_FILE_NAME
from aodncore.ingest.record import open_ingest_record
from aodncore.prefect.credentials import SecretInParameterError, refuse_secrets_in_parameters
from aodncore.prefect.states import QUARANTINED_STATE_NAME, final_state, summarise

GOOD = next(iter(GOOD_FILES))


def test_state_rule():
    assert summarise([]) == "no files"
    assert summarise(["published", "failed", "quarantined", "failed"]) == "2 of 4 failed, 1 quarantined, 1 published"
    assert final_state(["published", "failed"], [1]).is_failed()
    quarantined = final_state(["published", "quarantined", "skipped"], [])
    assert quarantined.is_completed() and quarantined.name == QUARANTINED_STATE_NAME
    assert quarantined.message == "ingest: 1 of 3 quarantined, 1 published, 1 skipped"
    assert final_state(["published", "skipped"], []).name == "Completed"


@pytest.mark.parametrize("parameters, where", [
    ({"upload_uri": "sftp://bob:hunter2@host/data"}, "upload_uri"),
    ({"source": ["s3://b/p", "https://h/x?X-Amz-Security-Token=abc"]}, "source[1]"),
    ({"handler_params": {"notify_params": {"smtp_password": "hunter2"}}}, "handler_params.notify_params"),
])
def test_secrets_in_parameters_are_refused_without_echoing_them(parameters, where):
    with pytest.raises(SecretInParameterError) as raised:
        refuse_secrets_in_parameters(parameters)
    message = str(raised.value)
    assert where in message and "Secret block" in message and "AODNCORE_SFTP_PASSWORD" in message
    assert "hunter2" not in message and "abc" not in message


def test_plain_parameters_pass():
    refuse_secrets_in_parameters({"source": "s3://bucket/prefix/key+with:colon@x.nc", "upload_uri": "sftp://bob@h/p",
                                  "handler_params": {"check_params": {"checks": ["cf:1.6"]}}, "workers": 2})


@pytest.mark.prefect
def test_a_secret_in_a_parameter_creates_no_flow_run(prefect_harness, tmp_path):
    from prefect.client.orchestration import get_client

    from aodncore.prefect.flows import ingest_landing

    with get_client(sync_client=True) as client:
        before = len(client.read_flow_runs(limit=200))
        with pytest.raises(SecretInParameterError):
            ingest_landing(str(tmp_path), upload_uri="sftp://bob:hunter2@host/data")
        assert len(client.read_flow_runs(limit=200)) == before


@pytest.mark.prefect
def test_duplicate_events_for_ingested_or_claimed_objects_are_no_op_successes(prefect_harness, tmp_path):
    from aodncore.prefect.flows import ingest_file

    landing = tmp_path / "landing"
    landing.mkdir()
    path = shutil.copy(IMOS_DIR / GOOD, landing / GOOD)
    base = tmp_path / "base"

    first = ingest_file(str(path), base_dir=str(base), settle_seconds=0, return_state=True)
    assert first.is_completed() and first.result()["status"] == "published"
    assert not (landing / GOOD).exists()  # removed from landing after publishing

    late = ingest_file(str(path), base_dir=str(base), settle_seconds=0, return_state=True)  # a late duplicate
    assert late.is_completed(), late
    assert late.result()["status"] == "skipped" and "already ingested" in late.result()["note"]

    other = shutil.copy(IMOS_DIR / BAD_NC, landing / BAD_NC)
    with open_ingest_record(base / LEDGER_FILE_NAME) as record:
        from aodncore.ingest.sources import LandingObject

        assert record.claim_many([LandingObject.from_path(other)], "another-machine").claimed
        busy = ingest_file(str(other), base_dir=str(base), settle_seconds=0, return_state=True)
        assert busy.is_completed() and busy.result()["status"] == "skipped"
        assert "in progress elsewhere" in busy.result()["note"]
        assert (landing / BAD_NC).exists()  # untouched: the other claimer has it

    with pytest.raises(ValueError, match="no landing object"):
        ingest_file(str(landing / "never-landed.nc"), base_dir=str(base), settle_seconds=0)


@pytest.mark.prefect
def test_step_tasks_are_safe_to_retry_and_log_one_summary_line(prefect_harness, tmp_path, caplog):
    import logging

    from prefect import flow

    from aodncore.pipeline import PipelineFilePublishType
    from aodncore.pipeline.defaultconfig import default_config
    from aodncore.pipeline.pathfunctions import imos_dest_path
    from aodncore.prefect import check_task, publish_task, resolve_task

    source = shutil.copy(IMOS_DIR / GOOD, tmp_path / GOOD)
    config = default_config(str(tmp_path / "data"))

    @flow
    def my_flow(path: str, work_dir: str) -> int:
        files = resolve_task(path, work_dir, config, addition_type=PipelineFilePublishType.UPLOAD_ONLY)
        files = check_task(files, config, {"checks": ["cf:1.6"]})
        files = publish_task(files, config, dest_path_function=imos_dest_path)
        return len(files)

    work = tmp_path / "work"
    work.mkdir()
    with caplog.at_level(logging.INFO):
        assert my_flow(str(source), str(work)) == 1
        assert my_flow(str(source), str(work)) == 1  # the same flow again: no FileExistsError
    summaries = [r.getMessage() for r in caplog.records if r.getMessage().startswith(("resolve:", "check:",
                                                                                     "publish:"))]
    assert summaries.count("resolve: 1 file(s) from " + GOOD) == 2
    assert summaries.count("check: 1 file(s) checked, 0 failed") == 2
    assert sum(1 for line in summaries if line.startswith("publish: 1 file(s) stored")) == 2


@pytest.mark.parametrize("command", [[], ["ingest"], ["serve"], ["check"], ["bridge-sqs"]])
def test_help_has_no_rst_markup_and_lists_exit_codes(command):
    from typer.testing import CliRunner

    from aodncore.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    assert "``" not in result.output and ":class:" not in result.output
    assert "Exit codes: 0" in result.output and "2 usage" in result.output


@pytest.mark.prefect
def test_calling_a_flow_directly_raises_with_the_outcomes_when_a_file_failed(prefect_harness, tmp_path):
    from ingest_helpers import EXPLODE_MARKER, HANDLER_PREFIX

    from aodncore.prefect.flows import ingest_landing
    from aodncore.prefect.states import IngestRunFailed

    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(IMOS_DIR / GOOD, landing / f"IMOS_{EXPLODE_MARKER}_x.nc")
    quick = ingest_landing.with_options(retries=0)
    with pytest.raises(IngestRunFailed, match="1 of 1 failed") as failed:
        quick(str(landing), handler=f"{HANDLER_PREFIX}:SelectiveExplodingHandler", base_dir=str(tmp_path / "b"),
              settle_seconds=0)
    assert [o["status"] for o in failed.value.outcomes] == ["failed"]
    with pytest.raises(SecretInParameterError):  # with_options keeps the refusal of secrets
        quick(str(landing), error_uri="sftp://u:hunter2@h/e")
