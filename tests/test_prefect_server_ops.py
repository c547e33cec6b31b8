"""Operating against a real, long-running ``prefect server start`` (the session's ``prefect_server``).

Runs are started the way operators start them — the ``aodncore`` command in its own process, ``aodncore serve``,
a process work-pool worker — and everything is read back from the server through the API: flow- and task-run
states, persisted results, per-file events, artifacts, parameters and logs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_helpers import (
    BAD_NC,
    EXPECTED_AWS_SECRET_ENV,
    EXPECTED_SMTP_PASSWORD_ENV,
    EXPLODE_MARKER,
    GOOD_FILES,
    IMOS_DIR,
    expected_key,
)

pytestmark = [pytest.mark.prefect_server]

TESTS_DIR = Path(__file__).parent
GOOD = list(GOOD_FILES)[:2]
DOOMED = f"IMOS_ANMN_{EXPLODE_MARKER}_20170201T000000Z_NRSDAR_FV01.nc"


def _env(server, **extra: str) -> dict[str, str]:
    return server.env(PYTHONPATH=os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]), **extra)


def _cli(server, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aodncore.cli", *args], env=env or _env(server),
                          capture_output=True, text=True, timeout=timeout)


def _wait_for(predicate, timeout: float = 60.0, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def _file_events(client, uri_prefix: str) -> list[dict]:
    response = client.request("POST", "/events/filter", json={
        "filter": {"event": {"prefix": ["aodncore.file."]}, "resource": {"id_prefix": [uri_prefix]}},
        "limit": 50})
    return response.json()["events"]


def _landing(tmp_path: Path, names: list[str], doomed: bool = False) -> Path:
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in names:
        shutil.copy(IMOS_DIR / name, landing / name)
    if doomed:
        shutil.copy(IMOS_DIR / GOOD[0], landing / DOOMED)
    return landing


def _flow_run_id(output: str) -> str:
    match = re.search(r"flow run: \S+/flow-run/([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1)


def test_cli_run_states_results_events_and_artifacts_tell_the_truth(prefect_server, tmp_path):
    """A run with a published, a quarantined and a failed file, read back from the server."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, TaskRunFilter
    from prefect.client.schemas.filters import TaskRunFilterFlowRunId as TaskFlowRunId

    landing = _landing(tmp_path, [GOOD[0], BAD_NC], doomed=True)
    result = _cli(prefect_server, "ingest", str(landing), "--base-dir", str(tmp_path / "base"), "--workers", "2",
                  "--handler", "ingest_helpers:SelectiveExplodingHandler", "--settle", "0")

    console = result.stdout + result.stderr
    assert result.returncode == 1, console
    run_id = _flow_run_id(console)  # the flow-run URL is printed when a server is configured
    for noise in ("Still processing items", "Traceback", "elemetry"):
        assert noise not in console, console

    with prefect_server.client() as client:
        flow_run = client.read_flow_run(run_id)
        assert flow_run.state.is_failed()
        assert flow_run.state.message == "ingest-landing: 1 of 3 failed, 1 quarantined, 1 published"
        assert flow_run.name.startswith(f"ingest-landing {landing} @ ")
        outcomes = flow_run.state.result(raise_on_failure=False)["outcomes"]  # persisted as JSON, readable from the API
        assert sorted((o["name"], o["status"]) for o in outcomes) == sorted(
            [(GOOD[0], "published"), (BAD_NC, "quarantined"), (DOOMED, "failed")])

        def batch_runs():
            runs = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskFlowRunId(any_=[run_id])))
            runs = [run for run in runs if run.name.startswith("ingest-batch") and run.state and run.state.is_final()]
            return runs if len(runs) >= 2 else None

        batches = _wait_for(batch_runs, what="ingest-batch task runs")
        assert any(run.state.is_failed() for run in batches)  # the batch holding the failed file says so
        assert all(run.state.is_failed() == ("failed" in (run.state.message or "")) for run in batches)

        events = _wait_for(lambda: (found := _file_events(client, landing.as_uri())) and len(found) >= 3 and found,
                           what="per-file events")
        by_name = {event["resource"]["prefect.resource.name"]: event for event in events}
        assert {name: event["event"] for name, event in by_name.items()} == {
            GOOD[0]: "aodncore.file.published", BAD_NC: "aodncore.file.quarantined", DOOMED: "aodncore.file.failed"}
        quarantined = by_name[BAD_NC]
        assert quarantined["resource"]["prefect.resource.id"] == (landing / BAD_NC).as_uri()
        roles = {related["prefect.resource.role"]: related["prefect.resource.id"]
                 for related in quarantined["related"]}
        assert roles["error-store"].startswith((tmp_path / "base" / "error").as_uri())
        assert roles["handler"] == "aodncore.handler.SelectiveExplodingHandler"
        assert roles["failed-check"] == "aodncore.check.FORMAT_CHECK"  # no suite asked: the format check
        assert roles["flow-run"] == f"prefect.flow-run.{run_id}"
        published = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in by_name[GOOD[0]]["related"]}
        assert published["destination"].endswith(expected_key(GOOD[0]))

        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    keys = {artifact.key for artifact in artifacts if artifact.type == "table"}
    assert keys == {"ingest-landing-selectiveexplodinghandler"}  # per pipeline: others do not overwrite it
    report = next(a for a in artifacts if a.type == "markdown" and BAD_NC in a.data)
    assert report.key == "ingest-landing-selectiveexplodinghandler-refused"  # one report per run, per pipeline
    assert "FORMAT_CHECK" in report.data and str(tmp_path / "base" / "error") in report.data


