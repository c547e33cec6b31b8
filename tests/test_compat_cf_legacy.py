"""``legacy_cf_verdicts`` (compat addendum §10): compliance-checker 6.x stays the default; the switch restores the
CF verdicts of 5.0.1 on real IMOS files that 6.x newly refuses."""

from __future__ import annotations

import shutil
from functools import partial

import pytest
from ingest_helpers import IMOS_DIR

from aodncore.checks.cfcompat import (
    CF_1_6_CHECKS_ADDED_AFTER_5_0,
    CF_1_8_CHECKS_ADDED_AFTER_5_0,
    legacy_cf_params,
)
from aodncore.pipeline import HandlerBase, PipelineFilePublishType
from aodncore.pipeline.exceptions import ComplianceCheckFailedError
from aodncore.pipeline.schema import validate_check_params
from aodncore.pipeline.steps.check import ComplianceCheckerCheckRunner
from aodncore.testlib import HandlerTestCase

SRSALT = "IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc"  # missing_value != _FillValue (new in 5.1)
MET_REALTIME = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc"


class CheckedUploadHandler(HandlerBase):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_addition_publish_type = PipelineFilePublishType.UPLOAD_ONLY


LegacyCfHandler = partial(CheckedUploadHandler, harvest_type=None, dest_path_function="dest_path_testing",
                          check_params={"checks": ["cf:1.6"], "legacy_cf_verdicts": True})


class TestLegacyCfVerdictsInAHandler(HandlerTestCase):
    handler_class = LegacyCfHandler

    def test_files_refused_by_6x_pass_with_the_switch(self):
        for name in (SRSALT, MET_REALTIME):
            path = shutil.copy(IMOS_DIR / name, self.temp_dir)
            handler = self.run_handler(path)
            [checked] = handler.file_collection
            self.assertTrue(checked.check_result.compliant)
            self.assertTrue(checked.is_stored)

    def test_the_default_is_compliance_checker_6(self):
        path = shutil.copy(IMOS_DIR / SRSALT, self.temp_dir)
        handler = self.run_handler_with_exception(ComplianceCheckFailedError, path,
                                                  check_params={"checks": ["cf:1.6"]})
        [checked] = handler.file_collection
        self.assertIn("missing_value", "\n".join(checked.check_result.log))


def test_skip_list_and_bare_cf_mapping():
    checks, skips = legacy_cf_params(["cf", "imos:1.4", "cf:1.6"], ["check_convention_globals:M", "check_filename:M"])
    assert checks == ["cf:1.8", "imos:1.4", "cf:1.6"]
    assert skips[:2] == ["check_convention_globals:M", "check_filename:M"]  # the caller's entries win
    assert skips.count("check_filename:M") == 1 and "check_filename" not in skips
    expected = set(CF_1_6_CHECKS_ADDED_AFTER_5_0 + CF_1_8_CHECKS_ADDED_AFTER_5_0) - {"check_filename"}
    assert set(skips[2:]) == expected


def test_runner_applies_the_switch_and_the_schema_accepts_it():
    params = {"checks": ["cf"], "legacy_cf_verdicts": True, "skip_checks": ["check_convention_globals:M"]}
    validate_check_params(params)
    runner = ComplianceCheckerCheckRunner(None, None, params)
    assert runner.checks == ["cf:1.8"]
    assert len(runner.skip_checks) == 13
    default = ComplianceCheckerCheckRunner(None, None, {"checks": ["cf"]})
    assert (default.checks, default.skip_checks) == (["cf"], None)


@pytest.mark.parametrize(("module", "cls", "names"), [
    ("compliance_checker.cf.cf_1_6", "CF1_6Check", CF_1_6_CHECKS_ADDED_AFTER_5_0),
    ("compliance_checker.cf.cf_1_8", "CF1_8Check", CF_1_6_CHECKS_ADDED_AFTER_5_0 + CF_1_8_CHECKS_ADDED_AFTER_5_0),
])
def test_skipped_names_are_checks_of_the_installed_compliance_checker(module, cls, names):
    import importlib

    checker = getattr(importlib.import_module(module), cls)
    assert [name for name in names if not callable(getattr(checker, name, None))] == []


def test_cli_check_switch(capsys):
    from aodncore.cli import main

    assert main(["check", str(IMOS_DIR / SRSALT), "--check", "cf:1.6"]) == 1
    assert main(["check", str(IMOS_DIR / SRSALT), "--check", "cf:1.6", "--legacy-cf-verdicts"]) == 0
    assert "pass" in capsys.readouterr().out
