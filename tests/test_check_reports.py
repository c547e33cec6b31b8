"""Compliance-checker reports are written inside the run's working folder (cleaned with it), never in a shared
temporary folder: real IMOS files, the real compliance checker, in process and in the capped child."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from ingest_helpers import BAD_PROFILE, IMOS_DIR

from aodncore.ingest import QUARANTINED, LandingObject
from aodncore.ingest.configure import build_settings
from aodncore.ingest.runner import ingest_object
from aodncore.pipeline.defaultconfig import default_pipeline_config
from aodncore.pipeline.steps import check


@pytest.fixture
def shared_tmp(tmp_path, monkeypatch):
    """The process's temporary folder, as a folder the test can inspect (it must stay empty)."""
    folder = tmp_path / "shared-tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _settings(tmp_path: Path, **limits):
    pipeline_config = default_pipeline_config(tmp_path / "base")
    if limits:
        pipeline_config.setdefault("limits", {}).update(limits)
    config_file = tmp_path / "pipeline.conf"
    config_file.write_text(json.dumps(pipeline_config))
    return build_settings(config_file=str(config_file), checks=["cf:1.6"])


def _land(tmp_path: Path) -> LandingObject:
    landing = tmp_path / "landing"
    landing.mkdir()
    return LandingObject.from_path(shutil.copy(IMOS_DIR / BAD_PROFILE, landing / BAD_PROFILE))


def _under(path: str, folder: str) -> bool:
    return os.path.commonpath([os.path.realpath(path), os.path.realpath(folder)]) == os.path.realpath(folder)


def test_reports_of_in_process_checks_are_written_in_the_handlers_working_folder(tmp_path, shared_tmp):
    settings = _settings(tmp_path, check_memory_bytes=0, check_timeout_seconds=0)  # no cap: checked in process
    reports = []

    def recording(run_checker):
        def run(*args, **kwargs):
            result = run_checker(*args, **kwargs)
            reports.append((kwargs["output_filename"], os.path.getsize(kwargs["output_filename"])))
            return result
        return run

    with mock.patch.object(check.ccfast, "run_checker", recording(check.ccfast.run_checker)):
        outcome = ingest_object(_land(tmp_path), settings)

    assert outcome.status == QUARANTINED and outcome.failed_checks == ["cf:1.6"], outcome
    assert outcome.files[0]["check_passed"] == "False"
    (report, size), = reports
    assert size > 0  # the checker wrote its report there, and the step read it back
    assert _under(report, settings.work_dir), (report, settings.work_dir)
    assert f"{os.sep}temp{os.sep}aodncore-cc-" in report  # the handler's own temporary folder
    assert not os.path.exists(report) and not os.path.exists(os.path.dirname(report))
    assert list(shared_tmp.iterdir()) == []


def test_reports_of_capped_checks_are_written_in_the_handlers_working_folder(tmp_path, shared_tmp):
    settings = _settings(tmp_path)  # default caps: each file is checked in a capped child process
    folders = []

    def recording(runner_class, params, path, caps, work_dir=None):
        folders.append(work_dir)
        assert os.path.isdir(work_dir) and os.listdir(work_dir) == []
        result = check_in_capped_child(runner_class, params, path, caps, work_dir=work_dir)
        assert os.listdir(work_dir) == []  # the child removed its report again
        return result

    check_in_capped_child = check.check_in_capped_child
    with mock.patch.object(check, "check_in_capped_child", recording):
        outcome = ingest_object(_land(tmp_path), settings)

    assert outcome.status == QUARANTINED and outcome.failed_checks == ["cf:1.6"], outcome
    (folder,) = folders
    assert _under(folder, settings.work_dir) and f"{os.sep}temp{os.sep}aodncore-cc-" in folder
    assert not os.path.exists(folder)  # made and removed by the parent: also when the child would be killed
    assert list(shared_tmp.iterdir()) == []


def test_a_runner_without_a_working_folder_uses_the_configured_tmp_dir(tmp_path, shared_tmp):
    from aodncore.pipeline.defaultconfig import default_config

    config = default_config(str(tmp_path / "base"))
    runner = check.ComplianceCheckerCheckRunner(config, None, {"checks": ["cf:1.6"]})
    assert runner.work_dir == config.pipeline_config["global"]["tmp_dir"]
    with mock.patch.object(tempfile, "mkstemp", wraps=tempfile.mkstemp) as mkstemp:
        result = runner.check_file(str(IMOS_DIR / BAD_PROFILE))
    assert not result.compliant and result.log
    (call,) = mkstemp.call_args_list
    assert _under(call.kwargs["dir"], runner.work_dir)
    assert os.listdir(runner.work_dir) == [] and list(shared_tmp.iterdir()) == []


def test_a_report_folder_given_by_the_caller_is_used_as_it_is(tmp_path, shared_tmp):
    """The capped child's folder is made for its one check (and removed by the parent): the child writes the
    checker's reports straight into it instead of making (and removing) a folder of its own inside."""
    from aodncore.pipeline.steps import checklimits

    folder = tmp_path / "for-this-check"
    folder.mkdir()
    runner = check.ComplianceCheckerCheckRunner(None, None, {"checks": ["cf:1.6"]}, work_dir=str(folder))
    with mock.patch.object(tempfile, "mkstemp", wraps=tempfile.mkstemp) as mkstemp, \
            mock.patch.object(tempfile, "TemporaryDirectory", wraps=tempfile.TemporaryDirectory) as made:
        given = runner.check_file(str(IMOS_DIR / BAD_PROFILE), report_folder=str(folder))
        default = runner.check_file(str(IMOS_DIR / BAD_PROFILE))
    def undated(log):  # the checker stamps each report with the second it was made
        return [re.sub(r"Report generated \S+", "Report generated <time>", line) for line in log]

    assert any("Report generated" in line for line in given.log)
    assert (given.compliant, undated(given.log), given.errors) == (default.compliant, undated(default.log),
                                                                    default.errors)
    assert not given.compliant and given.log
    first, second = mkstemp.call_args_list
    assert first.kwargs["dir"] == str(folder)  # straight in
    assert os.path.dirname(second.kwargs["dir"]) == str(folder)  # by default: a folder of its own inside
    assert made.call_count == 1 and os.listdir(folder) == []

    seen = []
    with mock.patch.object(check.ComplianceCheckerCheckRunner, "check_file",
                           lambda self, path, **kwargs: seen.append(kwargs) or default):
        checklimits._check_in_child(check.ComplianceCheckerCheckRunner, {"checks": ["cf:1.6"]}, "x.nc", str(folder))
        checklimits._check_in_child(check.ComplianceCheckerCheckRunner, {"checks": ["cf:1.6"]}, "x.nc")
    assert seen == [{"report_folder": str(folder)}, {}]
