"""S3 events → Prefect events → ``ingest-file`` flow runs.

Prefect's open-source server has no webhooks, so S3 notifications reach a deployment in two hops:

1. a bridge turns each S3 notification (direct, via SNS or SQS, or EventBridge "Object Created") into a Prefect
   event named :data:`S3_OBJECT_CREATED` with the object's ``uri``, ``etag`` and ``size`` in its payload —
   :func:`emit_s3_events` (for one payload) or :func:`bridge_sqs_queue` (long-polls an SQS queue and deletes a
   message only after its events were emitted: at-least-once end to end);
2. the ``ingest-file`` deployment carries :func:`ingest_file_trigger`, a ``DeploymentEventTrigger`` that starts a
   run with ``source = event.payload.uri`` for every such event.

Duplicate deliveries are harmless: the ingest ledger skips content that was already ingested.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prefect.events import DeploymentEventTrigger, emit_event

from aodncore.ingest.events import S3ObjectEvent, parse_s3_event

__all__ = ["S3_OBJECT_CREATED", "bridge_sqs_queue", "emit_s3_events", "event_payload", "ingest_file_trigger"]

logger = logging.getLogger(__name__)

S3_OBJECT_CREATED = "aodncore.s3.object.created"
"""Name of the Prefect event emitted for every landed S3 object."""


def event_payload(event: S3ObjectEvent) -> dict[str, Any]:
    """The Prefect event payload describing one landed object."""
    return {
        "uri": f"s3://{event.bucket}/{event.key}",
        "bucket": event.bucket,
        "key": event.key,
        "etag": event.etag,
        "size": event.size,
        "version_id": event.version_id,
        "sequencer": event.sequencer,
    }


def emit_s3_events(payload: dict[str, Any] | str | bytes) -> list[S3ObjectEvent]:
    """Emit one :data:`S3_OBJECT_CREATED` Prefect event per object in an S3 notification; return the objects."""
    events = parse_s3_event(payload)
    for event in events:
        emitted = emit_event(
            event=S3_OBJECT_CREATED,
            resource={"prefect.resource.id": f"s3.{event.bucket}.{event.key}", "s3.bucket": event.bucket},
            payload=event_payload(event),
        )
        if emitted is None:
            raise RuntimeError("Prefect events are disabled; cannot forward S3 notifications")
        logger.info("event %s emitted for s3://%s/%s", S3_OBJECT_CREATED, event.bucket, event.key)
    return events


def ingest_file_trigger(bucket: str | None = None) -> DeploymentEventTrigger:
    """A trigger starting ``ingest-file`` for each landed object (optionally only those of one bucket)."""
    # match the bucket by its own label: bucket names may contain dots, so "s3.<bucket>.*" would also match
    # the objects of bucket "<bucket>.other"
    match = {"prefect.resource.id": "s3.*"}
    if bucket:
        match["s3.bucket"] = bucket
    return DeploymentEventTrigger(
        expect={S3_OBJECT_CREATED},
        match=match,
        parameters={"source": "{{ event.payload.uri }}"},
    )


def bridge_sqs_queue(
    queue_url: str, *, sqs_client: Any = None, wait_seconds: int = 20, max_batches: int | None = None
) -> int:
    """Forward S3 notifications from an SQS queue as Prefect events; returns the number of objects forwarded.

    A message is deleted only after its events were emitted; one that cannot be parsed is logged and left for
    the queue's redrive policy (dead-letter queue). ``max_batches`` bounds the loop (``None`` = forever).
    """
    import boto3

    client = sqs_client or boto3.client("sqs")
    forwarded = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        response = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        for message in response.get("Messages", []):
            try:
                forwarded += len(emit_s3_events(message["Body"]))
            except ValueError as error:
                logger.error("SQS message %s is not an S3 notification: %s", message.get("MessageId"), error)
                continue
            client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return forwarded


def sources_from_events(events: Iterable[S3ObjectEvent]) -> list[str]:
    """The ``s3://`` URIs of the given events, in order, without duplicates."""
    seen: dict[str, None] = {}
    for event in events:
        seen.setdefault(f"s3://{event.bucket}/{event.key}", None)
    return list(seen)
