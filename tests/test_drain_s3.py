"""Draining already-ingested objects from an S3 landing prefix (moto's real HTTP server): the removals run on a
few threads; the outcomes — notes, order, what is left — are the same as removing one object after the other."""

from __future__ import annotations

import pytest

from aodncore.ingest import FileOutcome, LandingObject, list_landing
from aodncore.ingest.configure import LEDGER_FILE_NAME
from aodncore.ingest.ledger import IngestLedger

pytestmark = pytest.mark.prefect

BUCKET = "drain-landing"


@pytest.fixture
def s3(moto_endpoint):
    import boto3

    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket=BUCKET)
    return client


def _already_ingested(s3, base, prefix: str, count: int) -> list[LandingObject]:
    for index in range(count):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}f{index:03d}.nc", Body=f"content {index}".encode())
    objects = list(list_landing(f"s3://{BUCKET}/{prefix}"))
    base.mkdir(parents=True, exist_ok=True)
    with IngestLedger(base / LEDGER_FILE_NAME) as ledger:
        ledger.record_many([(obj, FileOutcome(source=obj.uri, name=obj.name, status="published"))
                            for obj in objects])
    return objects


def _drain(s3, tmp_path, prefix: str, monkeypatch, threads: int) -> list[dict]:
    from aodncore.ingest import result as run_result
    from aodncore.prefect import flows

    base = tmp_path / f"base-{prefix.strip('/')}"
    objects = _already_ingested(s3, base, prefix, 30)
    monkeypatch.setattr(flows, "DRAIN_THREADS", threads)
    monkeypatch.setattr(run_result, "LISTED_PER_REASON", 100)  # list every one, to compare them
    result = flows.ingest_landing(f"s3://{BUCKET}/{prefix}", base_dir=str(base), return_state=True
                                  ).result(raise_on_failure=False)
    assert result["counts"] == {"skipped": 30} and result["truncated"] is False
    outcomes = result["outcomes"]
    skipped = [o for o in outcomes if o["status"] == "skipped"]
    assert [o["source"] for o in outcomes] == [obj.uri for obj in objects]  # plan (listing) order
    left = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    assert left == []  # drained
    return [{**o, "source": o["source"].replace(prefix, "<prefix>")} for o in skipped]


def test_concurrent_drain_gives_the_outcomes_of_a_sequential_one(prefect_harness, s3, tmp_path, monkeypatch):
    concurrent = _drain(s3, tmp_path, "threads/", monkeypatch, threads=8)
    sequential = _drain(s3, tmp_path, "one-by-one/", monkeypatch, threads=0)
    assert concurrent == sequential
    assert {o["note"] for o in concurrent} == {"already ingested (same content); removed from the landing area"}


def test_a_replaced_object_is_not_drained(prefect_harness, s3, tmp_path, monkeypatch):
    """The listed content is confirmed (HEAD) before each removal, also on the drain threads."""
    from aodncore.ingest import runner
    from aodncore.prefect import flows

    base = tmp_path / "base"
    (replaced, *others) = _already_ingested(s3, base, "replaced/", 10)
    real_dispose = runner.dispose_skipped

    def replace_then_dispose(obj, settings, *args, **kwargs):
        if obj.uri == replaced.uri:  # a newer upload lands between the listing and the removal
            s3.put_object(Bucket=BUCKET, Key=obj.key, Body=b"a newer upload")
        return real_dispose(obj, settings, *args, **kwargs)

    monkeypatch.setattr(flows, "dispose_skipped", replace_then_dispose)
    outcomes = flows.ingest_landing(f"s3://{BUCKET}/replaced/", base_dir=str(base), return_state=True
                                    ).result(raise_on_failure=False)["outcomes"]
    notes = {o["source"]: o["note"] for o in outcomes}
    assert "changed or vanished meanwhile" in notes[replaced.uri]
    left = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="replaced/")["Contents"]]
    assert left == [replaced.key]
    assert s3.get_object(Bucket=BUCKET, Key=replaced.key)["Body"].read() == b"a newer upload"
