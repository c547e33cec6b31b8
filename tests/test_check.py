"""Tests of the check step (aodncore.pipeline.steps.check) with the real compliance-checker and real IMOS files."""

from __future__ import annotations

import shutil
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from compliance_checker.base import BaseCheck, BaseNCCheck, Result
from compliance_checker.runner import CheckSuite

from aodncore.pipeline.common import CheckResult, PipelineFileCheckType
from aodncore.pipeline.exceptions import (
    ComplianceCheckFailedError,
    InvalidCheckSuiteError,
    InvalidCheckTypeError,
    InvalidSchemaError,
)
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection
from aodncore.pipeline.steps.check import (
    CheckRunnerAdapter,
    ComplianceCheckerCheckRunner,
    FormatCheckRunner,
    NonEmptyCheckRunner,
    TableSchemaCheckRunner,
    get_check_runner,
    get_child_check_runner,
)

# pass cf:1.6 under "normal" with compliance-checker 6.1 (imos-checks.md §3.2)
GOOD_NC = "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV01_Profile-SBE-19plus_C-20160524T003914Z.nc"
GOOD_NC_2 = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc"
# fail cf:1.6 under "normal"
BAD_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc"
PROFILE_BAD_NC = "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV00_Profile-BAD_C-20160524T003914Z.nc"
# fails cf:1.6 only because of the (new) check_invalid_coordinate_attr check
REALTIME_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc"
# fails cf:1.6 under normal (MEDIUM failure), passes under lenient
SRSALT_NC = "IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc"

CF = {"checks": ["cf:1.6"]}


@pytest.fixture(autouse=True)
def offline_cf_tables(tmp_path, monkeypatch):
    # the CF checker may try to download a standard-name table into $XDG_DATA_HOME; keep that local
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def collection_of(*paths, check_type=None) -> PipelineFileCollection:
    collection = PipelineFileCollection()
    for path in paths:
        collection.add(PipelineFile(str(path), check_type=check_type))
    return collection


def run_cc(path, params=CF) -> CheckResult:
    collection = collection_of(path)
    ComplianceCheckerCheckRunner(None, None, params).run(collection)
    return collection[0].check_result


# ----------------------------------------------------------------------------------------------------------------
# factories
# ----------------------------------------------------------------------------------------------------------------

def test_get_check_runner():
    runner = get_check_runner(None, None, CF)
    assert isinstance(runner, CheckRunnerAdapter)


@pytest.mark.parametrize(("check_type", "expected"), [
    (PipelineFileCheckType.NC_COMPLIANCE_CHECK, ComplianceCheckerCheckRunner),
    (PipelineFileCheckType.FORMAT_CHECK, FormatCheckRunner),
    (PipelineFileCheckType.NONEMPTY_CHECK, NonEmptyCheckRunner),
])
def test_get_child_check_runner(check_type, expected):
    assert type(get_child_check_runner(check_type, None, None, CF)) is expected


def test_get_child_check_runner_table_schema(tmp_path):
    config = SimpleNamespace(pipeline_config={"harvester": {"schema_base_dir": str(tmp_path)}})
    runner = get_child_check_runner(PipelineFileCheckType.TABLE_SCHEMA_CHECK, config, None)
    assert isinstance(runner, TableSchemaCheckRunner)
    assert runner.schema_base_path == str(tmp_path)


@pytest.mark.parametrize("check_type", [PipelineFileCheckType.UNSET, PipelineFileCheckType.NO_ACTION])
def test_get_child_check_runner_uncheckable(check_type):
    with pytest.raises(InvalidCheckTypeError):
        get_child_check_runner(check_type, None, None, CF)


def test_get_child_check_runner_requires_enum():
    with pytest.raises(TypeError):
        get_child_check_runner("NC_COMPLIANCE_CHECK", None, None, CF)


# ----------------------------------------------------------------------------------------------------------------
# compliance checker: construction
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [None, {}, {"checks": []}])
def test_no_suite_requested(params):
    with pytest.raises(InvalidCheckSuiteError, match="compliance check requested but no check suite specified"):
        ComplianceCheckerCheckRunner(None, None, params)


def test_unknown_suite_is_refused_at_construction():
    # compliance-checker itself silently ignores unknown names when one valid name is given
    with pytest.raises(InvalidCheckSuiteError) as info:
        ComplianceCheckerCheckRunner(None, None, {"checks": ["cf:1.6", "no_such_suite:9.9"]})
    assert str(info.value) == "invalid compliance check suites: ['no_such_suite:9.9']"