def test_two_concurrent_cli_runs_publish_each_file_exactly_once(prefect_server, postgres_db, tmp_path):
    """Two machines' worth of runs (two processes sharing a PostgreSQL ingest record) over one landing folder."""
    from aodncore.ingest.record import open_ingest_record

    names = []
    landing = tmp_path / "landing"
    landing.mkdir()
    for index in range(12):  # distinct names, real content
        name = GOOD[index % 2].replace("FV01", f"FV01_copy{index:02d}", 1)
        shutil.copy(IMOS_DIR / GOOD[index % 2], landing / name)
        names.append(name)
    env = _env(prefect_server, AODNCORE_INGEST_RECORD_URL=postgres_db.url)
    argv = [sys.executable, "-m", "aodncore.cli", "ingest", str(landing), "--keep-landing", "--workers", "1",
            "--settle", "0"]
    runs = [subprocess.Popen([*argv, "--base-dir", str(tmp_path / f"base{n}"),
                              "--upload-uri", (tmp_path / "published").as_uri()],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (0, 1)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    with open_ingest_record(postgres_db.url) as record:
        for name in names:
            statuses = [entry.status for entry in record.history((landing / name).as_uri())]
            assert statuses.count("published") == 1, (name, statuses)
        assert record.claims() == []  # every claim released
    published = list((tmp_path / "published").rglob("*.nc"))
    assert sorted(path.name for path in published) == sorted(names)
    text = "\n".join(out for pair in outputs for out in pair)
    assert text.count("published") >= 1 and "skipped" in text


def test_secrets_come_from_blocks_and_never_reach_prefect(prefect_server, s3, tmp_path):
    """AWS credentials from a prefect-aws block and the SMTP password from a Secret block: used by the run,
    absent from every stored parameter, log, event and artifact; a password in a URI is refused before any run."""
    pytest.importorskip("prefect_aws")
    aws_secret, smtp_password, uri_password = "AWS-s3cr3t-7f1c", "SMTP-s3cr3t-93ab", "URI-s3cr3t-d2e4"
    for bucket in ("landing", "published"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="landing", Key="in/" + GOOD[0], Body=(IMOS_DIR / GOOD[0]).read_bytes())
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    script = f"""
import json, sys
from prefect.blocks.system import Secret
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
from aodncore.prefect.flows import ingest_landing
from aodncore.prefect.credentials import SecretInParameterError

Secret(value={smtp_password!r}).save("smtp-pw", overwrite=True)
AwsCredentials(aws_access_key_id="testing", aws_secret_access_key={aws_secret!r}, region_name="us-east-1",
               aws_client_parameters=AwsClientParameters(endpoint_url={endpoint!r})).save("moto", overwrite=True)
state = ingest_landing("s3://landing/in/", handler="ingest_helpers:CredentialCheckingHandler",
                       base_dir={str(tmp_path / "base")!r}, upload_uri="s3://published/data",
                       aws_credentials_block="moto", smtp_password_secret="smtp-pw", return_state=True)
try:
    ingest_landing("s3://landing/in/", upload_uri="sftp://bob:{uri_password}@sftp.example/data")
except SecretInParameterError as error:
    refused = str(error)
print(json.dumps({{"run": str(state.state_details.flow_run_id), "refused": refused,
                  "outcomes": state.result(raise_on_failure=False)["outcomes"]}}))
"""
    env = _env(prefect_server, **{EXPECTED_AWS_SECRET_ENV: aws_secret, EXPECTED_SMTP_PASSWORD_ENV: smtp_password})
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)  # only the block can give the run access to S3
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [o["status"] for o in report["outcomes"]] == ["published"], report
    assert "upload_uri" in report["refused"] and "Secret block" in report["refused"]
    assert uri_password not in report["refused"]

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

    with prefect_server.client() as client:
        stored = [json.dumps(run.parameters) for run in client.read_flow_runs(limit=200)]
        logs = []
        while page := client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[report["run"]])),
                                       limit=200, offset=len(logs)):
            logs.extend(page)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[report["run"]])))
        run_resource = f"prefect.flow-run.{report['run']}"
        events = [event for query in ({"related": {"id": [run_resource]}}, {"resource": {"id": [run_resource]}})
                  for event in client.request("POST", "/events/filter",
                                              json={"filter": query, "limit": 50}).json()["events"]]
    assert logs and artifacts
    everything = "\n".join([*stored, *(log.message for log in logs), *(json.dumps(a.data) for a in artifacts),
                            json.dumps(events), result.stdout, result.stderr])
    for secret in (aws_secret, smtp_password, uri_password):
        assert secret not in everything
    assert s3.head_object(Bucket="published", Key=f"data/{expected_key(GOOD[0])}")


