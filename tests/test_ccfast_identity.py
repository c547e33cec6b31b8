"""The compliance-checker fast path gives exactly compliance-checker's own results.

Proved on every real IMOS NetCDF file the tests have and on generated edge cases (tests/ccfast_cases.py): every
check name, score, weight, message and variable, every check that raised (with its message), the verdict and the
text/JSON reports under each criteria, with and without ``skip_checks``, and the check step's ``CheckResult`` on
both paths. The expensive plain runs are computed once per session and shared by the tests.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from ccfast_cases import CASES, write_cases
from ccfast_helpers import comparable, fast_run_all, plain_run_all, rendered_reports, serialise
from conftest import IMOS_DIR

from aodncore.checks import ccfast
from aodncore.pipeline.steps import check as check_module
from aodncore.pipeline.steps.check import ComplianceCheckerCheckRunner

REAL_FILES = sorted(p for p in IMOS_DIR.glob("*.nc") if p.name != "not_a_netcdf_file.nc")
PIPELINE_SUITES = ["cf:1.6", "imos:1.4"]
CRITERIA = ("lenient", "normal", "strict")
# the checks added to cf:1.6 since compliance-checker 5.0.1 (compat addendum §10), at mixed levels, plus one
# unknown name and the skip spelling of master's own tests
DRIFT_SKIPS = ["check_invalid_coordinate_attr", "check_fill_value_equal_missing_value:M",
               "check_coordinate_variables_strict_monotonicity:L", "check_coordinates_attribute_format:A",
               "check_valid_range_and_valid_min_max_present", "check_spatiotemporal_dims_have_coordinate_vars",
               "check_filename", "check_convention_globals:M", "check_no_such_thing", "check_units:X"]


@pytest.fixture(scope="session", autouse=True)
def offline_cf_tables(tmp_path_factory):
    # the CF checker may try to download a standard-name table into $XDG_DATA_HOME; keep that local
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))
        yield


@pytest.fixture(scope="session")
def fast_path_ready():
    assert ccfast.install(), "the installed compliance-checker must be a verified version for these tests"
    ComplianceCheckerCheckRunner(None, None, {"checks": ["cf:1.6"]})  # loads the suites


class _Capture:
    """Records the score groups every ``run_checker`` call of the check step produced (plain and fast)."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        runner = check_module._compliance_checker()
        original = runner.check_errors.__func__
        self.groups: list[dict] = []

        def check_errors(cls, score_groups, verbose):
            self.groups.append(score_groups)
            return original(cls, score_groups, verbose)

        mp.setattr(runner, "check_errors", classmethod(check_errors))


@pytest.fixture(scope="session")
def real_runs(fast_path_ready):
    """Per real file: the check step's results and score groups on both paths (cf:1.6 + imos:1.4, normal), and
    plain/fast ``run_all`` with the default ``cf`` (the newest CF version)."""
    params = {"checks": PIPELINE_SUITES}
    plain_runner = ComplianceCheckerCheckRunner(None, None, dict(params, cc_fast_path=False))
    fast_runner = ComplianceCheckerCheckRunner(None, None, params)
    assert fast_runner.fast_path and not plain_runner.fast_path
    runs = {}
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        capture = _Capture(mp)
        for path in REAL_FILES:
            entry = {}
            for label, runner in (("plain", plain_runner), ("fast", fast_runner)):
                capture.groups.clear()
                result = runner.check_file(str(path))
                merged = {}
                for groups in capture.groups:
                    merged.update(groups)
                entry[label] = {"result": result, "groups": merged}
            entry["cf_plain"] = plain_run_all(str(path), ["cf"])
            entry["cf_fast"] = fast_run_all(str(path), ["cf"])
            runs[path.name] = entry
    return runs


def test_every_real_file_is_covered(real_runs):
    assert len(REAL_FILES) >= 19
    assert set(real_runs) == {p.name for p in REAL_FILES}


@pytest.mark.parametrize("name", [p.name for p in REAL_FILES])
def test_real_file_identical_results(real_runs, name):
    entry = real_runs[name]
    plain, fast = serialise(entry["plain"]["groups"]), serialise(entry["fast"]["groups"])
    assert set(plain) == set(PIPELINE_SUITES)
    assert fast == plain
    assert comparable(entry["fast"]["result"]) == comparable(entry["plain"]["result"])
    assert entry["cf_fast"][1] == entry["cf_plain"][1]
    assert "cf" in entry["cf_plain"][1]  # the default CF suite really ran


@pytest.mark.parametrize("criteria", CRITERIA)
def test_real_files_identical_reports_under_every_criteria(real_runs, criteria):
    verdicts = set()
    for name, entry in real_runs.items():
        for plain_groups, fast_groups in ((entry["plain"]["groups"], entry["fast"]["groups"]),
                                          (entry["cf_plain"][0], entry["cf_fast"][0])):
            plain = rendered_reports(name, plain_groups, criteria)
            assert rendered_reports(name, fast_groups, criteria) == plain, name
            verdicts.add(plain["passed"])
    assert verdicts == {True, False}  # the real files include passing and failing ones under every criteria


@pytest.mark.parametrize("criteria", CRITERIA)
def test_check_step_identical_on_both_paths(imos_dir, criteria):
    names = ["IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc",  # fails cf:1.6 normal, passes lenient
             "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc",
             "not_a_netcdf_file.nc"]
    output_formats = ("text", "json", "html") if criteria == "normal" else ("text",)
    for output_format in output_formats:
        params = {"checks": PIPELINE_SUITES, "criteria": criteria, "output_format": output_format,
                  "skip_checks": ["check_convention_globals:M"]}
        plain = ComplianceCheckerCheckRunner(None, None, dict(params, cc_fast_path=False))
        fast = ComplianceCheckerCheckRunner(None, None, params)
        for name in names:
            path = str(imos_dir / name)
            assert comparable(fast.check_file(path)) == comparable(plain.check_file(path)), (name, output_format)


