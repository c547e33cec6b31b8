"""S3 event parsing: AWS documentation samples, envelopes, and real moto notifications through SQS."""

import json

import pytest

from aodncore.ingest import LandingObject, parse_s3_event

# AWS "Event message structure" sample (values as in the documentation)
AWS_RECORDS = {"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-west-2",
    "eventTime": "1970-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
    "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
    "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG"},
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "testConfigRule",
           "bucket": {"name": "amzn-s3-demo-bucket", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                      "arn": "arn:aws:s3:::amzn-s3-demo-bucket"},
           "object": {"key": "IMOS/red+flower%2Bv2.jpg", "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                      "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko", "sequencer": "0055AED6DCD90281E5"}},
}]}

# AWS "EventBridge event message structure" sample
AWS_EVENTBRIDGE = {
    "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
    "source": "aws.s3", "account": "111122223333", "time": "2021-11-12T00:00:00Z", "region": "ca-central-1",
    "resources": ["arn:aws:s3:::amzn-s3-demo-bucket1"],
    "detail": {"version": "0", "bucket": {"name": "amzn-s3-demo-bucket1"},
               "object": {"key": "example-key", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                          "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
               "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "1.2.3.4",
               "reason": "PutObject"},
}

TEST_EVENT = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2014-10-13T15:57:02.089Z",
              "Bucket": "amzn-s3-demo-bucket", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwc"}


def _sns(message):
    return {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic", "Subject": "Amazon S3 Notification",
            "Message": json.dumps(message), "Timestamp": "2012-05-02T00:54:06.655Z", "SignatureVersion": "1"}


def test_aws_records_sample():
    (event,) = parse_s3_event(AWS_RECORDS)
    assert event.bucket == "amzn-s3-demo-bucket"
    assert event.key == "IMOS/red flower+v2.jpg"  # unquote_plus: '+' is a space, '%2B' a real plus
    assert event.size == 1024
    assert event.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert event.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert event.sequencer == "0055AED6DCD90281E5"
    assert event.event_name == "ObjectCreated:Put"
    assert event.event_time == "1970-01-01T00:00:00.000Z"
    assert event.uri == "s3://amzn-s3-demo-bucket/IMOS/red flower+v2.jpg"
    obj = LandingObject.from_s3_entry(event.bucket, event.to_landing_entry())
    assert (obj.uri, obj.fingerprint, obj.version_id) == (event.uri, event.etag, event.version_id)


def test_aws_eventbridge_sample_keeps_raw_key():
    (event,) = parse_s3_event(json.dumps(AWS_EVENTBRIDGE))
    assert (event.bucket, event.key, event.size) == ("amzn-s3-demo-bucket1", "example-key", 5)
    assert event.etag == "b1946ac92492d2347c6235b4d2611184"
    assert event.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert event.sequencer == "617f08299329d189"
    assert event.event_time == "2021-11-12T00:00:00Z"


def test_envelopes_sns_sqs_and_bytes():
    expected = parse_s3_event(AWS_RECORDS)
    assert parse_s3_event(_sns(AWS_RECORDS)) == expected                             # SNS HTTP notification
    assert parse_s3_event({"MessageId": "m1", "ReceiptHandle": "r", "Body": json.dumps(_sns(AWS_RECORDS))}) \
        == expected                                                                  # SQS <- SNS <- S3
    assert parse_s3_event({"MessageId": "m1", "Body": json.dumps(AWS_RECORDS)}) == expected
    assert parse_s3_event(json.dumps(AWS_RECORDS).encode()) == expected
    lambda_sqs = {"Records": [{"messageId": "1", "eventSource": "aws:sqs", "body": json.dumps(AWS_EVENTBRIDGE)}]}
    assert parse_s3_event(lambda_sqs)[0].key == "example-key"
    lambda_sns = {"Records": [{"EventSource": "aws:sns", "Sns": _sns(AWS_RECORDS)}]}
    assert parse_s3_event(lambda_sns) == expected


def test_test_event_removed_events_and_other_detail_types_yield_nothing():
    assert parse_s3_event(TEST_EVENT) == []
    assert parse_s3_event(_sns(TEST_EVENT)) == []
    removed = json.loads(json.dumps(AWS_RECORDS))
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert parse_s3_event(removed) == []
    deleted = dict(AWS_EVENTBRIDGE, **{"detail-type": "Object Deleted"})
    assert parse_s3_event(deleted) == []


def test_duplicates_are_reported_once():
    record = AWS_RECORDS["Records"][0]
    other = json.loads(json.dumps(record))
    other["s3"]["object"]["sequencer"] = "0055AED6DCD90281E6"  # a later write of the same key
    events = parse_s3_event({"Records": [record, record, other]})
    assert [e.sequencer for e in events] == ["0055AED6DCD90281E5", "0055AED6DCD90281E6"]


@pytest.mark.parametrize("payload, message", [
    ("not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    ([1, 2], "expected a JSON object"),
    ({"hello": "world"}, "top-level keys: hello"),
    ({"Records": "x"}, "'Records' is not a list"),
    ({"Records": [{"eventSource": "aws:dynamodb"}]}, "Records\\[0\\]: not an S3, SNS or SQS record"),
    ({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}, "s3.bucket.name"),
    ({"Type": "Notification", "TopicArn": "t", "Message": "{oops"}, "payload.Message is not valid JSON"),
    ({"Type": "SubscriptionConfirmation", "SubscribeURL": "https://x"}, "SubscriptionConfirmation"),
    (dict(AWS_EVENTBRIDGE, detail={}), "detail.bucket.name"),
])
def test_unrecognised_payloads_raise_clear_errors(payload, message):
    with pytest.raises(ValueError, match=message):
        parse_s3_event(payload)


# -- real moto output ---------------------------------------------------------------------------------------------

KEY = "IMOS/ANMN/NRS daily+temp (v1)/file #1.nc"


def _queue(moto_endpoint, name):
    import boto3

    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn


def _drain(sqs, url):
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if not got.get("Messages"):
            return bodies
        bodies.extend(got["Messages"])
        for message in got["Messages"]:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_moto_s3_to_sqs_notification(s3, moto_endpoint):
    sqs, url, arn = _queue(moto_endpoint, "landing-events")
    s3.create_bucket(Bucket="landing")
    s3.put_bucket_notification_configuration(Bucket="landing", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    s3.put_object(Bucket="landing", Key=KEY, Body=b"netcdf")
    etag = s3.head_object(Bucket="landing", Key=KEY)["ETag"].strip('"')

    events = [event for message in _drain(sqs, url) for event in parse_s3_event(message)]
    assert [(e.bucket, e.key, e.etag, e.size) for e in events] == [("landing", KEY, etag, 6)]
    assert events[0].event_name.startswith("ObjectCreated:")
    listed = LandingObject.from_s3_entry("landing", events[0].to_landing_entry())
    assert listed.uri == f"s3://landing/{KEY}"


def test_moto_multipart_upload_events_are_deduplicated(s3, moto_endpoint, tmp_path):
    from boto3.s3.transfer import TransferConfig

    sqs, url, arn = _queue(moto_endpoint, "multipart-events")
    s3.create_bucket(Bucket="landing")
    s3.put_bucket_notification_configuration(Bucket="landing", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (11 * 1024 * 1024))
    s3.upload_file(str(big), "landing", "big/big.bin",
                   Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    messages = _drain(sqs, url)
    combined = {"Records": [r for m in messages for r in json.loads(m["Body"]).get("Records", [])]}
    events = parse_s3_event(combined)
    assert len(events) == 1 and events[0].key == "big/big.bin" and events[0].etag.endswith("-3")


def test_moto_eventbridge_to_sqs(s3, moto_endpoint):
    import boto3

    sqs, url, arn = _queue(moto_endpoint, "eventbridge-events")
    events_client = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    events_client.put_rule(Name="landing-created", EventPattern=json.dumps(
        {"source": ["aws.s3"], "detail-type": ["Object Created"]}))
    events_client.put_targets(Rule="landing-created", Targets=[{"Id": "q", "Arn": arn}])
    s3.create_bucket(Bucket="landing")
    s3.put_bucket_notification_configuration(Bucket="landing", NotificationConfiguration={
        "EventBridgeConfiguration": {}})
    s3.put_object(Bucket="landing", Key=KEY, Body=b"netcdf")
    etag = s3.head_object(Bucket="landing", Key=KEY)["ETag"].strip('"')

    events = [event for message in _drain(sqs, url) for event in parse_s3_event(message)]
    assert [(e.bucket, e.key, e.etag) for e in events] == [("landing", KEY, etag)]
    assert events[0].version_id is None  # moto reports the version id "null" for unversioned buckets
