"""imos:1.3 / imos:1.4 suites: registration, good fixtures, the single-defect probe table (spec §2.7), the quirk
decisions (docs/imos-checks.md) and the compliance-checker plumbing (criteria, skip_checks, CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from checks_fixtures import ACK_2016, ACK_2020, ACK_SSI, QC_1_3, TIME_VALUES, FileSpec, Raw, Var, imos_spec, run_suite
from compliance_checker.runner import CheckSuite, ComplianceChecker

from aodncore.checks.ghrsst import Ghrsst10Check
from aodncore.checks.imos import Imos13Check, Imos14Check

CLI = str(Path(sys.executable).with_name("compliance-checker"))


@pytest.fixture(autouse=True)
def _offline_cf(tmp_path_factory, monkeypatch):
    """Keep CF's standard-name-table cache out of the home directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))


def write(tmp_path: Path, version: str, mutate: Callable[[FileSpec], object] | None = None, name: str = "f.nc"):
    spec = imos_spec(version)
    if mutate is not None:
        mutate(spec)
    return spec.write(tmp_path / f"{version}-{name}")


# ------------------------------------------------------------------------------------------------------ registration
def test_suites_registered_to_our_classes():
    suite = CheckSuite()
    suite.load_all_available_checkers()
    assert CheckSuite.checkers["imos:1.3"] is Imos13Check
    assert CheckSuite.checkers["imos:1.4"] is Imos14Check
    assert CheckSuite.checkers["ghrsst:1.0"] is Ghrsst10Check
    assert CheckSuite.checkers["imos"] is Imos14Check
    assert CheckSuite.checkers["ghrsst"] is Ghrsst10Check


def test_constructor_is_cheap_and_argument_free():
    checker = Imos14Check()
    assert checker.options == {}
    assert Imos13Check(options={"x": "y"}).options == {"x": "y"}
    assert Imos14Check._cc_display_headers == {3: "Required", 2: "Recommended", 1: "Suggested"}