@pytest.mark.parametrize("criteria", ["Normal", "medium", ""])
def test_invalid_criteria_is_refused(criteria):
    with pytest.raises(InvalidCheckSuiteError, match="criteria"):
        ComplianceCheckerCheckRunner(None, None, {"checks": ["cf"], "criteria": criteria})


def test_invalid_output_format_is_refused():
    with pytest.raises(InvalidCheckSuiteError, match="output_format"):
        ComplianceCheckerCheckRunner(None, None, {"checks": ["cf"], "output_format": "xml"})


def test_defaults_and_repr():
    runner = ComplianceCheckerCheckRunner(None, None, {"checks": ["cf", "acdd:1.3"]})
    assert repr(runner) == "ComplianceCheckerCheckRunner(checks=['cf', 'acdd:1.3'])"
    assert (runner.verbosity, runner.criteria, runner.skip_checks, runner.output_format) == (0, "normal", None,
                                                                                             "text")


def test_checkers_are_loaded_once(monkeypatch):
    ComplianceCheckerCheckRunner(None, None, CF)
    calls = []
    monkeypatch.setattr(CheckSuite, "load_all_available_checkers", classmethod(lambda cls: calls.append(1)))
    for _ in range(3):
        ComplianceCheckerCheckRunner(None, None, CF)
    assert calls == []


# ----------------------------------------------------------------------------------------------------------------
# compliance checker: real checks
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [GOOD_NC, GOOD_NC_2])
def test_good_file_passes_cf(imos_dir, name):
    result = run_cc(imos_dir / name)
    assert result.compliant
    assert not result.errors
    assert list(result.log) == []


@pytest.mark.parametrize("name", [BAD_NC, PROFILE_BAD_NC])
def test_bad_file_fails_cf_with_report(imos_dir, name):
    result = run_cc(imos_dir / name)
    assert not result.compliant
    assert not result.errors
    text = "\n".join(result.log)
    assert "cf:1.6" in text
    assert f"{name} has" in text and "potential issue" in text


def test_not_a_netcdf_file(imos_dir, capsys):
    result = run_cc(imos_dir / "not_a_netcdf_file.nc")
    assert dict(result) == {"compliant": False, "log": ("invalid NetCDF file",), "errors": False}
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_skip_checks_reach_the_checker(imos_dir):
    assert not run_cc(imos_dir / REALTIME_NC).compliant
    skipped = run_cc(imos_dir / REALTIME_NC, {"checks": ["cf:1.6"], "skip_checks": ["check_invalid_coordinate_attr"]})
    assert skipped.compliant


def test_criteria(imos_dir):
    assert not run_cc(imos_dir / SRSALT_NC, {"checks": ["cf:1.6"], "criteria": "normal"}).compliant
    assert run_cc(imos_dir / SRSALT_NC, {"checks": ["cf:1.6"], "criteria": "lenient"}).compliant


def test_several_suites_log_only_failing_ones(imos_dir):
    result = run_cc(imos_dir / GOOD_NC, {"checks": ["cf:1.6", "acdd:1.3"], "criteria": "strict"})
    assert not result.compliant
    text = "\n".join(result.log)
    assert "acdd:1.3" in text
    assert "cf:1.6" not in text


def test_json_output_format(imos_dir):
    import json

    result = run_cc(imos_dir / BAD_NC, {"checks": ["cf:1.6"], "output_format": "json"})
    assert not result.compliant
    report = json.loads("\n".join(result.log))
    assert set(report) == {"cf:1.6"}
    assert report["cf:1.6"]["scored_points"] < report["cf:1.6"]["possible_points"]


class RaisingCheck(BaseNCCheck):
    """A compliance-checker suite whose one check raises."""

    _cc_spec = "aodncore_test_raising"
    _cc_spec_version = "1.0"
    register_checker = True

    def setup(self, ds):
        pass

    def check_fine(self, ds):
        return Result(BaseCheck.HIGH, True, "fine")

    def check_boom(self, ds):
        raise ValueError("boom in check")


class BrokenSetupCheck(BaseNCCheck):
    """A compliance-checker suite whose setup raises (which aborts run_checker itself)."""

    _cc_spec = "aodncore_test_broken"
    _cc_spec_version = "1.0"
    register_checker = True

    def setup(self, ds):
        raise RuntimeError("setup exploded")

    def check_fine(self, ds):
        return Result(BaseCheck.HIGH, True, "fine")


@pytest.fixture
def test_suites(monkeypatch, checks_in_process):
    ComplianceCheckerCheckRunner(None, None, CF)  # make sure the real suites are loaded first
    monkeypatch.setitem(CheckSuite.checkers, "aodncore_test_raising:1.0", RaisingCheck)
    monkeypatch.setitem(CheckSuite.checkers, "aodncore_test_broken:1.0", BrokenSetupCheck)


