"""``aodncore.prefect.fileevents.file_event``: credentials in URLs never reach an event; other text is kept."""

from __future__ import annotations

from aodncore.ingest.outcome import FAILED, PUBLISHED, FileOutcome
from aodncore.ingest.sources import LandingObject
from aodncore.prefect.fileevents import file_event


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
