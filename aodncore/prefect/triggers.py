"""S3 events → Prefect events → ``ingest-file`` flow runs.

Prefect's open-source server has no webhooks, so S3 notifications reach a deployment in two hops:

1. a bridge turns each S3 notification (direct, via SNS or SQS, or EventBridge "Object Created") into a Prefect
   event named :data:`S3_OBJECT_CREATED` with the object's ``uri``, ``etag`` and ``size`` in its payload and the
   bucket and key as resource labels (``s3.bucket``, ``s3.key``) — :func:`post_s3_events` (a synchronous
   ``POST /api/events`` whose failure raises), :func:`emit_s3_events` (queued through Prefect's events worker),
   or :func:`bridge_sqs_queue` (long-polls an SQS queue, posts synchronously with retries, and deletes a message
   only after the server accepted its events: at-least-once end to end; with the server down the messages stay);
2. the ``ingest-file`` deployment carries :func:`ingest_file_trigger`, a ``DeploymentEventTrigger`` that starts a
   run with ``source = event.payload.uri`` for every such event under its bucket and prefix.

Duplicate deliveries are harmless: an event's id is derived from the S3 object version (bucket, key, version or
ETag, sequencer), and the ingest record skips content that was already ingested or is being ingested.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from prefect.events import DeploymentEventTrigger, emit_event

from aodncore.ingest.events import S3ObjectEvent, parse_s3_event

__all__ = [
    "S3_OBJECT_CREATED",
    "bridge_sqs_queue",
    "emit_s3_events",
    "event_payload",
    "ingest_file_trigger",
    "post_s3_events",
    "split_s3_source",
]

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


def _resource(event: S3ObjectEvent) -> dict[str, str]:
    return {"prefect.resource.id": f"s3.{event.bucket}.{event.key}", "s3.bucket": event.bucket, "s3.key": event.key}


def _event_id(event: S3ObjectEvent) -> uuid.UUID:
    """The same id for every delivery of one S3 notification (Prefect stores and triggers on an id once)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "aodncore:" + "\x1f".join(str(part) for part in event.dedupe_key))


def post_s3_events(payload: dict[str, Any] | str | bytes, client: Any = None) -> list[S3ObjectEvent]:
    """Send one :data:`S3_OBJECT_CREATED` event per object of an S3 notification to the Prefect API *now*, in one
    ``POST /api/events``; raises if the server does not accept them. Returns the objects.

    ``client`` is a synchronous Prefect client (default: one for the configured ``PREFECT_API_URL``).
    """
    from prefect.events import Event

    events = parse_s3_event(payload)
    if not events:
        return events
    body = [
        Event(event=S3_OBJECT_CREATED, resource=_resource(event), payload=event_payload(event),
              id=_event_id(event)).model_dump(mode="json")
        for event in events
    ]
    if client is None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as own:
            own.request("POST", "/events", json=body)
    else:
        client.request("POST", "/events", json=body)
    for event in events:
        logger.info("event %s posted for s3://%s/%s", S3_OBJECT_CREATED, event.bucket, event.key)
    return events


def emit_s3_events(payload: dict[str, Any] | str | bytes) -> list[S3ObjectEvent]:
    """Emit one :data:`S3_OBJECT_CREATED` Prefect event per object in an S3 notification; return the objects.

    The events are queued for Prefect's background events worker (delivery is not confirmed); use
    :func:`post_s3_events` when the caller must know the server has them.
    """
    events = parse_s3_event(payload)
    for event in events:
        emitted = emit_event(
            event=S3_OBJECT_CREATED,
            resource=_resource(event),
            payload=event_payload(event),
            id=_event_id(event),
        )
        if emitted is None:
            raise RuntimeError("Prefect events are disabled; cannot forward S3 notifications")
        logger.info("event %s emitted for s3://%s/%s", S3_OBJECT_CREATED, event.bucket, event.key)
    return events


def split_s3_source(source: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of an ``s3://bucket/prefix`` landing source."""
    bucket, _, prefix = source.removeprefix("s3://").partition("/")
    if not source.startswith("s3://") or not bucket:
        raise ValueError(f"{source!r} is not an s3://bucket/prefix source")
    return bucket, prefix


def ingest_file_trigger(bucket: str | None = None, prefix: str = "") -> DeploymentEventTrigger:
    """A trigger starting ``ingest-file`` for each object landed in ``bucket`` under ``prefix`` (no bucket: any).

    The bucket and key are matched by their own resource labels: bucket names may contain dots, so a pattern
    on the resource id (``s3.<bucket>.*``) would also match the objects of bucket ``<bucket>.other``.
    """
    match = {"prefect.resource.id": "s3.*"}
    if bucket:
        match["s3.bucket"] = bucket
        if prefix:
            match["s3.key"] = f"{prefix}*"
    elif prefix:
        raise ValueError("a key prefix needs a bucket")
    return DeploymentEventTrigger(
        expect={S3_OBJECT_CREATED},
        match=match,
        parameters={"source": "{{ event.payload.uri }}"},
    )


def _post_with_retries(body: str, client: Any, attempts: int, max_wait: float) -> list[S3ObjectEvent]:
    import tenacity

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.5, max=max_wait),
        retry=tenacity.retry_if_not_exception_type(ValueError),  # unparseable: never retried
        before_sleep=lambda state: logger.warning(
            "Prefect did not accept the events (attempt %d): %s", state.attempt_number, state.outcome.exception()),
        reraise=True,
    )
    return retrying(post_s3_events, body, client)


def bridge_sqs_queue(
    queue_url: str,
    *,
    sqs_client: Any = None,
    wait_seconds: int = 20,
    max_batches: int | None = None,
    prefect_client: Any = None,
    post_attempts: int = 5,
    max_retry_wait: float = 10.0,
) -> int:
    """Forward S3 notifications from an SQS queue as Prefect events; returns the number of objects forwarded.

    Each message's events are posted synchronously (retried ``post_attempts`` times with exponential back-off)
    and the message is deleted only after the Prefect server accepted them: if the server stays unreachable the
    error is raised and the message (and every later one) stays on the queue, to be received again after its
    visibility timeout. A message that cannot be parsed is logged and left for the queue's redrive policy
    (dead-letter queue). ``max_batches`` bounds the loop (``None`` = forever).
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
                events = _post_with_retries(message["Body"], prefect_client, post_attempts, max_retry_wait)
            except ValueError as error:
                logger.error("SQS message %s is not an S3 notification: %s", message.get("MessageId"), error)
                continue
            client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            forwarded += len(events)
    return forwarded


def sources_from_events(events: Iterable[S3ObjectEvent]) -> list[str]:
    """The ``s3://`` URIs of the given events, in order, without duplicates."""
    seen: dict[str, None] = {}
    for event in events:
        seen.setdefault(f"s3://{event.bucket}/{event.key}", None)
    return list(seen)