@pytest.mark.parametrize("fast", [True, False])
def test_capped_check_step_identical_and_keeps_the_switch(imos_dir, fast):
    # the step checks each file in a capped child process rebuilt from _child_params(): same results, same path
    params = {"checks": PIPELINE_SUITES, "cc_fast_path": fast}
    runner = ComplianceCheckerCheckRunner(None, None, params)
    assert runner.fast_path is fast
    child_params = runner._child_params()
    assert ComplianceCheckerCheckRunner(None, None, child_params).fast_path is fast
    reference = ComplianceCheckerCheckRunner(None, None, dict(params, cc_fast_path=False))
    for name in ("IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc",
                 "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV01_Profile-SBE-19plus_C-20160524T003914Z.nc"):
        path = str(imos_dir / name)
        capped = runner.check_file_within_limits(path)
        assert type(capped).__name__ == "CheckResult"
        assert comparable(capped) == comparable(reference.check_file(path)), name


def test_check_step_identical_with_legacy_cf_verdicts(imos_dir):
    params = {"checks": ["cf", "cf:1.6", "imos:1.4"], "legacy_cf_verdicts": True}
    plain = ComplianceCheckerCheckRunner(None, None, dict(params, cc_fast_path=False))
    fast = ComplianceCheckerCheckRunner(None, None, params)
    for name in ("IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc",
                 "IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc"):
        path = str(imos_dir / name)
        assert comparable(fast.check_file(path)) == comparable(plain.check_file(path)), name


@pytest.mark.parametrize("name", ["IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc",
                                  "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc",
                                  "IMOS_ACORN_V_20101201T050000Z_BONC_FV00_sea-state.nc"])
def test_real_file_identical_with_skip_checks(fast_path_ready, name):
    path = str(IMOS_DIR / name)
    plain = plain_run_all(path, ["cf:1.6"], skip_checks=DRIFT_SKIPS)
    assert fast_run_all(path, ["cf:1.6"], skip_checks=DRIFT_SKIPS)[1] == plain[1]
    include = ["check_units", "check_standard_name", "check_coordinate_types"]
    assert fast_run_all(path, ["cf:1.6"], include_checks=include)[1] == plain_run_all(path, ["cf:1.6"],
                                                                                      include_checks=include)[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in REAL_FILES])
def test_real_file_identical_with_skip_checks_all_files(fast_path_ready, name):
    path = str(IMOS_DIR / name)
    plain = plain_run_all(path, ["cf:1.6"], skip_checks=DRIFT_SKIPS)
    assert fast_run_all(path, ["cf:1.6"], skip_checks=DRIFT_SKIPS)[1] == plain[1]


# ---------------------------------------------------------------------------------------------------------------
# generated edge cases
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def case_files(tmp_path_factory) -> dict[str, Path]:
    return {path.stem: path for path in write_cases(tmp_path_factory.mktemp("ccfast-cases"))}


@pytest.fixture(scope="session")
def case_runs(fast_path_ready, case_files):
    cache: dict = {}

    def get(name: str, suite: str, skip: tuple | None = None):
        key = (name, suite, skip)
        if key not in cache:
            path = str(case_files[name])
            skip_checks = list(skip) if skip is not None else None
            cache[key] = (plain_run_all(path, [suite], skip_checks), fast_run_all(path, [suite], skip_checks))
        return cache[key]

    return get


@pytest.mark.parametrize("suite", ["cf:1.6", "cf:1.8", "cf", "imos:1.4", "ghrsst:1.0"])
@pytest.mark.parametrize("name", list(CASES))
def test_generated_case_identical(case_runs, name, suite):
    (plain_groups, plain), (fast_groups, fast) = case_runs(name, suite)
    assert fast == plain
    for criteria in CRITERIA:
        assert rendered_reports(name, fast_groups, criteria) == rendered_reports(name, plain_groups, criteria)


@pytest.mark.slow
@pytest.mark.parametrize("suite", ["cf:1.7", "cf:1.9", "cf:1.10"])
@pytest.mark.parametrize("name", list(CASES))
def test_generated_case_identical_other_cf_versions(case_runs, name, suite):
    assert case_runs(name, suite)[1][1] == case_runs(name, suite)[0][1]


@pytest.mark.parametrize("name", list(CASES))
def test_generated_case_identical_with_skip_checks(case_runs, name):
    plain, fast = case_runs(name, "cf:1.6", tuple(DRIFT_SKIPS))
    assert fast[1] == plain[1]


def test_generated_cases_reach_the_interesting_paths(case_runs):
    # the cases are only worth something if compliance-checker really takes odd paths on them
    outcomes = {name: case_runs(name, "cf")[0][1] for name in CASES}
    raised_in_setup = [name for name, outcome in outcomes.items() if "raised" in outcome]
    checks_that_raised = {check for outcome in outcomes.values() if "cf" in outcome for check in outcome["cf"][1]}
    assert raised_in_setup == ["attribute_array_axis_raises"]
    assert {"check_reduced_horizontal_grid", "check_grid_coordinates"} <= checks_that_raised
    failing = {name for name, outcome in outcomes.items() if "cf" in outcome
               and any(group["value"][0] != group["value"][1] for group in outcome["cf"][0])}
    assert len(failing) >= len(CASES) - 2