def test_cli_lists_suites_without_load_errors():
    proc = subprocess.run([CLI, "-l"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for suite in ("imos:1.3", "imos:1.4", "ghrsst:1.0"):
        assert f" - {suite}" in proc.stdout
    assert "Could not load" not in proc.stderr
    verbose = subprocess.run([CLI, "-l", "-v"], capture_output=True, text=True, timeout=120)
    for alias in ("imos", "ghrsst"):  # unversioned aliases are only printed with -v
        assert f" - {alias} (v" in verbose.stdout


def test_cli_runs_imos_1_4(tmp_path):
    good = write(tmp_path, "1.4")
    bad = write(tmp_path, "1.4", lambda s: s.globals.pop("project"), name="bad.nc")
    ok = subprocess.run([CLI, "--test", "imos:1.4", str(good)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "imos:1.4" in ok.stdout
    failed = subprocess.run([CLI, "--test", "imos", "-f", "json", "-o", str(tmp_path / "o.json"), str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    report = json.loads((tmp_path / "o.json").read_text())
    assert list(report) == ["imos"]  # the alias resolves to 1.4
    assert report["imos"]["testname"] == "imos:1.4"
    names = [r["name"] for r in report["imos"]["high_priorities"] if r["value"][0] != r["value"][1]]
    assert names == ["project"]


def test_describe_checks_lists_check_methods():
    proc = subprocess.run([CLI, "-D", "-t", "imos:1.4"], capture_output=True, text=True, timeout=120)
    assert "check_mandatory_global_attributes" in proc.stdout
    assert "check_coordinate_variable_no_fill_value" in proc.stdout


def test_check_method_sets_match_spec():
    common = {
        "check_mandatory_global_attributes", "check_optional_global_attributes", "check_global_attributes",
        "check_variable_attributes", "check_geospatial_lat_min_max", "check_geospatial_lon_min_max",
        "check_geospatial_vertical_min_max", "check_time_coverage", "check_variables_long_name",
        "check_coordinate_variables", "check_time_variable", "check_longitude_variable", "check_latitude_variable",
        "check_vertical_variable", "check_variable_attribute_type", "check_data_variable_present",
        "check_quality_control_conventions_for_quality_control_variable",
        "check_quality_control_variable_matches_variable", "check_quality_control_variable_dimensions",
        "check_quality_control_variable_listed", "check_quality_control_variable_standard_name",
        "check_geospatial_vertical_units", "check_acknowledgement", "check_data_variables",
    }
    only_14 = {"check_geospatial_vertical_positive", "check_vertical_variable_reference_datum",
               "check_coordinate_variable_no_fill_value", "check_quality_control_global"}

    def checks(cls):
        return {n for n in dir(cls) if n.startswith("check_")}

    assert checks(Imos13Check) == common
    assert checks(Imos14Check) == common | only_14


# ----------------------------------------------------------------------------------------------------- good files
def test_good_1_4_file(tmp_path):
    path = write(tmp_path, "1.4")
    assert run_suite(path, "imos:1.4").verdicts == "PPP"
    cf = run_suite(path, "cf:1.6")
    assert cf.verdicts == "PPF"  # strict fails only on CF's LOW "calendar standard preferred" note (Q10)
    assert [weight for _name, weight in cf.failing] == [1]


def test_good_1_3_file_and_its_1_4_differences(tmp_path):
    path = write(tmp_path, "1.3")
    assert run_suite(path, "imos:1.3").verdicts == "PPP"
    outcome = run_suite(path, "imos:1.4")
    assert set(outcome.failing) == {
        ("Conventions", 3), ("disclaimer", 3), ("license", 3), ("standard_name_vocabulary", 3),
        ("TEMP_quality_control", 2),
    }


# ------------------------------------------------------------------------------------------- probe table (§2.7)
def _set_global(name, value):
    return lambda s: s.globals.__setitem__(name, value)


def _del_global(name):
    return lambda s: s.globals.pop(name)


def _set_attr(var, name, value):
    return lambda s: s.variables[var].attrs.__setitem__(name, value)


def _del_attr(var, name):
    return lambda s: s.variables[var].attrs.pop(name)


def _time_float32(s):
    s.variables["TIME"].dtype = "f4"


def _time_seconds_1970(s):
    t = s.variables["TIME"]
    t.attrs["units"] = "seconds since 1970-01-01 00:00:00 UTC"
    t.data = [(v - 7305.0) * 86400.0 for v in TIME_VALUES]
    t.attrs["valid_max"] = 1e10


def _time_not_monotonic(s):
    v = list(TIME_VALUES)
    v[1], v[2] = v[2], v[1]
    s.variables["TIME"].data = v


def _qc_other_dimension(s):
    s.dims["OTHER"] = len(TIME_VALUES)
    s.variables["TEMP_quality_control"].dims = ("OTHER",)


def _rename_temp(s):
    s.rename_variable("TEMP", "TEMP_X")


def _only_coordinates(s):
    del s.variables["TEMP"], s.variables["TEMP_quality_control"]


ACK_2020_AFTER_NEWLINE = "Acknowledgement:\n" + ACK_2020

# (id, mutation, imos:1.4 L/N/S, imos:1.3 L/N/S, failing (name, weight) for 1.4 or, if 1.4 passes, for 1.3)
PROBES = [
    ("conventions_1_3", _set_global("Conventions", "CF-1.6,IMOS-1.3"), "FFF", "PPP", {("Conventions", 3)}),
    ("conventions_space", _set_global("Conventions", "CF-1.6, IMOS-1.4"), "FFF", "FFF", {("Conventions", 3)}),
    ("conventions_extra_token", _set_global("Conventions", "CF-1.6,IMOS-1.4,ACDD-1.3"), "FFF", "FFF",
     {("Conventions", 3)}),
    ("project_missing", _del_global("project"), "FFF", "FFF", {("project", 3)}),
    ("naming_authority_aodn", _set_global("naming_authority", "AODN"), "FFF", "FFF", {("naming_authority", 3)}),
    ("date_created_no_z", _set_global("date_created", "2024-02-03T04:05:06"), "FFF", "FFF", {("date_created", 3)}),
    ("title_empty", _set_global("title", ""), "FFF", "FFF", {("title", 3)}),
    ("title_numeric", _set_global("title", 5), "FFF", "FFF", {("title", 3)}),
    ("data_centre_emii", _set_global("data_centre", "eMarine Information Infrastructure (eMII)"), "FFF", "PPP",
     {("data_centre", 3)}),
    ("license_missing", lambda s: s.globals.pop("license", None), "FFF", "PPP", {("license", 3)}),
    ("vocabulary_no_version", _set_global("standard_name_vocabulary", "CF Standard Name Table"), "FFF", "PPP",
     {("standard_name_vocabulary", 3)}),
    ("acknowledgement_missing", _del_global("acknowledgement"), "FFF", "FFF", {("acknowledgement", 3)}),
    ("author_email_invalid", _set_global("author_email", "not-an-email"), "PFF", "PFF", {("author_email", 2)}),
    ("local_time_zone_9_5", _set_global("local_time_zone", 9.5), "PPP", "PPP", set()),
    ("lat_min_mismatch", _set_global("geospatial_lat_min", -34.0), "FFF", "FFF", {("geospatial_lat_min", 3)}),
    ("lat_min_string", _set_global("geospatial_lat_min", "-33.5"), "FFF", "FFF", {("geospatial_lat_min", 3)}),
    ("time_coverage_start_plus_3h", _set_global("time_coverage_start", "2020-01-01T03:00:00Z"), "PPP", "PPP",
     set()),
    ("time_coverage_start_plus_1d", _set_global("time_coverage_start", "2020-01-02T00:00:00Z"), "FFF", "FFF",
     {("time_coverage_start", 3)}),
    ("time_coverage_start_no_z", _set_global("time_coverage_start", "2020-01-01T00:00:00"), "FFF", "FFF",
     {("time_coverage_start", 3)}),
    ("time_float32", _time_float32, "PFF", "PFF", {("TIME", 2)}),
    ("time_calendar_standard", _set_attr("TIME", "calendar", "standard"), "FFF", "FFF", {("TIME", 3)}),
    ("time_units_without_utc", _set_attr("TIME", "units", "days since 1950-01-01 00:00:00"), "PFF", "PFF",
     {("TIME", 2)}),
    ("time_units_seconds_1970", _time_seconds_1970, "PPP", "PFF", {("TIME", 2)}),
    ("time_not_monotonic", _time_not_monotonic, "FFF", "FFF", {("TIME", 3)}),
    ("time_fill_value", _set_attr("TIME", "_FillValue", 999999.0), "FFF", "PPP", {("TIME", 3)}),
    ("latitude_valid_min", _set_attr("LATITUDE", "valid_min", -80.0), "FFF", "FFF", {("LATITUDE", 3)}),
    ("longitude_valid_range", lambda s: (_set_attr("LONGITUDE", "valid_min", 0.0)(s),
                                         _set_attr("LONGITUDE", "valid_max", 180.0)(s)), "FFF", "FFF",
     {("LONGITUDE", 3)}),
    ("depth_positive_up", _set_attr("NOMINAL_DEPTH", "positive", "up"), "FFF", "FFF",
     {("NOMINAL_DEPTH", 3), ("geospatial_vertical_min", 3), ("geospatial_vertical_max", 3)}),
    ("depth_reference_datum_msl", _set_attr("NOMINAL_DEPTH", "reference_datum", "MSL"), "FFF", "PPP",
     {("NOMINAL_DEPTH", 3)}),
    ("depth_units_degc", _set_attr("NOMINAL_DEPTH", "units", "degC"), "FFF", "FFF", {("NOMINAL_DEPTH", 3)}),
    ("depth_no_axis", _del_attr("NOMINAL_DEPTH", "axis"), "FFF", "FFF", {("NOMINAL_DEPTH", 3)}),
    ("temp_units_missing", _del_attr("TEMP", "units"), "FFF", "PPP", {("TEMP", 3)}),
    ("temp_coordinates_bad_name", _set_attr("TEMP", "coordinates", "TIME LATITUDE LONGITUDE DEPTH"), "FFF", "PPP",
     {("TEMP", 3)}),
    ("temp_valid_min_double", _set_attr("TEMP", "valid_min", Raw(np.float64(-2.5))), "FFF", "FFF", {("TEMP", 3)}),
    ("temp_no_fill_value", _del_attr("TEMP", "_FillValue"), "PPP", "FFF", {("TEMP", 3)}),
    ("temp_comment_empty", _set_attr("TEMP", "comment", ""), "FFF", "FFF", {("TEMP", 3)}),
    ("temp_long_name_missing", _del_attr("TEMP", "long_name"), "FFF", "FFF", {("TEMP", 3)}),
    ("qc_conventions_1_3_wording", _set_attr("TEMP_quality_control", "quality_control_conventions", QC_1_3),
     "PFF", "PPP", {("TEMP_quality_control", 2)}),
    ("qc_standard_name_wrong", _set_attr("TEMP_quality_control", "standard_name", "sea_water_salinity status_flag"),
     "FFF", "FFF", {("TEMP_quality_control", 3)}),
    ("qc_not_listed", _del_attr("TEMP", "ancillary_variables"), "PFF", "PFF", {("TEMP_quality_control", 2)}),
    ("qc_other_dimension", _qc_other_dimension, "FFF", "FFF", {("TEMP_quality_control", 3)}),
    ("qc_global_without_conventions", _set_attr("TEMP_quality_control", "quality_control_global", "A"), "PFF",
     "PPP", {("TEMP_quality_control", 2)}),
    ("qc_orphaned", _rename_temp, "FFF", "FFF", {("TEMP_quality_control", 3)}),
    ("vertical_positive_missing", _del_global("geospatial_vertical_positive"), "FFF", "PPP",
     {("geospatial_vertical_positive", 3)}),
    ("vertical_max_mismatch", _set_global("geospatial_vertical_max", 25.0), "FFF", "FFF",
     {("geospatial_vertical_max", 3)}),
    ("vertical_units_degc", _set_global("geospatial_vertical_units", "degC"), "FFF", "FFF",
     {("geospatial_vertical_units", 3)}),
]


@pytest.mark.parametrize(("mutation", "v14", "v13", "failing"), [p[1:] for p in PROBES], ids=[p[0] for p in PROBES])
def test_single_defect_probe(tmp_path, mutation, v14, v13, failing):
    out14 = run_suite(write(tmp_path, "1.4", mutation), "imos:1.4")
    out13 = run_suite(write(tmp_path, "1.3", mutation), "imos:1.3")
    assert not out14.errors and not out13.errors
    assert (out14.verdicts, out13.verdicts) == (v14, v13)
    reference = out14 if v14 != "PPP" else out13
    assert set(reference.failing) == failing


def test_only_coordinate_variables(tmp_path):
    outcome = run_suite(write(tmp_path, "1.4", _only_coordinates), "imos:1.4")
    assert outcome.verdicts == "FFF"
    assert set(outcome.failing) == {("data_variable_present", 3)}


# ----------------------------------------------------------------------------------------------------- messages
def test_failure_messages_name_attribute_and_expectation(tmp_path):
    outcome = run_suite(write(tmp_path, "1.4", _set_global("naming_authority", "AODN")), "imos:1.4")
    assert "naming_authority" in outcome.messages("naming_authority")
    assert '"IMOS"' in outcome.messages("naming_authority")
    outcome = run_suite(write(tmp_path, "1.4", _set_attr("TIME", "calendar", "standard"), "cal.nc"), "imos:1.4")
    assert "calendar" in outcome.messages("TIME") and "gregorian" in outcome.messages("TIME")


def test_title_empty_vs_numeric_messages(tmp_path):
    empty = run_suite(write(tmp_path, "1.4", _set_global("title", ""), "e.nc"), "imos:1.4")
    assert "empty" in empty.messages("title")
    numeric = run_suite(write(tmp_path, "1.4", _set_global("title", 5), "n.nc"), "imos:1.4")
    assert "string" in numeric.messages("title")


def test_missing_latitude_gives_no_lat_results(tmp_path):
    """Q11 kept: lat/lon checks only run when the variable exists."""

    def drop_latitude(s):
        del s.variables["LATITUDE"]
        s.variables["TEMP"].attrs["coordinates"] = "TIME LONGITUDE NOMINAL_DEPTH"

    outcome = run_suite(write(tmp_path, "1.4", drop_latitude), "imos:1.4")
    assert outcome.verdicts == "PPP"
    names = {g.name for g in outcome.groups}
    assert "LATITUDE" not in names and "geospatial_lat_min" not in names


def test_time_without_utc_1_4_accepts_any_utc_units(tmp_path):
    outcome = run_suite(write(tmp_path, "1.4", _set_attr("TIME", "units", "days since 1950-01-01T00:00:00 UTC")),
                        "imos:1.4")
    assert outcome.verdicts == "PPP"


def test_time_fill_value_also_fails_cf(tmp_path):
    path = write(tmp_path, "1.4", _set_attr("TIME", "_FillValue", 999999.0))
    assert run_suite(path, "cf:1.6").passes("normal") is False
    assert "_FillValue" in run_suite(path, "imos:1.4").messages("TIME")


def test_unknown_vertical_variable_axis_z_only(tmp_path):
    def add_pressure(s):
        s.variables["PRES_REL"] = Var(
            "f4", (), 20.0, {"long_name": "pressure", "axis": "Z", "units": "dbar", "reference_datum": "sea surface",
                             "valid_min": 0.0, "valid_max": 12000.0})

    outcome = run_suite(write(tmp_path, "1.4", add_pressure), "imos:1.4")
    messages = outcome.messages("PRES_REL")
    assert "standard_name" in messages and "positive" in messages and "units of distance" in messages


# ----------------------------------------------------------------------------------------------- acknowledgement
ACK_CASES = [
    # (id, value or None for missing, imos:1.4 passes, imos:1.3 passes)
    ("2020", ACK_2020, True, False),
    ("2016", ACK_2016, True, True),
    ("ssi", ACK_SSI, True, True),
    ("prefix_2016", "Please note. " + ACK_2016, False, True),
    ("prefix_2020", "Please note. " + ACK_2020, True, False),
    ("2020_after_newline", ACK_2020_AFTER_NEWLINE, True, False),  # Q5 fixed (reference: 1.4 failed)
    ("2016_after_newline", "Acknowledgement:\n" + ACK_2016, False, True),  # 1.4 keeps the start anchor
    ("missing", None, False, False),
]


@pytest.mark.parametrize(("value", "ok14", "ok13"), [c[1:] for c in ACK_CASES], ids=[c[0] for c in ACK_CASES])
def test_acknowledgement_matrix(tmp_path, value, ok14, ok13):
    def mutate(s):
        if value is None:
            s.globals.pop("acknowledgement")
        else:
            s.globals["acknowledgement"] = value

    out14 = run_suite(write(tmp_path, "1.4", mutate), "imos:1.4")
    out13 = run_suite(write(tmp_path, "1.3", mutate), "imos:1.3")
    assert (("acknowledgement", 3) not in out14.failing) is ok14
    assert (("acknowledgement", 3) not in out13.failing) is ok13


# ----------------------------------------------------------------------------------------------- quirk decisions
@pytest.mark.parametrize("tz", [12.0, 13.0, 14.0, 12.75, 5.75, -12.0])
def test_q1_fixed_local_time_zone_up_to_plus_14_and_quarter_hours(tmp_path, tz):
    assert run_suite(write(tmp_path, "1.4", _set_global("local_time_zone", tz)), "imos:1.4").verdicts == "PPP"


@pytest.mark.parametrize("tz", [14.5, -12.5, 9.1, "10", np.array([10.0, 11.0])])
def test_q1_q13_bad_local_time_zone_is_a_medium_failure_not_an_error(tmp_path, tz):
    outcome = run_suite(write(tmp_path, "1.4", _set_global("local_time_zone", tz)), "imos:1.4")
    assert not outcome.errors
    assert outcome.verdicts == "PFF"
    assert set(outcome.failing) == {("local_time_zone", 2)}


@pytest.mark.parametrize(("email", "ok"), [("a@example.info", True), ("a.b+c@data.aodn.org.au", True),
                                           ("a@[10.0.0.1]", True), ("a@example", False), ("@example.org", False)])
def test_q2_fixed_email_accepts_long_tlds(tmp_path, email, ok):
    outcome = run_suite(write(tmp_path, "1.4", _set_global("author_email", email)), "imos:1.4")
    assert (outcome.verdicts == "PPP") is ok


def test_q3_fixed_unsigned_coordinate_variable_is_numeric(tmp_path):
    def add_unsigned_coordinate(s):
        s.format = "NETCDF4"
        s.dims["WAVELENGTH"] = 3
        s.variables["WAVELENGTH"] = Var("u2", ("WAVELENGTH",), [412, 443, 490],
                                        {"long_name": "wavelength", "units": "nm"})

    outcome = run_suite(write(tmp_path, "1.4", add_unsigned_coordinate), "imos:1.4")
    assert outcome.verdicts == "PPP"


def test_q3_kept_unsigned_variables_are_not_data_variables(tmp_path):
    def unsigned_temp(s):
        s.format = "NETCDF4"
        temp = s.variables["TEMP"]
        temp.dtype = "u2"
        temp.data = [18, 18, 18, 17, 18]
        temp.attrs.update({"_FillValue": 65535, "valid_min": 0, "valid_max": 40})
        del temp.attrs["units"]  # would fail imos:1.4 if TEMP counted as a data variable

    outcome = run_suite(write(tmp_path, "1.4", unsigned_temp), "imos:1.4")
    assert set(outcome.failing) == {("data_variable_present", 3)}


def test_q4_kept_time_coverage_tolerance_is_relative(tmp_path):
    plus_5h = run_suite(write(tmp_path, "1.4", _set_global("time_coverage_start", "2020-01-01T05:00:00Z")),
                        "imos:1.4")
    assert plus_5h.verdicts == "PPP"
    plus_7h = run_suite(write(tmp_path, "1.4", _set_global("time_coverage_start", "2020-01-01T07:00:00Z"), "7.nc"),
                        "imos:1.4")
    assert set(plus_7h.failing) == {("time_coverage_start", 3)}


def test_q5_fixed_multiline_disclaimer(tmp_path):
    disclaimer = "IMOS disclaimer:\n" + imos_spec("1.4").globals["disclaimer"]
    assert run_suite(write(tmp_path, "1.4", _set_global("disclaimer", disclaimer)), "imos:1.4").verdicts == "PPP"


def test_q6_kept_conventions_is_an_exact_string(tmp_path):
    space_separated = run_suite(write(tmp_path, "1.4", _set_global("Conventions", "CF-1.6 IMOS-1.4")), "imos:1.4")
    assert space_separated.verdicts == "PPP"
    minor = run_suite(write(tmp_path, "1.4", _set_global("Conventions", "CF-1.6,IMOS-1.4.1"), "m.nc"), "imos:1.4")
    assert set(minor.failing) == {("Conventions", 3)}


@pytest.mark.parametrize("coordinates", ["TIME  LATITUDE LONGITUDE NOMINAL_DEPTH", " TIME LATITUDE\tLONGITUDE "
                                         "NOMINAL_DEPTH "])
def test_q7_fixed_runs_of_blanks_in_coordinates(tmp_path, coordinates):
    outcome = run_suite(write(tmp_path, "1.4", _set_attr("TEMP", "coordinates", coordinates)), "imos:1.4")
    assert outcome.verdicts == "PPP"


def test_q7_fixed_runs_of_blanks_in_ancillary_variables(tmp_path):
    outcome = run_suite(write(tmp_path, "1.4", _set_attr("TEMP", "ancillary_variables", " TEMP_quality_control  ")),
                        "imos:1.4")
    assert outcome.verdicts == "PPP"


def test_q9_kept_whitespace_only_attributes(tmp_path):
    """check_global_attributes only catches '' (whitespace-only optional attributes pass); mandatory ones don't."""
    optional = run_suite(write(tmp_path, "1.4", _set_global("comment", "   ")), "imos:1.4")
    assert optional.verdicts == "PPP"
    mandatory = run_suite(write(tmp_path, "1.4", _set_global("abstract", "   "), "m.nc"), "imos:1.4")
    assert set(mandatory.failing) == {("abstract", 3)}


def test_q12_kept_any_depth_name_is_vertical(tmp_path):
    def add_bot_depth(s):
        s.variables["BOT_DEPTH"] = Var(
            "f4", ("TIME",), [50.0] * 5, {"long_name": "bottom depth", "units": "m", "_FillValue": 999999.0,
                                          "coordinates": "TIME LATITUDE LONGITUDE NOMINAL_DEPTH"})

    outcome = run_suite(write(tmp_path, "1.4", add_bot_depth), "imos:1.4")
    assert ("BOT_DEPTH", 3) in outcome.failing
    assert "reference_datum" in outcome.messages("BOT_DEPTH")


def test_q14_kept_license_must_be_http(tmp_path):
    outcome = run_suite(write(tmp_path, "1.4", _set_global("license", "https://creativecommons.org/licenses/by/4.0/")),
                        "imos:1.4")
    assert set(outcome.failing) == {("license", 3)}


# ---------------------------------------------------------------------------------------- criteria and skip_checks
def test_medium_only_defect_is_lenient_pass_normal_fail(tmp_path):
    path = write(tmp_path, "1.4", _set_global("author_email", "not-an-email"))
    results = {}
    for criteria in ("lenient", "normal", "strict"):
        passed, errors = ComplianceChecker.run_checker(str(path), ["imos:1.4"], 0, criteria,
                                                       output_filename=str(tmp_path / f"{criteria}.txt"))
        results[criteria] = (passed, errors)
    assert results == {"lenient": (True, False), "normal": (False, False), "strict": (False, False)}


def test_skip_checks_removes_the_group(tmp_path):
    path = write(tmp_path, "1.4", _del_global("acknowledgement"))
    assert run_suite(path, "imos:1.4").verdicts == "FFF"
    skipped = run_suite(path, "imos:1.4", skip_checks=["check_acknowledgement"])
    assert skipped.verdicts == "PPP"
    assert "acknowledgement" not in {g.name for g in skipped.groups}


def test_skip_checks_medium_level_keeps_high_results(tmp_path):
    """'check_x:M' keeps only HIGH results of that check: the MEDIUM TIME dtype failure disappears."""
    path = write(tmp_path, "1.4", _time_float32)
    assert run_suite(path, "imos:1.4", skip_checks=["check_time_variable:M"]).verdicts == "PPP"


def test_json_report_contains_suite(tmp_path):
    path = write(tmp_path, "1.4", _set_global("title", ""))
    out = tmp_path / "report.json"
    passed, errors = ComplianceChecker.run_checker(str(path), ["imos:1.4"], 0, "normal", output_filename=str(out),
                                                   output_format="json")
    assert (passed, errors) == (False, False)
    report = json.loads(out.read_text())
    failing = [r for r in report["imos:1.4"]["high_priorities"] if r["value"][0] != r["value"][1]]
    assert [r["name"] for r in failing] == ["title"]
    assert any("empty" in m for m in failing[0]["msgs"])


def test_shared_dataset_variable_settings_are_restored(tmp_path):
    """The suites read values without masking valid_min/max but must not change the Dataset for other suites."""
    path = write(tmp_path, "1.4")
    cs = CheckSuite()
    ds = cs.load_dataset(str(path))
    try:
        cs.run_all(ds, ["imos:1.4"])
        assert ds.variables["TEMP"].mask is True and ds.variables["TEMP"].scale is True
        assert isinstance(ds.variables["TEMP"][:], np.ma.MaskedArray)
    finally:
        ds.close()
