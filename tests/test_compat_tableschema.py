"""``tableschema_filename_pattern`` and the table-schema check's result and log format (compat addendum §3),
through a real handler-style partial run by ``HandlerTestCase``."""

from __future__ import annotations

import logging
import os
import re
import textwrap
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

from aodncore.pipeline import HandlerBase, PipelineFileCheckType, PipelineFilePublishType
from aodncore.pipeline.common import FileType
from aodncore.pipeline.exceptions import ComplianceCheckFailedError
from aodncore.pipeline.log import SYSINFO
from aodncore.pipeline.schema import validate_check_params
from aodncore.pipeline.steps.check import TableSchemaCheckRunner, get_child_check_runner
from aodncore.testlib import HandlerTestCase
from aodncore.testlib.testutil import (
    GLOBAL_TEST_BASE,
    TESTLIB_CONF_DIR,
    load_runtime_patched_pipeline_config_file,
)

ACOUSTIC_SCHEMA = textwrap.dedent("""\
    name: imos_atf_acoustic_detections
    schema:
      fields:
        - {name: transmitter_id, type: string, constraints: {required: true}}
        - {name: detection_datetime, type: datetime, format: "%Y-%m-%dT%H:%M:%SZ"}
        - {name: latitude, type: number}
        - {name: longitude, type: number}
    """)
HEADER = "transmitter_id,detection_datetime,latitude,longitude\n"
GOOD_ROW = "A69-1303-12345,2020-01-01T10:20:30Z,-33.9,151.2\n"


def _bad_rows(count: int) -> str:
    return "".join(f"A69-1303-{i},not-a-date,-33.9,151.2\n" for i in range(count))


def acoustic_dest_path(path: str) -> str:
    return f"IMOS/AATAMS/ACOUSTIC/{os.path.basename(path)}"