def test_check_that_raises_is_an_error(imos_dir, test_suites):
    result = run_cc(imos_dir / GOOD_NC, {"checks": ["aodncore_test_raising:1.0"]})
    assert not result.compliant
    assert result.errors is True
    assert result.log[0] == ("WARNING: compliance checks did not complete due to error. "
                             "ValueError: boom in check")
    assert any("check_boom" in line for line in result.log)


def test_checker_crash_is_an_error(imos_dir, test_suites):
    result = run_cc(imos_dir / GOOD_NC, {"checks": ["cf:1.6", "aodncore_test_broken:1.0"]})
    assert not result.compliant
    assert result.errors is True
    assert list(result.log) == [
        "WARNING: compliance checks did not complete due to error. RuntimeError: setup exploded"
    ]


def test_concurrent_checks_match_serial_results(imos_dir, tmp_path):
    names = [GOOD_NC, BAD_NC, GOOD_NC_2, PROFILE_BAD_NC, REALTIME_NC, SRSALT_NC] * 2
    runner = ComplianceCheckerCheckRunner(None, None, CF)

    def strip(result):
        return bool(result.compliant), result.errors, [line for line in result.log if "Report generated" not in line]

    serial = [strip(runner.check_file(str(imos_dir / n))) for n in names]
    stdout, stderr = sys.stdout, sys.stderr
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = [strip(r) for r in pool.map(lambda n: runner.check_file(str(imos_dir / n)), names)]
    assert concurrent == serial
    assert sys.stdout is stdout and sys.stderr is stderr
    assert [c for c, _, _ in serial][:6] == [True, False, True, False, False, False]


# ----------------------------------------------------------------------------------------------------------------
# format and non-empty checks
# ----------------------------------------------------------------------------------------------------------------

def test_format_check(imos_dir, imos_file, tmp_path):
    good = imos_dir / GOOD_NC
    fake = imos_dir / "not_a_netcdf_file.nc"
    collection = collection_of(good, fake, imos_dir / "bgc_trip.csv")
    FormatCheckRunner(None, None).run(collection)
    results = [dict(f.check_result) for f in collection]
    assert results == [
        {"compliant": True, "log": (), "errors": False},
        {"compliant": False, "log": ("invalid format: did not validate as type: NETCDF",), "errors": False},
        {"compliant": True, "log": (), "errors": False},
    ]


