"""ghrsst:1.0 suite (spec §2.4): good minimal L3-like grid and single-defect variants."""

from __future__ import annotations

import pytest
from checks_fixtures import Raw, ghrsst_spec, run_suite

from aodncore.checks.ghrsst import MANDATORY_VARIABLES, Ghrsst10Check


@pytest.fixture(autouse=True)
def _offline_cf(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))


def write(tmp_path, mutate=None):
    spec = ghrsst_spec()
    if mutate is not None:
        mutate(spec)
    return spec.write(tmp_path / "ghrsst.nc")


def test_check_methods_match_spec():
    assert {n for n in dir(Ghrsst10Check) if n.startswith("check_")} == {
        "check_global_attributes", "check_variable_attributes", "check_coordinate_variables",
        "check_variable_attribute_type", "check_data_variable_present", "check_data_variables",
        "check_time_variable", "check_mandatory_variables_exist",
    }


def test_good_grid_passes(tmp_path):
    outcome = run_suite(write(tmp_path), "ghrsst:1.0")
    assert outcome.verdicts == "PPP"
    assert not outcome.errors
    time_group = next(g for g in outcome.groups if g.name == "time" and g.weight == 2)
    assert "time units is correct" in time_group.msgs


def test_alias_resolves_to_1_0(tmp_path):
    assert run_suite(write(tmp_path), "ghrsst").verdicts == "PPP"


@pytest.mark.parametrize("name", MANDATORY_VARIABLES[3:])
def test_missing_mandatory_variable_is_high(tmp_path, name):
    outcome = run_suite(write(tmp_path, lambda s: s.variables.pop(name)), "ghrsst:1.0")
    assert set(outcome.failing) == {(name, 3)}
    assert name in outcome.messages(name)


def test_time_float64_is_medium(tmp_path):
    def float_time(s):
        s.variables["time"].dtype = "f8"

    outcome = run_suite(write(tmp_path, float_time), "ghrsst:1.0")
    assert outcome.verdicts == "PFF"
    assert set(outcome.failing) == {("time", 2)}


@pytest.mark.parametrize("units", ["days since 1981-01-01 00:00:00", "seconds since 1970-01-01 00:00:00",
                                   "seconds since 1981-01-01 00:00:00 UTC"])
def test_time_units_other_than_seconds_since_1981_is_medium(tmp_path, units):
    outcome = run_suite(write(tmp_path, lambda s: s.variables["time"].attrs.__setitem__("units", units)),
                        "ghrsst:1.0")
    assert outcome.verdicts == "PFF"
    assert "units" in outcome.messages("time")


@pytest.mark.parametrize("units", ["seconds since 1981-01-01", "seconds since 1981-01-01 00:00:00Z"])
def test_time_units_variants_accepted(tmp_path, units):
    outcome = run_suite(write(tmp_path, lambda s: s.variables["time"].attrs.__setitem__("units", units)),
                        "ghrsst:1.0")
    assert outcome.verdicts == "PPP"


def test_time_calendar_standard_is_high(tmp_path):
    outcome = run_suite(write(tmp_path, lambda s: s.variables["time"].attrs.__setitem__("calendar", "standard")),
                        "ghrsst:1.0")
    assert set(outcome.failing) == {("time", 3)}


def test_data_variable_units_and_coordinates(tmp_path):
    def break_sst(s):
        attrs = s.variables["sea_surface_temperature"].attrs
        del attrs["units"]
        attrs["coordinates"] = "time lat longitude"

    outcome = run_suite(write(tmp_path, break_sst), "ghrsst:1.0")
    assert set(outcome.failing) == {("sea_surface_temperature", 3)}
    messages = outcome.messages("sea_surface_temperature")
    assert "units" in messages and "coordinates" in messages


def test_non_monotonic_coordinate_and_attribute_type(tmp_path):
    def mutate(s):
        s.variables["lat"].data = [-35.0, -34.0, -34.5]
        s.variables["sses_bias"].attrs["valid_min"] = Raw(0.0)

    outcome = run_suite(write(tmp_path, mutate), "ghrsst:1.0")
    assert set(outcome.failing) == {("lat", 3), ("sses_bias", 3)}


def test_empty_attributes_fail(tmp_path):
    def mutate(s):
        s.globals["summary"] = ""
        s.variables["sst_dtime"].attrs["comment"] = ""

    outcome = run_suite(write(tmp_path, mutate), "ghrsst:1.0")
    assert set(outcome.failing) == {("summary", 3), ("sst_dtime", 3)}


def test_q8_kept_global_attributes_not_checked(tmp_path):
    def mutate(s):
        s.globals.clear()
        s.globals["project"] = "something else"

    assert run_suite(write(tmp_path, mutate), "ghrsst:1.0").verdicts == "PPP"


def test_no_imos_checks_in_ghrsst(tmp_path):
    """Lat/lon coverage, long_name, QC and acknowledgement belong to the IMOS suites only."""

    def mutate(s):
        for var in s.variables.values():
            var.attrs.pop("long_name", None)

    assert run_suite(write(tmp_path, mutate), "ghrsst:1.0").verdicts == "PPP"