class AcousticHandler(HandlerBase):
    """CSV detections: every CSV gets the table-schema check."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_addition_publish_type = PipelineFilePublishType.UPLOAD_ONLY

    def preprocess(self):
        for pipeline_file in self.file_collection:
            if pipeline_file.file_type is FileType.CSV:
                pipeline_file.check_type = PipelineFileCheckType.TABLE_SCHEMA_CHECK


AcousticDetectionsHandler = partial(
    AcousticHandler,
    allowed_extensions=[".csv"],
    check_params={"tableschema_filename_pattern": "^IMOS_ATF-ACOUSTIC"},
    dest_path_function=acoustic_dest_path,
    harvest_type=None,
)


class TestAcousticTableSchemaPattern(HandlerTestCase):
    handler_class = AcousticDetectionsHandler

    def setUp(self):
        super().setUp()
        schemas = Path(self.temp_dir, "schemas", "acoustic")
        schemas.mkdir(parents=True)
        (schemas / "IMOS_ATF-ACOUSTIC.resource.yaml").write_text(ACOUSTIC_SCHEMA)
        pipeline_config = load_runtime_patched_pipeline_config_file(
            os.path.join(TESTLIB_CONF_DIR, "pipeline.conf"), GLOBAL_TEST_BASE, self.temp_dir,
            additional_patch={"harvester": {"config_dir": self.temp_dir,
                                            "schema_base_dir": str(schemas.parent)}})
        self.config.__dict__["pipeline_config"] = pipeline_config

    def _csv(self, name: str, body: str) -> str:
        path = Path(self.temp_dir, name)
        path.write_text(HEADER + body)
        return str(path)

    def test_pattern_finds_the_shared_schema(self):
        path = self._csv("IMOS_ATF-ACOUSTIC_TAGID_12345_20200101.csv", GOOD_ROW * 3)
        with self.assertLogs("unittest", level=SYSINFO) as logs:
            handler = self.run_handler(path, celery_task=SimpleNamespace(logger=self.test_logger))
        [csv_file] = handler.file_collection
        self.assertTrue(csv_file.check_result.compliant)
        self.assertEqual(csv_file.dest_path, "IMOS/AATAMS/ACOUSTIC/IMOS_ATF-ACOUSTIC_TAGID_12345_20200101.csv")
        messages = [record.getMessage() for record in logs.records]
        self.assertIn("Schema matching pattern is '^IMOS_ATF-ACOUSTIC'", messages)
        self.assertIn(f"checking that '{csv_file.src_path}' is valid", messages)
        self.assertTrue(any(m.startswith("schema file: ") and m.endswith("IMOS_ATF-ACOUSTIC.resource.yaml")
                            for m in messages))

    def test_row_errors_are_capped_with_a_summary(self):
        path = self._csv("IMOS_ATF-ACOUSTIC_TAGID_777_20200102.csv", GOOD_ROW + _bad_rows(17))
        handler = self.run_handler_with_exception(ComplianceCheckFailedError, path)
        [csv_file] = handler.file_collection
        result = csv_file.check_result
        self.assertFalse(result.compliant)
        self.assertFalse(result.errors)
        self.assertIsInstance(result.log, list)
        self.assertEqual(len(result.log), 11)
        self.assertEqual(result.log[-1], "(Listing first 10 errors out of 17)")
        self.assertRegex(result.log[0], r"^Exception: .*row \"3\".*\nError Data:  detection_datetime: not-a-date\n$")
        self.assertNotIn("Row Data", result.log[0])

    def test_without_the_pattern_the_whole_stem_is_searched(self):
        path = self._csv("IMOS_ATF-ACOUSTIC_TAGID_12345_20200101.csv", GOOD_ROW)
        handler = self.run_handler_with_exception(ComplianceCheckFailedError, path, check_params={})
        [csv_file] = handler.file_collection
        self.assertEqual(dict(csv_file.check_result), {
            "compliant": False, "errors": True,
            "log": ("could not find schema definition matching 'IMOS_ATF-ACOUSTIC_TAGID_12345_20200101'",)})


def _runner(schema_dir: Path, pattern: str | None = None, logger=None) -> TableSchemaCheckRunner:
    config = SimpleNamespace(pipeline_config={"harvester": {"schema_base_dir": str(schema_dir)}})
    params = {} if pattern is None else {"tableschema_filename_pattern": pattern}
    return get_child_check_runner(PipelineFileCheckType.TABLE_SCHEMA_CHECK, config, logger, params)


def test_check_params_accept_the_pattern():
    validate_check_params({"checks": ["cf:1.6"], "tableschema_filename_pattern": "^IMOS_ATF-ACOUSTIC"})


def test_runner_state_and_pattern_shortening(tmp_path):
    (tmp_path / "test_frictionless.resource.yaml").write_text(ACOUSTIC_SCHEMA)
    (tmp_path / "test_frictionless.schema.yaml").write_text("fields: not-a-list\n")  # sorts later: never used
    runner = _runner(tmp_path, r"[^_]*(_[^_]*)?", logging.getLogger("test"))
    assert isinstance(runner, TableSchemaCheckRunner)
    assert runner.tableschema_filename_pattern == re.compile(r"[^_]*(_[^_]*)?")
    assert (runner.compliance_log, runner.compliant, runner.errors) == ([], True, False)
    assert runner.schema_search_text("/x/test_frictionless_subset1.csv") == "test_frictionless"
    expected = str(tmp_path / "test_frictionless.resource.yaml")
    assert runner.find_schema_file("/x/test_frictionless_subset1.csv") == expected

    csv = tmp_path / "test_frictionless_subset1.csv"
    csv.write_text(HEADER + _bad_rows(10))
    assert runner.validate(str(csv)) is None
    assert runner.compliant is False and runner.errors is False
    assert len(runner.compliance_log) == 10  # exactly ten: no summary line

    csv.write_text(HEADER + GOOD_ROW)
    runner.validate(str(csv))  # state is reset by each validate()
    assert (runner.compliance_log, runner.compliant, runner.errors) == ([], True, False)

    missing = tmp_path / "missing_schema.csv"
    missing.write_text(HEADER)
    for pattern in (None, "^NOMATCH"):
        runner = _runner(tmp_path, pattern)
        runner.validate(str(missing))
        assert runner.compliance_log == ("could not find schema definition matching 'missing_schema'",)
        assert runner.compliant is False and runner.errors is True


def test_an_invalid_pattern_fails_at_construction(tmp_path):
    with pytest.raises(re.error):
        _runner(tmp_path, "([unclosed")


def test_the_compliance_runner_ignores_the_pattern():
    runner = get_child_check_runner(PipelineFileCheckType.NC_COMPLIANCE_CHECK, None, None,
                                    {"checks": ["cf:1.6"], "tableschema_filename_pattern": "^X"})
    assert runner.checks == ["cf:1.6"]