def test_nonempty_check(imos_dir, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    collection = collection_of(imos_dir / "bgc_trip.csv", empty)
    NonEmptyCheckRunner(None, None).run(collection)
    assert [(f.check_result.compliant, tuple(f.check_result.log)) for f in collection] == [
        (True, ()), (False, ("empty file",))]


# ----------------------------------------------------------------------------------------------------------------
# adapter
# ----------------------------------------------------------------------------------------------------------------

def test_adapter_dispatches_and_reports_failures(imos_dir, tmp_path, caplog):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    collection = PipelineFileCollection()
    collection.add(PipelineFile(str(imos_dir / GOOD_NC), check_type=PipelineFileCheckType.NC_COMPLIANCE_CHECK))
    collection.add(PipelineFile(str(imos_dir / BAD_NC), check_type=PipelineFileCheckType.NC_COMPLIANCE_CHECK))
    collection.add(PipelineFile(str(imos_dir / "bgc_trip.csv"), check_type=PipelineFileCheckType.FORMAT_CHECK))
    collection.add(PipelineFile(str(empty), check_type=PipelineFileCheckType.NONEMPTY_CHECK))
    collection.add(PipelineFile(str(imos_dir / "not_a_netcdf_file.nc"), check_type=PipelineFileCheckType.NO_ACTION))
    collection.add(PipelineFile(str(tmp_path / "gone.nc"), is_deletion=True))

    import logging

    logger = logging.getLogger("aodncore.test_check")
    with caplog.at_level(logging.ERROR, logger="aodncore.test_check"), \
            pytest.raises(ComplianceCheckFailedError) as info:
        get_check_runner(None, logger, CF).run(collection)

    assert str(info.value) == f"the following files failed the check step: {[BAD_NC, 'empty.csv']}"
    assert [f.is_checked for f in collection] == [True, True, True, True, False, False]
    assert [bool(f.check_result.compliant) for f in collection[:4]] == [True, False, True, False]
    assert any(BAD_NC in record.getMessage() and "potential issue" in record.getMessage()
               for record in caplog.records)


def test_adapter_all_good(imos_dir):
    collection = collection_of(imos_dir / GOOD_NC, check_type=PipelineFileCheckType.NC_COMPLIANCE_CHECK)
    CheckRunnerAdapter(None, None, CF).run(collection)
    assert collection[0].check_result.compliant


# ----------------------------------------------------------------------------------------------------------------
# table schema
# ----------------------------------------------------------------------------------------------------------------

BGC_TRIP_FIELDS = textwrap.dedent("""\
    fields:
      - {name: PROJECTNAME, type: string}
      - {name: TRIP_CODE, type: string, constraints: {required: true}}
      - {name: STATIONNAME, type: string}
      - {name: STATIONCODE, type: string}
      - {name: LONGITUDE, type: number}
      - {name: LATITUDE, type: number}
      - {name: ZOOPSAMPLEDEPTH_M, type: number}
      - {name: PHYTOSAMPLEDEPTH_M, type: number}
      - {name: SAMPLEDATELOCAL, type: datetime, format: "%Y-%m-%d %H:%M:%S"}
      - {name: BIOMASS_MGM3, type: number}
      - {name: SECCHI_M, type: number}
      - {name: SAMPLETYPE, type: string}
    primaryKey: TRIP_CODE
    """)


@pytest.fixture
def schema_dir(tmp_path) -> Path:
    path = tmp_path / "schemas"
    (path / "nested").mkdir(parents=True)
    # a "resource" YAML with the schema under `schema:`
    (path / "nested" / "bgc_trip.yaml").write_text("name: bgc_trip\nschema:\n" + textwrap.indent(BGC_TRIP_FIELDS,
                                                                                                   "  "))
    return path


def table_runner(schema_dir) -> TableSchemaCheckRunner:
    config = SimpleNamespace(pipeline_config={"harvester": {"schema_base_dir": str(schema_dir)}})
    return TableSchemaCheckRunner(config, None)


def test_table_schema_good_csv(imos_dir, schema_dir):
    collection = collection_of(imos_dir / "bgc_trip.csv")
    table_runner(schema_dir).run(collection)
    assert dict(collection[0].check_result) == {"compliant": True, "log": [], "errors": False}


def test_table_schema_bad_csv(imos_file, schema_dir, tmp_path):
    # the schema is found by name, so give the bad file the good file's name
    bad = tmp_path / "upload" / "bgc_trip.csv"
    bad.parent.mkdir()
    shutil.copyfile(imos_file("bgc_trip_bad.csv"), bad)
    result = table_runner(schema_dir).check_file(str(bad))
    assert not result.compliant
    assert len(result.log) == 2
    first, second = result.log
    assert first == ('Exception: There are 2 cast errors (see exception.errors) for row "3"\n'
                     "Error Data:  TRIP_CODE: , SAMPLEDATELOCAL: Wednesday 02:45:00\n")
    assert second.startswith("Exception: Row length 3 doesn't match fields count 12 for row \"4\"\n")


def test_table_schema_bare_schema_yaml(imos_dir, tmp_path):
    schemas = tmp_path / "bare"
    schemas.mkdir()
    (schemas / "IMOS_bgc_trip_v2.yaml").write_text(BGC_TRIP_FIELDS)
    assert table_runner(schemas).check_file(str(imos_dir / "bgc_trip.csv")).compliant


def test_table_schema_not_found(imos_dir, tmp_path):
    result = table_runner(tmp_path).check_file(str(imos_dir / "bgc_trip.csv"))
    assert dict(result) == {"compliant": False, "log": ("could not find schema definition matching 'bgc_trip'",),
                            "errors": True}


def test_table_schema_stem_is_matched_literally(imos_dir, tmp_path):
    # QUIRK 30 fixed: the stem is regex-escaped and '.yaml' must end the schema's name
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "bgcXtrip.yaml").write_text(BGC_TRIP_FIELDS)
    (schemas / "bgc.trip.yaml.orig").write_text(BGC_TRIP_FIELDS)
    csv = tmp_path / "bgc.trip.csv"
    shutil.copyfile(imos_dir / "bgc_trip.csv", csv)
    result = table_runner(schemas).check_file(str(csv))
    assert result.log == ("could not find schema definition matching 'bgc.trip'",)

    (schemas / "BGC.TRIP.yaml").write_text(BGC_TRIP_FIELDS)  # case-insensitive
    assert table_runner(schemas).check_file(str(csv)).compliant


def test_table_schema_invalid_definition(imos_dir, tmp_path):
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "bgc_trip.yaml").write_text("fields: not-a-list\n")
    with pytest.raises(InvalidSchemaError, match="Schema definition does not meet the tableschema standard"):
        table_runner(schemas).check_file(str(imos_dir / "bgc_trip.csv"))

