"""S3 notifications (produced by moto's S3 → SQS notification) become Prefect events, read back from a real API."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.prefect

BUCKET = "landing-events"
KEY = "IMOS/ANMN/NRS daily+temp (v1)/file #1.nc"  # spaces, '+' and '#' are URL-encoded in the notification


@pytest.fixture
def notified_queue(s3):
    """A landing bucket that notifies an SQS queue of created objects; yields (sqs client, queue URL)."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="landing-events", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    yield sqs, queue_url


def _bodies(sqs, queue_url) -> list[str]:
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [message["Body"] for message in messages]


def _read_events(name: str, keys: set[str], timeout: float = 30.0) -> list[dict]:
    """Events named ``name`` for the object ``keys`` from the API (the server persists events in batches: poll)."""
    from prefect.client.orchestration import get_client
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            response = client.request("POST", "/events/filter",
                                      json={"filter": {"event": {"name": [name]}}, "limit": 50})
            events = [e for e in response.json()["events"] if e["payload"]["key"] in keys]
            if {e["payload"]["key"] for e in events} >= keys or time.monotonic() > deadline:
                return events
            time.sleep(0.3)


def test_s3_notification_becomes_a_prefect_event_that_triggers_ingest_file(prefect_harness, s3, notified_queue):
    import jinja2
    from prefect.events.schemas.events import Resource

    from aodncore.prefect.triggers import S3_OBJECT_CREATED, emit_s3_events, ingest_file_trigger

    sqs, queue_url = notified_queue
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"landed bytes")
    etag = s3.head_object(Bucket=BUCKET, Key=KEY)["ETag"].strip('"')
    bodies = _bodies(sqs, queue_url)
    assert any("s3:TestEvent" in body for body in bodies)  # sent when the configuration was saved

    emitted = [event for body in bodies for event in emit_s3_events(body)]

    assert [(e.bucket, e.key, e.etag, e.size) for e in emitted] == [(BUCKET, KEY, etag, len(b"landed bytes"))]
    (event,) = _read_events(S3_OBJECT_CREATED, {KEY})
    assert event["payload"]["uri"] == f"s3://{BUCKET}/{KEY}"
    assert event["payload"]["etag"] == etag
    # the deployment trigger matches this event and renders the flow parameters from it
    trigger = ingest_file_trigger(BUCKET)
    assert trigger.parameters == {"source": "{{ event.payload.uri }}"}
    assert S3_OBJECT_CREATED in trigger.expect
    resource = Resource(event["resource"])
    assert trigger.match.matches(resource)
    assert ingest_file_trigger().match.matches(resource)
    assert not ingest_file_trigger("landing").match.matches(resource)  # another bucket, although a prefix of it
    rendered = {k: jinja2.Template(v).render(event=event) for k, v in trigger.parameters.items()}
    assert rendered == {"source": f"s3://{BUCKET}/{KEY}"}


def test_bridge_forwards_notifications_and_leaves_unparseable_messages(prefect_harness, s3, notified_queue):
    from aodncore.prefect.triggers import S3_OBJECT_CREATED, bridge_sqs_queue

    sqs, queue_url = notified_queue
    keys = ["bridge/a.nc", "bridge/b c.nc"]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    sqs.send_message(QueueUrl=queue_url, MessageBody="this is not an S3 notification")
    sqs.send_message(QueueUrl=queue_url, MessageBody='{"Records": [{"eventSource": "aws:s3"}]}')

    forwarded = bridge_sqs_queue(queue_url, wait_seconds=0, max_batches=1)

    assert forwarded == len(keys)
    left = sorted(_bodies(sqs, queue_url))  # visibility timeout 0: everything not deleted is visible again
    assert left == sorted(['{"Records": [{"eventSource": "aws:s3"}]}', "this is not an S3 notification"])
    events = _read_events(S3_OBJECT_CREATED, set(keys))
    assert sorted(e["payload"]["key"] for e in events) == sorted(keys)
