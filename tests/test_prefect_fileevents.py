"""``aodncore.prefect.fileevents``: credentials in URLs never reach an event, other text is kept; what the emitter
posts (the general path's documents, serialised as before), when, and its interval setting."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from aodncore.ingest.outcome import FAILED, PUBLISHED, QUARANTINED, SKIPPED, FileOutcome
from aodncore.ingest.sources import LandingObject
from aodncore.limits import FILE_EVENTS_FLUSH_SECONDS
from aodncore.prefect.fileevents import FLUSH_SECONDS_ENV, FileEventEmitter, _document, file_event, flush_seconds


def _obj() -> LandingObject:
    return LandingObject.from_s3_entry("landing", {"Key": "in/a.nc", "Size": 5, "ETag": '"abc"'})


def test_credentials_in_urls_are_redacted_and_plain_text_is_kept():
    outcome = FileOutcome(source="s3://landing/in/a.nc", name="a.nc", status=FAILED,
                          error="upload to sftp://bob:pa55@host/data failed; see user@example.org " + "x" * 3000,
                          error_uri="sftp://eve:s3cr3t@host/errors/a.nc")
    event = file_event(_obj(), outcome, handler="H", flow_run_id="run-1")
    payload = event["payload"]
    assert payload["error"].startswith("upload to sftp://***@host/data failed; see user@example.org xxx")
    assert len(payload["error"]) == 2000 and "pa55" not in str(event) and "s3cr3t" not in str(event)
    assert payload["error_uri"] == "sftp://***@host/errors/a.nc"


def test_text_without_an_at_sign_is_only_truncated():
    outcome = FileOutcome(source="s3://landing/in/a.nc", name="a.nc", status=PUBLISHED,
                          destination="file:///data/published/IMOS/a.nc")
    event = file_event(_obj(), outcome, handler="H")
    assert event["payload"]["destination"] == "file:///data/published/IMOS/a.nc"
    assert event["payload"]["error"] == "" and event["payload"]["error_uri"] == ""
    assert {"prefect.resource.id": "file:///data/published/IMOS/a.nc", "prefect.resource.role": "destination"} \
        in event["related"]


# -- what the emitter posts ------------------------------------------------------------------------------------

def _outcomes(root: str) -> list[tuple[LandingObject, FileOutcome]]:
    """A published, a quarantined and a failed file (texts with non-ASCII and control characters), and a skipped
    one (no event)."""
    pairs = []
    for name, status, extra in (
        ("pub.nc", PUBLISHED, {"destination": "file:///data/pub/IMOS/pub.nc", "check_result": "passed",
                               "stored": True, "archived": True}),
        ("bad.nc", QUARANTINED, {"error_uri": "file:///data/error/bad.nc", "check_result": "failed",
                                 "failed_checks": ["cf:1.6", "imos:1.4"], "error": "2 checks failed: été ✓"}),
        ("doomed.nc", FAILED, {"error": "boom\n\tTraceback: \"quoted\" \\ \x01 \u2028 𝄞"}),
        ("same.nc", SKIPPED, {"note": "already ingested (same content)"}),
    ):
        uri = root + name
        obj = LandingObject(uri=uri, name=name, size=len(name), fingerprint=f"sha256:{len(name):064x}",
                            path="/" + uri.split(":///", 1)[-1])
        pairs.append((obj, FileOutcome(source=uri, name=name, status=status, handler="SomeHandler", **extra)))
    return pairs


def test_a_batch_is_serialised_as_httpx_serialised_it_before():
    """One orjson serialisation per post: the bytes httpx's ``json=`` made of the same documents."""
    pairs = _outcomes("file:///landing/x/")
    documents = [_document(kwargs, time.time() - index) for index, (obj, outcome) in enumerate(pairs)
                 if (kwargs := file_event(obj, outcome, handler="H", flow_run_id="run-1")) is not None]
    assert len(documents) == 3
    assert orjson.dumps(documents) == httpx.Request("POST", "http://api/events", json=documents).content


def test_id_and_time_are_those_of_the_moment_the_file_finished():
    at = 1764676800.123456
    document = _document({"event": "aodncore.file.published"}, at)
    assert document["occurred"] == datetime.fromtimestamp(at, UTC).isoformat() == "2025-12-02T12:00:00.123456+00:00"
    event_id = uuid.UUID(document["id"])
    assert event_id.version == 7 and event_id.int >> 80 == int(at * 1000)  # uuid7: milliseconds first
    assert list(document) == ["id", "occurred", "event"]


def test_flush_interval_default_environment_and_bad_values(monkeypatch, caplog):
    monkeypatch.delenv(FLUSH_SECONDS_ENV, raising=False)
    assert flush_seconds() == FILE_EVENTS_FLUSH_SECONDS == 2.0
    assert FileEventEmitter("H").flush_seconds == 2.0 and FileEventEmitter("H", flush_seconds=0.5).flush_seconds == 0.5
    monkeypatch.setenv(FLUSH_SECONDS_ENV, " 0.25 ")
    assert flush_seconds() == 0.25 and FileEventEmitter("H").flush_seconds == 0.25
    monkeypatch.setenv(FLUSH_SECONDS_ENV, "0")
    assert flush_seconds() == 0.0
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv(FLUSH_SECONDS_ENV, bad)
        caplog.clear()
        assert flush_seconds() == 2.0
        assert f"{FLUSH_SECONDS_ENV}={bad!r} is not a number of seconds; using 2.0" in caplog.text


def _file_events(client, uri_prefix: str) -> list[dict]:
    response = client.request("POST", "/events/filter", json={
        "filter": {"event": {"prefix": ["aodncore.file."]}, "resource": {"id_prefix": [uri_prefix]}},
        "limit": 50})
    return response.json()["events"]


@pytest.mark.prefect_server
@pytest.mark.parametrize("interval", [3600.0, 0.0])
def test_events_reach_the_server_as_the_general_path_builds_them(prefect_server, tmp_path, interval):
    """Posted at close however long the interval (or at once with 0), each event is ``file_event``'s body with
    a uuid7 id and the time its file finished, read back from a real server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    root = (tmp_path / "landing").as_uri() + "/"
    pairs = _outcomes(root)
    run_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        emitter = FileEventEmitter("FallbackHandler", run_id, flush_seconds=interval)
    try:
        for obj, outcome in pairs:
            emitter(obj, outcome)
        if interval:
            time.sleep(0.3)
            assert emitter.emitted == 0  # still queued: the interval has not passed
    finally:
        emitter.close()  # the flows close it in a ``finally``: also when the run fails
    ended = datetime.now(UTC)
    assert emitter.emitted == 3
    with prefect_server.client() as client:
        deadline = time.monotonic() + 60
        while len(events := _file_events(client, root)) < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
    assert len(events) == 3
    by_name = {event["resource"]["prefect.resource.name"]: event for event in events}
    for obj, outcome in pairs[:3]:
        expected = file_event(obj, outcome, handler="SomeHandler", flow_run_id=run_id)
        event = by_name[obj.name]
        assert {key: event[key] for key in ("event", "resource", "related", "payload")} == expected
        occurred = datetime.fromisoformat(event["occurred"])
        assert started <= occurred <= ended
        event_id = uuid.UUID(event["id"])
        assert event_id.version == 7 and abs((event_id.int >> 80) - occurred.timestamp() * 1000) <= 1
