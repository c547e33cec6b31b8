"""``aodncore bridge-sqs QUEUE_URL``: S3 notifications on a real (moto) SQS queue become Prefect events; mistakes
are one line with exit code 2, unreachable parts exit 1, Ctrl-C and SIGTERM stop it cleanly (exit 0)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_helpers import restore_process_state  # noqa: F401  (the command configures logging for its process)

from aodncore.cli import main

pytestmark = pytest.mark.usefixtures("restore_process_state")

TESTS_DIR = Path(__file__).parent
EVENT = "aodncore.s3.object.created"


def _notification(bucket: str, key: str, etag: str) -> str:
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
        "eventTime": "2026-12-01T00:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 3, "eTag": etag, "sequencer": "00"}},
    }]})


@pytest.fixture
def queue(s3):
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="cli-bridge", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    return sqs, url


def _queued(sqs, url) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                        "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def _events(client, bucket: str) -> list[dict]:
    response = client.request("POST", "/events/filter", json={
        "filter": {"event": {"name": [EVENT]}, "resource": {"labels": {"s3.bucket": [bucket]}}}, "limit": 20})
    return response.json()["events"]


def _wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.mark.prefect
def test_bridge_forwards_notifications_and_deletes_them(prefect_harness, queue, capsys):
    from prefect.client.orchestration import get_client

    sqs, url = queue
    keys = ["cli/a.nc", "cli/b c.nc"]
    for index, key in enumerate(keys):
        sqs.send_message(QueueUrl=url, MessageBody=_notification("cli-bridge-bucket", key, f"etag{index}"))

    assert main(["bridge-sqs", url, "--wait", "0", "--max-batches", "1"]) == 0
    assert "2 object(s) forwarded" in capsys.readouterr().err
    assert _queued(sqs, url) == 0  # deleted once the server accepted the events
    with get_client(sync_client=True) as client:
        events = _wait_for(lambda: len(_events(client, "cli-bridge-bucket")) >= 2 and _events(
            client, "cli-bridge-bucket"), what="the bridged events")
    assert sorted(event["payload"]["key"] for event in events) == sorted(keys)


@pytest.mark.parametrize("url", ["not-a-url", "https://sqs.ap-southeast-2.amazonaws.com/landing-events",
                                 "ftp://host/123456789012/q"])
def test_a_bad_queue_url_is_one_line_and_exit_2(url, capsys):
    assert main(["bridge-sqs", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an SQS queue URL" in err and "Traceback" not in err


def test_a_missing_queue_is_one_line_and_exit_2(queue, moto_endpoint, capsys):
    assert main(["bridge-sqs", f"{moto_endpoint}/123456789012/no-such-queue", "--wait", "0"]) == 2
    err = capsys.readouterr().err
    assert "no-such-queue does not exist" in err and err.count("\n") == 1


def test_an_unreachable_queue_endpoint_is_one_line_and_exit_1(queue, monkeypatch, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)  # nothing listens there once the socket is closed
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main(["bridge-sqs", f"{closed}/123456789012/cli-bridge", "--wait", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach queue") and err.count("\n") == 1 and "Traceback" not in err


def _bridge_env(extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def test_without_a_prefect_server_it_says_so_and_exits_2(queue, tmp_path):
    _sqs, url = queue
    env = _bridge_env({"PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_PROFILES_PATH": str(tmp_path / "p")})
    result = subprocess.run([sys.executable, "-m", "aodncore.cli", "bridge-sqs", url], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result
    assert "set PREFECT_API_URL" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.prefect_server
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_stop_it_cleanly(prefect_server, queue, stop):
    sqs, url = queue
    bridge = subprocess.Popen([sys.executable, "-m", "aodncore.cli", "bridge-sqs", url, "--wait", "1"],
                              env=_bridge_env(prefect_server.env()), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        bucket = f"cli-bridge-{stop.name.lower()}"
        sqs.send_message(QueueUrl=url, MessageBody=_notification(bucket, "stop/x.nc", "e1"))
        with prefect_server.client() as client:
            _wait_for(lambda: _events(client, bucket), timeout=90, what="the forwarded event")
        _wait_for(lambda: _queued(sqs, url) == 0, what="the message to be deleted")
        bridge.send_signal(stop)
        output = bridge.communicate(timeout=60)[0]
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.communicate()
    assert bridge.returncode == 0, output
    assert "bridge-sqs stopped" in output and "Traceback" not in output, output
    assert "event aodncore.s3.object.created posted for s3://" in output  # what it forwarded, as it went
