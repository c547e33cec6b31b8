"""FileOutcome: validation, table rows and JSON round-trip."""

import json

import pytest

from aodncore.ingest import FAILED, PUBLISHED, QUARANTINED, SKIPPED, FileOutcome


def _outcome(**overrides):
    values = dict(
        source="s3://landing/IMOS/ANMN/a b.nc",
        name="a b.nc",
        status=PUBLISHED,
        check_result="passed",
        publish_type="HARVEST_UPLOAD",
        destination="IMOS/ANMN/NRS/a b.nc",
        stored=True,
        archived=False,
        files=[{"name": "a b.nc", "check_passed": True, "publish_type": "HARVEST_UPLOAD",
                "dest_path": "IMOS/ANMN/NRS/a b.nc", "stored": True, "archived": False}],
    )
    values.update(overrides)
    return FileOutcome(**values)


def test_statuses_are_distinct_strings():
    assert len({PUBLISHED, QUARANTINED, SKIPPED, FAILED}) == 4


def test_json_round_trip_keeps_every_field():
    outcome = _outcome(status=QUARANTINED, check_result="failed", error="IMOS check failed: 3 errors",
                       error_uri="file:///errors/a b.nc")
    text = json.dumps(outcome.to_dict())
    again = FileOutcome.from_dict(json.loads(text))
    assert again == outcome
    assert again.files[0]["dest_path"] == "IMOS/ANMN/NRS/a b.nc"


def test_to_row_is_flat_and_has_table_columns():
    row = _outcome(error=None).to_row()
    assert row == {
        "name": "a b.nc", "status": PUBLISHED, "check_result": "passed", "publish_type": "HARVEST_UPLOAD",
        "destination": "IMOS/ANMN/NRS/a b.nc", "stored": True, "archived": False, "error": "", "note": "",
    }


def test_file_rows_are_normalised():
    outcome = _outcome(files=[{"name": "x.nc", "check_passed": False}])
    assert outcome.files == [{"name": "x.nc", "check_passed": False, "publish_type": "", "dest_path": "",
                              "stored": False, "archived": False}]


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="unknown status 'done'"):
        _outcome(status="done")


def test_unknown_check_result_is_refused():
    with pytest.raises(ValueError, match="check_result"):
        _outcome(check_result="ok")


def test_from_dict_names_missing_fields_and_ignores_unknown():
    with pytest.raises(ValueError, match="missing name, status"):
        FileOutcome.from_dict({"source": "file:///x"})
    outcome = FileOutcome.from_dict({"source": "file:///x", "name": "x", "status": SKIPPED, "future_field": 1})
    assert outcome.status == SKIPPED and outcome.ok
    assert not _outcome(status=FAILED).ok


def test_to_dict_equals_asdict_and_shares_no_mutable_state():
    from dataclasses import asdict

    outcome = _outcome(failed_checks=["cf:1.6"], note="a note", handler="ImosGenericHandler")
    data = outcome.to_dict()
    assert data == asdict(outcome)
    assert list(data) == list(asdict(outcome))  # same keys, same order
    data["files"][0]["name"] = "changed"
    data["failed_checks"].append("imos:1.4")
    assert outcome.files[0]["name"] == "a b.nc"
    assert outcome.failed_checks == ["cf:1.6"]
