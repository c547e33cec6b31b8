"""Turn S3 "object created" notifications into records the ingest flows can act on.

Accepted payloads (a dict, or its JSON text as ``str``/``bytes``):

(a) an S3 event notification ``{"Records": [...]}`` (as delivered to SQS, SNS or Lambda); keys are URL-encoded
    form-style there and are decoded with :func:`urllib.parse.unquote_plus`; only ``ObjectCreated:*`` records are
    kept;
(b) an SNS envelope (``{"Type": "Notification", "Message": "<json of (a)>", ...}``, as delivered to SQS or to an
    HTTP subscriber), or a Lambda-style ``{"Records": [{"EventSource": "aws:sns", "Sns": {...}}]}``;
(c) an SQS message (``{"Body": ...}`` / ``{"body": ...}``, or a Lambda SQS batch ``{"Records": [{"eventSource":
    "aws:sqs", "body": ...}]}``) whose body holds (a), (b) or (d);
(d) an EventBridge event with ``detail-type: "Object Created"`` (the key is not URL-encoded there; the ETag is
    ``detail.object.etag``, or ``eTag`` as sent by moto).

The S3 test message sent when a notification configuration is saved (``s3:TestEvent``) yields no records.
Duplicates (same bucket, key, version/ETag and sequencer) are reported once: S3, SNS, SQS and EventBridge all
deliver at least once. Anything else raises :class:`ValueError` naming what was wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

__all__ = ["S3ObjectEvent", "parse_s3_event"]


@dataclass(frozen=True)
class S3ObjectEvent:
    """One object-created event, normalised across the notification formats."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: str | None = None
    event_name: str | None = None

    @property
    def uri(self) -> str:
        """``s3://bucket/key`` (the ``LandingObject.uri`` of the object)."""
        return f"s3://{self.bucket}/{self.key}"

    @property
    def dedupe_key(self) -> tuple[str, str, str | None, str | None]:
        return (self.bucket, self.key, self.version_id or self.etag, self.sequencer)

    def to_landing_entry(self) -> dict[str, Any]:
        """A ``list_objects_v2``-style entry for :meth:`LandingObject.from_s3_entry`."""
        entry: dict[str, Any] = {"Key": self.key, "Size": self.size or 0, "ETag": self.etag or ""}
        if self.version_id:
            entry["VersionId"] = self.version_id
        return entry


def _load(payload: dict[str, Any] | str | bytes | bytearray, what: str) -> Any:
    if isinstance(payload, bytes | bytearray):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{what} is not UTF-8 text: {exc}") from None
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what} is not valid JSON: {exc}") from None
    return payload


def _clean_etag(value: Any) -> str | None:
    return str(value).strip('"') if value else None


def _clean_version(value: Any) -> str | None:
    # moto (and S3 for unversioned buckets in EventBridge) reports the version id "null"
    return None if value in (None, "", "null") else str(value)


def _from_s3_record(record: dict[str, Any], where: str) -> S3ObjectEvent | None:
    event_name = record.get("eventName")
    if not isinstance(event_name, str) or not event_name:
        # malformed, not merely another event type: report it rather than let a bridge drop the message
        raise ValueError(f"{where}: S3 record without eventName")
    if not event_name.startswith("ObjectCreated:"):
        return None
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        raw_key = s3["object"]["key"]
    except (KeyError, TypeError):
        raise ValueError(f"{where}: S3 record without s3.bucket.name / s3.object.key") from None
    obj = s3["object"]
    return S3ObjectEvent(
        bucket=bucket,
        key=unquote_plus(raw_key),
        size=obj.get("size"),
        etag=_clean_etag(obj.get("eTag") or obj.get("etag")),
        version_id=_clean_version(obj.get("versionId")),
        sequencer=obj.get("sequencer"),
        event_time=record.get("eventTime"),
        event_name=event_name,
    )


def _from_eventbridge(event: dict[str, Any], where: str) -> list[S3ObjectEvent]:
    if event.get("detail-type") != "Object Created":
        return []
    detail = event.get("detail")
    try:
        bucket = detail["bucket"]["name"]
        obj = detail["object"]
        key = obj["key"]
    except (KeyError, TypeError):
        raise ValueError(f"{where}: EventBridge 'Object Created' event without detail.bucket.name / "
                         "detail.object.key") from None
    return [S3ObjectEvent(
        bucket=bucket,
        key=key,
        size=obj.get("size"),
        etag=_clean_etag(obj.get("etag") or obj.get("eTag")),
        version_id=_clean_version(obj.get("version-id")),
        sequencer=obj.get("sequencer"),
        event_time=event.get("time"),
        event_name=f"Object Created:{detail.get('reason', '')}".rstrip(":"),
    )]


def _parse(data: Any, where: str, depth: int) -> list[S3ObjectEvent]:
    if depth > 4:
        raise ValueError(f"{where}: envelopes nested too deeply")
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")

    if data.get("Event") == "s3:TestEvent":
        return []

    if "Records" in data:
        records = data["Records"]
        if not isinstance(records, list):
            raise ValueError(f"{where}: 'Records' is not a list")
        events: list[S3ObjectEvent] = []
        for index, record in enumerate(records):
            here = f"{where} Records[{index}]"
            if not isinstance(record, dict):
                raise ValueError(f"{here}: not an object")
            source = record.get("eventSource") or record.get("EventSource")
            if source == "aws:s3" or "s3" in record:
                if (found := _from_s3_record(record, here)) is not None:
                    events.append(found)
            elif source == "aws:sns" and isinstance(record.get("Sns"), dict):
                events.extend(_parse(record["Sns"], f"{here}.Sns", depth + 1))
            elif source == "aws:sqs" and "body" in record:
                events.extend(_parse(_load(record["body"], f"{here}.body"), f"{here}.body", depth + 1))
            else:
                raise ValueError(f"{here}: not an S3, SNS or SQS record (eventSource={source!r})")
        return events

    if "detail-type" in data and data.get("source") == "aws.s3":
        return _from_eventbridge(data, where)

    if "Message" in data and ("TopicArn" in data or data.get("Type") == "Notification"):
        return _parse(_load(data["Message"], f"{where}.Message"), f"{where}.Message", depth + 1)

    for body_key in ("Body", "body"):
        if body_key in data and ("MessageId" in data or "messageId" in data or "ReceiptHandle" in data
                                 or "receiptHandle" in data or len(data) == 1):
            return _parse(_load(data[body_key], f"{where}.{body_key}"), f"{where}.{body_key}", depth + 1)

    if data.get("Type") == "SubscriptionConfirmation":
        raise ValueError(f"{where}: an SNS SubscriptionConfirmation, not a notification (confirm the "
                         "subscription via its SubscribeURL)")
    keys = ", ".join(sorted(map(str, data))[:8]) or "none"
    raise ValueError(f"{where}: not an S3 notification, SNS envelope, SQS message or EventBridge S3 event "
                     f"(top-level keys: {keys})")


def parse_s3_event(payload: dict[str, Any] | str | bytes) -> list[S3ObjectEvent]:
    """Parse one notification payload into object-created events (deduplicated, in payload order)."""
    events = _parse(_load(payload, "payload"), "payload", 0)
    seen: set[tuple[str, str, str | None, str | None]] = set()
    unique: list[S3ObjectEvent] = []
    for event in events:
        if event.dedupe_key not in seen:
            seen.add(event.dedupe_key)
            unique.append(event)
    return unique