def _s3_notification(bucket: str, key: str, etag: str) -> str:
    return json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": bucket},
                                           "object": {"key": key, "size": 10, "eTag": etag}}}]})


def test_sqs_bridge_deletes_messages_only_after_the_server_accepted_the_events(prefect_server, s3):
    """With the server down the bridge raises and every message stays queued; once it is back they are
    delivered and only then deleted."""
    import boto3

    from aodncore.prefect.triggers import bridge_sqs_queue

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="bridge-outage", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    keys = ["outage/a.nc", "outage/b c.nc"]
    for index, key in enumerate(keys):
        sqs.send_message(QueueUrl=queue_url, MessageBody=_s3_notification("outage-bucket", key, f"etag{index}"))

    def queued() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    prefect_server.stop()
    try:
        with prefect_server.client() as client, pytest.raises(Exception) as raised:
            bridge_sqs_queue(queue_url, sqs_client=sqs, wait_seconds=0, max_batches=1, prefect_client=client,
                             post_attempts=2, max_retry_wait=0.1)
        assert "connect" in f"{type(raised.value).__name__} {raised.value}".lower()
        assert queued() == 2  # nothing lost while the server is down
    finally:
        prefect_server.start()

    with prefect_server.client() as client:
        forwarded = bridge_sqs_queue(queue_url, sqs_client=sqs, wait_seconds=0, max_batches=2, prefect_client=client)
        assert forwarded == 2
        assert queued() == 0

        def stored():
            response = client.request("POST", "/events/filter", json={
                "filter": {"event": {"name": ["aodncore.s3.object.created"]},
                           "resource": {"labels": {"s3.bucket": ["outage-bucket"]}}}, "limit": 10})
            found = response.json()["events"]
            return found if len(found) >= 2 else None

        events = _wait_for(stored, what="bridged events")
    assert sorted(event["payload"]["key"] for event in events) == sorted(keys)


