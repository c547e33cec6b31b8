"""The pipeline check step uses the IMOS suites through check_params exactly like `cf` (issue 3, item 3)."""

from __future__ import annotations

import logging

import pytest
from checks_fixtures import imos_spec

from aodncore.checks.imos import Imos14Check
from aodncore.pipeline.exceptions import InvalidCheckSuiteError
from aodncore.pipeline.files import PipelineFileCollection
from aodncore.pipeline.steps.check import ComplianceCheckerCheckRunner

LOGGER = logging.getLogger("aodncore.tests.checks_pipeline")


@pytest.fixture(autouse=True)
def _offline_cf(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))


def check(paths, **params):
    runner = ComplianceCheckerCheckRunner(config=None, logger=LOGGER, check_params=params)
    collection = PipelineFileCollection([str(p) for p in paths])
    runner.run(collection)
    return [pf.check_result for pf in collection]


def good_file(tmp_path, version="1.4", name="good.nc"):
    return imos_spec(version).write(tmp_path / name)


def medium_defect_file(tmp_path):
    spec = imos_spec("1.4")
    spec.globals["author_email"] = "not-an-email"
    return spec.write(tmp_path / "medium.nc")


def test_good_files_pass_cf_and_imos(tmp_path):
    good14 = good_file(tmp_path)
    good13 = good_file(tmp_path, "1.3", "good13.nc")
    (result14,) = check([good14], checks=["cf:1.6", "imos:1.4"])
    (result13,) = check([good13], checks=["cf:1.6", "imos:1.3"])
    assert (result14.compliant, result14.errors) == (True, False)
    assert (result13.compliant, result13.errors) == (True, False)


def test_alias_and_ghrsst_suite_names_accepted(tmp_path):
    (result,) = check([good_file(tmp_path)], checks=["imos"])
    assert result.compliant
    runner = ComplianceCheckerCheckRunner(config=None, logger=LOGGER, check_params={"checks": ["ghrsst:1.0"]})
    assert runner.checks == ["ghrsst:1.0"]


def test_failure_log_names_the_failing_attribute(tmp_path):
    spec = imos_spec("1.4")
    del spec.globals["project"]
    (result,) = check([spec.write(tmp_path / "bad.nc")], checks=["cf:1.6", "imos:1.4"])
    assert not result.compliant and not result.errors
    log = "\n".join(result.log)
    assert "project" in log
    assert "imos:1.4" in log


@pytest.mark.parametrize(("criteria", "compliant"), [("lenient", True), ("normal", False), ("strict", False)])
def test_criteria_apply_to_imos_suites(tmp_path, criteria, compliant):
    (result,) = check([medium_defect_file(tmp_path)], checks=["imos:1.4"], criteria=criteria)
    assert result.compliant is compliant


def test_default_criteria_is_normal(tmp_path):
    (result,) = check([medium_defect_file(tmp_path)], checks=["imos:1.4"])
    assert not result.compliant


def test_skip_checks_apply_to_imos_suites(tmp_path):
    (result,) = check([medium_defect_file(tmp_path)], checks=["imos:1.4"],
                      skip_checks=["check_optional_global_attributes"])
    assert result.compliant


def test_unknown_suite_rejected(tmp_path):
    with pytest.raises(InvalidCheckSuiteError, match="imos:9.9"):
        ComplianceCheckerCheckRunner(config=None, logger=LOGGER, check_params={"checks": ["cf:1.6", "imos:9.9"]})
    with pytest.raises(InvalidCheckSuiteError, match="imos:latest"):  # the :latest alias went away in CC 6
        ComplianceCheckerCheckRunner(config=None, logger=LOGGER, check_params={"checks": ["imos:latest"]})


def test_non_netcdf_file_is_non_compliant_without_traceback(imos_file, caplog):
    path = imos_file("not_a_netcdf_file.nc")
    with caplog.at_level(logging.DEBUG):
        (result,) = check([path], checks=["cf:1.6", "imos:1.4"])
    assert result.compliant is False
    assert list(result.log) == ["invalid NetCDF file"]
    assert "Traceback" not in caplog.text


def test_check_that_raises_is_non_compliant_with_errors(tmp_path, monkeypatch, checks_in_process):
    def explode(self, ds):
        raise RuntimeError("boom from a broken check")

    monkeypatch.setattr(Imos14Check, "check_time_coverage", explode)
    (result,) = check([good_file(tmp_path)], checks=["imos:1.4"])
    assert result.compliant is False
    assert result.errors is True
    assert any("boom from a broken check" in line for line in result.log)


def test_real_files_through_the_step(imos_file):
    passing = imos_file("IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc")
    failing = imos_file("IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc")
    good, bad = check([passing, failing], checks=["cf:1.6", "imos:1.4"])
    assert (good.compliant, good.errors) == (True, False)
    assert (bad.compliant, bad.errors) == (False, False)
