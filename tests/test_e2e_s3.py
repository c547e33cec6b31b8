"""Acceptance test of the ingest path, end to end on a real S3 endpoint (moto server) and a real Prefect API.

A landing prefix holds a mix of real IMOS files: good ones, broken ones, zips of good files, zips holding bad
files and a hostile zip. After a run (through the CLI, or the ``ingest_landing`` flow directly):

* every good file is published byte-identical at its IMOS destination key in the upload bucket;
* every broken landing object is in the error bucket (original bytes) beside a reason sidecar;
* the landing prefix keeps exactly the objects whose processing did not finish (system errors);
* every landing object is accounted for — published, quarantined or still in landing: nothing is lost;
* a re-run skips content that was already ingested.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ingest_helpers import (  # noqa: F401 - restore_process_state is a fixture
    BAD_NC,
    BAD_PROFILE,
    EXPLODE_MARKER,
    GOOD_FILES,
    HANDLER_PREFIX,
    IMOS_DIR,
    build_zip,
    expected_key,
    hostile_zip,
    restore_process_state,  # noqa: F401 - a fixture
)

from aodncore.ingest.quarantine import REASON_SUFFIX

pytestmark = pytest.mark.prefect

LANDING, PUBLISHED, ERRORS = "landing", "published", "errors"
UPLOAD_URI = f"s3://{PUBLISHED}/imos-data"
ERROR_URI = f"s3://{ERRORS}/quarantine"
PIPELINE = "ImosGenericHandler"

GOOD_SINGLE = list(GOOD_FILES)[:3]
GOOD_ZIPPED = list(GOOD_FILES)[3:5]


@dataclass
class Landing:
    """What a test put under the landing prefix."""

    prefix: str
    objects: dict[str, bytes] = field(default_factory=dict)  # key -> bytes
    good: dict[str, str] = field(default_factory=dict)  # published key -> name of the real file it must equal
    broken: set[str] = field(default_factory=set)  # landing keys that must be quarantined
    doomed: set[str] = field(default_factory=set)  # landing keys that must stay (system error)

    def uri(self) -> str:
        return f"s3://{LANDING}/{self.prefix}"


def _put(s3, landing: Landing, name: str, data: bytes) -> str:
    key = f"{landing.prefix}{name}"
    s3.put_object(Bucket=LANDING, Key=key, Body=data)
    landing.objects[key] = data
    return key


def _land_mix(s3, tmp_path: Path, prefix: str, *, doomed: bool = False) -> Landing:
    for bucket in (LANDING, PUBLISHED, ERRORS):
        if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=bucket)
    landing = Landing(prefix)
    for index, name in enumerate(GOOD_SINGLE):
        sub = "deeper/" if index == 0 else ""  # keys below the prefix are found too
        _put(s3, landing, sub + name, (IMOS_DIR / name).read_bytes())
        landing.good[expected_key(name)] = name
    bundle = build_zip(tmp_path / "bundle.zip", {name: (IMOS_DIR / name).read_bytes() for name in GOOD_ZIPPED})
    _put(s3, landing, "bundle.zip", bundle.read_bytes())
    landing.good.update({expected_key(name): name for name in GOOD_ZIPPED})
    for name in (BAD_NC, BAD_PROFILE, "good_and_bad.zip", "images_and_nc.zip"):
        landing.broken.add(_put(s3, landing, name, (IMOS_DIR / name).read_bytes()))
    landing.broken.add(_put(s3, landing, "evil.zip", hostile_zip(tmp_path / "evil.zip").read_bytes()))
    if doomed:
        name = f"IMOS_ANMN_{EXPLODE_MARKER}_20170201T000000Z_NRSDAR_FV01.nc"
        landing.doomed.add(_put(s3, landing, name, (IMOS_DIR / GOOD_SINGLE[0]).read_bytes()))
    return landing


def _keys(s3, bucket: str, prefix: str = "") -> list[str]:
    paginator = s3.get_paginator("list_objects_v2")
    return [entry["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for entry in
            page.get("Contents", [])]


def _body(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _quarantine_records(s3, pipeline: str) -> dict[str, tuple[dict, bytes]]:
    """Landing URI -> (reason sidecar, stored bytes) for everything in the error bucket."""
    records = {}
    for key in _keys(s3, ERRORS):
        if key.endswith(REASON_SUFFIX):
            reason = json.loads(_body(s3, ERRORS, key))
            stored_key = reason["stored_as"].removeprefix(f"s3://{ERRORS}/")
            assert stored_key.startswith(f"quarantine/{pipeline}/"), stored_key
            assert stored_key.rsplit("/", 1)[-1] == reason["name"]  # the copy keeps its name and extension
            records[reason["source"]] = (reason, _body(s3, ERRORS, stored_key))
    return records


def _assert_nothing_lost(s3, landing: Landing, pipeline: str = PIPELINE) -> None:
    # every good file published byte-identical at its expected key
    published = set(_keys(s3, PUBLISHED))
    for key, name in landing.good.items():
        assert f"imos-data/{key}" in published, key
        assert _body(s3, PUBLISHED, f"imos-data/{key}") == (IMOS_DIR / name).read_bytes()
    # nothing else was published (the broken zips did not publish their good members)
    assert published == {f"imos-data/{key}" for key in landing.good}
    # every broken object in the error store, original bytes and reason
    records = _quarantine_records(s3, pipeline)
    assert set(records) == {f"s3://{LANDING}/{key}" for key in landing.broken}
    for key in landing.broken:
        reason, data = records[f"s3://{LANDING}/{key}"]
        assert data == landing.objects[key]
        assert reason["error_type"] == "user" and reason["reason"] and reason["error_class"]
        assert reason["fingerprint"]
    # landing keeps exactly what did not finish
    remaining = set(_keys(s3, LANDING, landing.prefix))
    assert remaining == landing.doomed
    for key in remaining:
        assert _body(s3, LANDING, key) == landing.objects[key]
    # and every landing object is accounted for
    good_sources = set(landing.objects) - landing.broken - landing.doomed
    assert good_sources | landing.broken | landing.doomed == set(landing.objects)


def _read_all_logs(client, log_filter) -> list:
    """Every log of the filter (the API returns at most a page per request)."""
    logs: list = []
    while page := client.read_logs(log_filter=log_filter, limit=200, offset=len(logs)):
        logs.extend(page)
    return logs


@pytest.mark.usefixtures("restore_process_state")
def test_cli_ingests_an_s3_landing_prefix_and_loses_nothing(prefect_harness, s3, tmp_path, capsys):
    from aodncore.cli import main

    landing = _land_mix(s3, tmp_path, "incoming/")
    argv = ["ingest", landing.uri(), "--base-dir", str(tmp_path / "base"), "--upload-uri", UPLOAD_URI,
            "--error-uri", ERROR_URI, "--check", "cf:1.6", "--workers", "2"]

    assert main(argv) == 1  # something was quarantined
    _assert_nothing_lost(s3, landing)
    summary = capsys.readouterr().out
    assert f"{len(landing.objects) - len(landing.broken)} published" in summary
    assert f"{len(landing.broken)} quarantined" in summary

    # the same content lands again, with one new good file: the old one is skipped, the new one published
    again_key = _put(s3, landing, GOOD_SINGLE[1], (IMOS_DIR / GOOD_SINGLE[1]).read_bytes())
    published_before = s3.head_object(Bucket=PUBLISHED, Key=f"imos-data/{expected_key(GOOD_SINGLE[1])}")
    new_name = ("IMOS_ANMN-NRS_BCKOSTUZ_20081120T081531Z_NRSROT_FV01_NRSROT-0811-WQM-21_END-20081120T171535Z"
                "_C-20190418T000000Z.nc")
    _put(s3, landing, new_name, (IMOS_DIR / new_name).read_bytes())

    assert main(argv) == 0  # all published (or already ingested)
    summary = capsys.readouterr().out
    assert "1 published" in summary and "1 skipped" in summary
    new_key = f"imos-data/IMOS/ANMN/NRS/{new_name}"
    assert _body(s3, PUBLISHED, new_key) == (IMOS_DIR / new_name).read_bytes()
    published_after = s3.head_object(Bucket=PUBLISHED, Key=f"imos-data/{expected_key(GOOD_SINGLE[1])}")
    assert published_after["LastModified"] == published_before["LastModified"]  # not published twice
    # already-ingested content leaves the landing area once its ETag is confirmed
    assert again_key not in set(_keys(s3, LANDING, landing.prefix))
    assert set(_keys(s3, LANDING, landing.prefix)) == set()


def test_flow_ingests_an_s3_landing_prefix_with_logs_and_artifact(prefect_harness, s3, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    from aodncore.prefect.flows import ingest_landing

    landing = _land_mix(s3, tmp_path, "flow/", doomed=True)

    state = ingest_landing(landing.uri(), handler=f"{HANDLER_PREFIX}:SelectiveExplodingHandler",
                           base_dir=str(tmp_path / "base"), upload_uri=UPLOAD_URI, error_uri=ERROR_URI,
                           checks=["cf:1.6"], workers=2, return_state=True)

    assert state.is_failed(), state  # a file hit a system error: the run says so, with the counts
    assert state.message == f"ingest-landing: 1 of {len(landing.objects)} failed, {len(landing.broken)} quarantined, " \
        f"{len(landing.objects) - len(landing.broken) - 1} published"
    outcomes = state.result(raise_on_failure=False)["outcomes"]
    statuses = {o["source"].removeprefix(f"s3://{LANDING}/"): o["status"] for o in outcomes}
    assert set(statuses) == set(landing.objects)
    assert {k for k, s in statuses.items() if s == "quarantined"} == landing.broken
    assert {k for k, s in statuses.items() if s == "failed"} == landing.doomed
    good_keys = set(landing.objects) - landing.broken - landing.doomed
    assert {k for k, s in statuses.items() if s == "published"} == good_keys
    _assert_nothing_lost(s3, landing, pipeline="SelectiveExplodingHandler")

    flow_run_id = state.state_details.flow_run_id
    names = [key.rsplit("/", 1)[-1] for key in landing.objects]
    APILogWorker.drain_all(timeout=30)  # log records are shipped in the background: make sure they reached the API
    with get_client(sync_client=True) as client:
        for _ in range(50):  # and that the server stored them
            logs = _read_all_logs(client, LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            text = "\n".join(log.message for log in logs if "handler result for input_file" in log.message)
            if all(name in text for name in names):
                break
            time.sleep(0.2)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    handler_lines = [log.message for log in logs if "handler result for input_file" in log.message]
    for name in names:  # each file's handler record reached this flow run's logs
        assert any(name in line for line in handler_lines), name
    assert any(log.name.startswith("aodncore") for log in logs)
    tables = [a for a in artifacts if a.type == "table"]
    assert len(tables) == 1
    rows = tables[0].data if isinstance(tables[0].data, list) else json.loads(tables[0].data)
    assert sorted(row["name"] for row in rows) == sorted(key.rsplit("/", 1)[-1] for key in landing.objects)
    # one markdown report for the run names every failed and quarantined file (fewer than 20: all in full)
    reports = [a for a in artifacts if a.type == "markdown"]
    assert len(reports) == 1
    refused = landing.broken | landing.doomed
    assert reports[0].data.startswith(f"# {len(refused)} file(s) refused or failed")
    for key in refused:
        assert f"`{key.rsplit('/', 1)[-1]}`" in reports[0].data, key


def test_ingest_file_takes_exactly_the_object_an_event_names(prefect_harness, s3, tmp_path):
    """An S3 event names one key; keys that merely start with it (``x.nc.extra``) are not ingested, and URL syntax
    characters in keys (``#``, ``?``, spaces, ``+``) are part of the key."""
    from aodncore.prefect.flows import ingest_file

    for bucket in (LANDING, PUBLISHED, ERRORS):
        s3.create_bucket(Bucket=bucket)
    good = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc"
    name = good.replace(".nc", " #1+?.nc")
    key = f"single/{name}"
    data = (IMOS_DIR / good).read_bytes()
    s3.put_object(Bucket=LANDING, Key=key, Body=data)
    s3.put_object(Bucket=LANDING, Key=key + ".extra", Body=b"another upload")

    outcome = ingest_file(f"s3://{LANDING}/{key}", base_dir=str(tmp_path / "base"),
                          upload_uri=UPLOAD_URI, error_uri=ERROR_URI, checks=["cf:1.6"])

    assert outcome["status"] == "published", outcome
    assert _body(s3, PUBLISHED, f"imos-data/IMOS/SOOP/XBT/{name}") == data
    assert _keys(s3, LANDING) == [key + ".extra"]
    assert _body(s3, LANDING, key + ".extra") == b"another upload"