def _deployment_runs(client, deployment_id) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


def test_serve_triggers_only_on_its_prefix_and_stopping_leaves_no_late_runs(prefect_server, s3, tmp_path):

    for bucket in ("served", "published", "errors"):
        s3.create_bucket(Bucket=bucket)
    key = f"incoming/{GOOD[0]}"
    s3.put_object(Bucket="served", Key=key, Body=(IMOS_DIR / GOOD[0]).read_bytes())
    name = f"serve-{tmp_path.name[-12:]}".lower()
    serve = subprocess.Popen(
        [sys.executable, "-m", "aodncore.cli", "serve", "s3://served/incoming/", "--name", name,
         "--interval", "3600", "--base-dir", str(tmp_path / "base"), "--settle", "7"],
        env=_env(prefect_server, AODNCORE_TEST_UPLOAD="1"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        with prefect_server.client() as client:
            def deployment(flow: str):
                try:
                    return client.read_deployment_by_name(f"{flow}/{name}")
                except Exception:  # noqa: BLE001 - not created yet
                    return None

            on_event = _wait_for(lambda: deployment("ingest-file"), timeout=120, what="served deployments")
            landing = _wait_for(lambda: deployment("ingest-landing"), what="interval deployment")
            assert landing.concurrency_limit == 1 or landing.global_concurrency_limit.limit == 1
            assert landing.parameters["settle_seconds"] == on_event.parameters["settle_seconds"] == 7  # --settle
            automations = _wait_for(lambda: client.read_resource_related_automations(
                f"prefect.deployment.{on_event.id}"), what="trigger automation")
            assert all(automation.enabled for automation in automations)

            def post(bucket: str, object_key: str, etag: str) -> None:
                from aodncore.prefect.triggers import post_s3_events

                post_s3_events(_s3_notification(bucket, object_key, etag), client)

            post("served", "elsewhere/x.nc", "e1")  # same bucket, another prefix
            post("served.other", "incoming/x.nc", "e2")  # a bucket whose name merely starts the same
            post("served", key, s3.head_object(Bucket="served", Key=key)["ETag"].strip('"'))
            runs = _wait_for(lambda: [r for r in _deployment_runs(client, on_event.id) if r.state.is_final()],
                             timeout=120, what="the triggered run to finish")
            time.sleep(3)  # give the non-matching events the same chance to trigger
            runs = _deployment_runs(client, on_event.id)
            assert [run.parameters["source"] for run in runs] == [f"s3://served/{key}"]
            assert runs[0].state.is_completed(), runs[0].state

        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
        with prefect_server.client() as client:
            assert client.read_deployment(landing.id).paused
            assert not any(a.enabled for a in client.read_resource_related_automations(
                f"prefect.deployment.{on_event.id}"))
            post("served", f"incoming/late-{GOOD[1]}", "e3")
            time.sleep(4)
            assert len(_deployment_runs(client, on_event.id)) == 1  # nobody serves it: no run is created
    finally:
        if serve.poll() is None:
            serve.kill()
        output = serve.communicate()[0]
    assert "Traceback" not in output, output


def test_work_pool_deployments_run_on_a_process_worker(prefect_server, s3, tmp_path):
    """The Python form (module entry points, no source checkout) with a real ``prefect worker``: a scheduled-style
    run of ``ingest-landing`` and an event-triggered ``ingest-file``."""
    from prefect.client.schemas.actions import WorkPoolCreate

    from aodncore.prefect.triggers import post_s3_events

    landing = _landing(tmp_path, [GOOD[0], BAD_NC])
    s3.create_bucket(Bucket="wp-landing")
    key = f"in/{GOOD[1]}"
    pool = f"pool-{tmp_path.name[-10:]}".lower()
    script = f"""
from aodncore.prefect.deployments import deploy_to_work_pool
print(deploy_to_work_pool([{str(landing)!r}, "s3://wp-landing/in/"], {pool!r}, name="wp", interval=3600,
                          parameters={{"base_dir": {str(tmp_path / "base")!r}, "settle_seconds": 0}}))
"""
    with prefect_server.client() as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    deployed = subprocess.run([sys.executable, "-c", script], env=_env(prefect_server), capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
    assert deployed.returncode == 0, deployed.stderr
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type",
                               "process"], env=_env(prefect_server), cwd=tmp_path / "..",
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with prefect_server.client() as client:
            deployment = client.read_deployment_by_name("ingest-landing/wp")
            assert deployment.entrypoint == "aodncore.prefect.flows.ingest_landing"
            run = client.create_flow_run_from_deployment(deployment.id)
            final = _wait_for(lambda: (r := client.read_flow_run(run.id)).state.is_final() and r, timeout=180,
                              what="the work-pool run")
            assert final.state.name == "Quarantined", final.state
            assert final.state.message == "ingest-landing: 1 of 2 quarantined, 1 published"

            s3.put_object(Bucket="wp-landing", Key=key, Body=(IMOS_DIR / GOOD[1]).read_bytes())  # lands now
            on_event = client.read_deployment_by_name("ingest-file/wp")
            _wait_for(lambda: client.read_resource_related_automations(f"prefect.deployment.{on_event.id}"),
                      what="the ingest-file trigger")
            etag = s3.head_object(Bucket="wp-landing", Key=key)["ETag"].strip('"')
            post_s3_events(_s3_notification("wp-landing", key, etag), client)
            triggered = _wait_for(lambda: [r for r in _deployment_runs(client, on_event.id) if r.state.is_final()],
                                  timeout=180, what="the event-triggered run")
            assert [r.parameters["source"] for r in triggered] == [f"s3://wp-landing/{key}"]
            assert triggered[0].state.is_completed(), triggered[0].state
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            output = worker.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0]
    assert (tmp_path / "base" / "published" / expected_key(GOOD[0])).is_file(), output
    assert (tmp_path / "base" / "published" / expected_key(GOOD[1])).is_file(), output  # from the S3 event


def test_the_prefect_yaml_example_deploys_module_entry_points(prefect_server, tmp_path):
    from prefect.client.schemas.actions import WorkPoolCreate

    pool = f"yaml-{tmp_path.name[-10:]}".lower()
    text = (TESTS_DIR.parent / "examples" / "prefect.yaml").read_text().replace("{name: ingest}", f"{{name: {pool}}}")
    text = text.replace("name: aodncore\n", "name: yaml-example\n")
    (tmp_path / "prefect.yaml").write_text(text)
    with prefect_server.client() as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    result = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=tmp_path,
                            env=_env(prefect_server), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    with prefect_server.client() as client:
        landing = client.read_deployment_by_name("ingest-landing/yaml-example")
        on_event = client.read_deployment_by_name("ingest-file/yaml-example")
        automations = client.read_resource_related_automations(f"prefect.deployment.{on_event.id}")
    assert (landing.entrypoint, on_event.entrypoint) == ("aodncore.prefect.flows.ingest_landing",
                                                         "aodncore.prefect.flows.ingest_file")
    assert landing.work_pool_name == on_event.work_pool_name == pool
    assert landing.pull_steps == [] and landing.global_concurrency_limit.limit == 1
    [automation] = automations
    assert automation.trigger.match.root == {"prefect.resource.id": "s3.*", "s3.bucket": "landing",
                                             "s3.key": "incoming/*"}
