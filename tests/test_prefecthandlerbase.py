"""``aodncore.pipeline.prefecthandlerbase.PrefectHandlerBase`` against a real S3 endpoint (moto server): landing
objects are published or quarantined and only then deleted, system errors keep them, no hidden set-up."""

from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest

from aodncore.ingest.quarantine import reason_path_for
from aodncore.pipeline.common import HandlerResult, PipelineFilePublishType
from aodncore.pipeline.exceptions import (
    ComplianceCheckFailedError,
    InvalidFileContentError,
    InvalidInputFileError,
)
from aodncore.pipeline.handlerbase import HandlerBase
from aodncore.pipeline.prefecthandlerbase import PrefectHandlerBase
from aodncore.testlib import dest_path_testing, get_test_config

GOOD_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc"
LANDING = "landing"


class UploadHandler(PrefectHandlerBase):
    """Uploads every file under ``IMOS/<name>`` (no harvester)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("harvest_type", None)
        super().__init__(*args, **kwargs)
        self.default_addition_publish_type = PipelineFilePublishType.UPLOAD_ONLY

    @staticmethod
    def dest_path(path):
        return os.path.join("IMOS", os.path.basename(path))


class ContentErrorHandler(UploadHandler):
    def process(self):
        raise InvalidFileContentError(f"'{self.file_basename}' has unusable content")


class SystemErrorHandler(UploadHandler):
    def process(self):
        raise RuntimeError("the database is down")


def _dir(uri: str) -> str:
    assert uri.startswith("file://")
    return uri[len("file://"):]


def make_config(tmp_path, **global_overrides):
    """The test configuration with its archive store in ``tmp_path`` (plus any ``global`` overrides)."""
    from aodncore.testlib.testutil import GLOBAL_TEST_BASE, TESTLIB_CONF_DIR, load_runtime_patched_pipeline_config_file

    config = get_test_config(str(tmp_path))
    global_section = dict(config.pipeline_config["global"].items())
    global_section["archive_uri"] = f"file://{tmp_path}/archive"
    global_section.update(global_overrides)
    config.__dict__["pipeline_config"] = load_runtime_patched_pipeline_config_file(
        os.path.join(TESTLIB_CONF_DIR, "pipeline.conf"), GLOBAL_TEST_BASE, str(tmp_path),
        additional_patch={"global": global_section},
    )
    return config


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path)


@pytest.fixture
def landing(s3):
    s3.create_bucket(Bucket=LANDING)

    def put(local_path, key):
        with open(local_path, "rb") as handle:
            s3.put_object(Bucket=LANDING, Key=key, Body=handle.read())
        return f"s3://{LANDING}/{key}", s3.head_object(Bucket=LANDING, Key=key)["ETag"].strip('"')

    return put


def _exists(s3, key, bucket=LANDING) -> bool:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key)
    return any(entry["Key"] == key for entry in listing.get("Contents", []))


def _read(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _error_store_files(config):
    error_dir = _dir(config.pipeline_config["global"]["error_uri"])
    found = []
    for root, _dirs, files in os.walk(error_dir):
        found.extend(os.path.relpath(os.path.join(root, name), error_dir) for name in files)
    return error_dir, sorted(found)


def test_import_path_and_subclass():
    import aodncore.pipeline.prefecthandlerbase as module

    assert module.PrefectHandlerBase is PrefectHandlerBase
    assert issubclass(PrefectHandlerBase, HandlerBase)


def test_good_netcdf_from_landing_is_published_and_landing_deleted(s3, landing, config, imos_dir):
    source = imos_dir / GOOD_NC
    url, etag = landing(source, f"incoming/{GOOD_NC}")
    handler = UploadHandler(url, config=config)
    handler.run()
    assert handler.error is None, handler.error_details
    assert handler.result is HandlerResult.SUCCESS
    assert handler.state == "HANDLER_COMPLETED_SUCCESS"
    # the ETag was found without the caller setting it; it is the MD5 of the bytes for a single-part upload
    assert handler.file_checksum == etag == hashlib.md5(_read(source)).hexdigest()
    assert handler.file_basename == GOOD_NC
    assert handler.file_extension == ".nc"
    published = handler.file_collection[0]
    assert published.is_stored and published.dest_path == f"IMOS/{GOOD_NC}"
    stored = os.path.join(_dir(config.pipeline_config["global"]["upload_uri"]), "IMOS", GOOD_NC)
    assert _read(stored) == _read(source)
    assert not _exists(s3, f"incoming/{GOOD_NC}")
    assert _error_store_files(config)[1] == []
    assert not os.path.exists(handler.instance_working_directory)


def test_etag_given_by_caller_is_used(s3, landing, config, imos_dir):
    url, etag = landing(imos_dir / GOOD_NC, GOOD_NC)
    handler = UploadHandler(url, config=config, etag=f'"{etag}"')
    handler.run()
    assert handler.error is None, handler.error_details
    assert handler.file_checksum == etag
    assert not _exists(s3, GOOD_NC)


def test_landing_object_replaced_during_run_is_not_deleted(s3, landing, config, imos_dir, tmp_path):
    url, _etag = landing(imos_dir / GOOD_NC, GOOD_NC)
    newer = tmp_path / "newer.nc"
    newer.write_bytes(_read(imos_dir / GOOD_NC) + b"\0")
    handler = UploadHandler(url, config=config)

    def postprocess():
        landing(newer, GOOD_NC)  # a new version lands while the old one is being published

    handler.postprocess = postprocess
    handler.run()
    assert handler.error is None, handler.error_details
    assert _exists(s3, GOOD_NC)
    assert s3.get_object(Bucket=LANDING, Key=GOOD_NC)["Body"].read() == newer.read_bytes()


def test_landing_object_replaced_before_download_is_not_processed(s3, landing, config, imos_dir, tmp_path):
    url, _etag = landing(imos_dir / GOOD_NC, GOOD_NC)
    newer = tmp_path / "newer.nc"
    newer.write_bytes(_read(imos_dir / GOOD_NC) + b"\0")
    handler = UploadHandler(url, config=config)
    original_resolve = handler._resolve

    def resolve():
        landing(newer, GOOD_NC)  # replaced after the ETag was read, before the download
        original_resolve()

    handler._resolve = resolve
    handler.run()
    assert isinstance(handler.error, InvalidInputFileError)
    assert "no longer has ETag" in str(handler.error)
    assert s3.get_object(Bucket=LANDING, Key=GOOD_NC)["Body"].read() == newer.read_bytes()
    assert os.listdir(_dir(config.pipeline_config["global"]["upload_uri"])) == []


def test_not_a_netcdf_with_cf_check_is_quarantined(s3, landing, config, imos_dir):
    source = imos_dir / "not_a_netcdf_file.nc"
    url, etag = landing(source, "incoming/not_a_netcdf_file.nc")
    handler = UploadHandler(url, config=config, check_params={"checks": ["cf:1.6"]})
    handler.run()
    assert isinstance(handler.error, ComplianceCheckFailedError)
    assert handler.error_details == str(handler.error)  # user error
    assert not _exists(s3, "incoming/not_a_netcdf_file.nc")
    assert os.listdir(_dir(config.pipeline_config["global"]["upload_uri"])) == []

    error_dir, files = _error_store_files(config)
    data_files = [f for f in files if not f.endswith(".reason.json")]
    sidecars = [f for f in files if f.endswith(".reason.json")]
    assert len(data_files) == 1 and len(sidecars) == 1
    stored = data_files[0]
    assert os.path.basename(stored) == "not_a_netcdf_file.nc"  # <id>/<name>: name and extension kept
    assert sidecars[0] == reason_path_for(stored)
    assert _read(os.path.join(error_dir, stored)) == _read(source)
    with open(os.path.join(error_dir, sidecars[0])) as handle:
        reason = json.load(handle)
    assert reason["source"] == url
    assert reason["fingerprint"] == etag
    assert reason["error_type"] == "user"
    assert reason["error_class"] == "ComplianceCheckFailedError"
    assert "not_a_netcdf_file.nc" in reason["reason"]
    assert reason["failed_checks"] and reason["failed_checks"][0]["name"] == "not_a_netcdf_file.nc"


def test_content_error_in_process_is_quarantined(s3, landing, config, imos_dir):
    source = imos_dir / GOOD_NC
    url, _etag = landing(source, GOOD_NC)
    handler = ContentErrorHandler(url, config=config)
    handler.run()
    assert isinstance(handler.error, InvalidFileContentError)
    assert not _exists(s3, GOOD_NC)
    error_dir, files = _error_store_files(config)
    assert len(files) == 2
    stored = next(f for f in files if not f.endswith(".reason.json"))
    assert _read(os.path.join(error_dir, stored)) == _read(source)
    assert reason_path_for(stored) in files
    assert os.listdir(_dir(config.pipeline_config["global"]["upload_uri"])) == []


def test_system_error_keeps_landing_object(s3, landing, config, imos_dir):
    url, _etag = landing(imos_dir / GOOD_NC, GOOD_NC)
    handler = SystemErrorHandler(url, config=config)
    handler.run()
    assert isinstance(handler.error, RuntimeError)
    assert handler.error_details.startswith("Traceback")
    assert _exists(s3, GOOD_NC)
    assert _error_store_files(config)[1] == []
    assert not os.path.exists(handler.instance_working_directory)


def test_missing_landing_object_is_a_system_error(s3, config):
    s3.create_bucket(Bucket=LANDING)
    handler = UploadHandler(f"s3://{LANDING}/no/such/key.nc", config=config)
    handler.run()
    assert isinstance(handler.error, InvalidInputFileError)
    assert _error_store_files(config)[1] == []


def test_zip_from_landing(s3, landing, config, imos_dir):
    url, _etag = landing(imos_dir / "good_and_bad.zip", "incoming/good_and_bad.zip")
    handler = UploadHandler(url, config=config)
    handler.run()
    assert handler.error is None, handler.error_details
    assert len(handler.file_collection) == 2
    assert all(f.is_stored for f in handler.file_collection)
    assert not _exists(s3, "incoming/good_and_bad.zip")


def test_archive_input_file_with_s3_input(s3, landing, config, imos_dir):
    source = imos_dir / "good_and_bad.zip"
    url, _etag = landing(source, "incoming/good_and_bad.zip")
    handler = UploadHandler(url, config=config, archive_input_file=True)
    handler.input_file_archive_path = "originals/good_and_bad.zip"
    handler.run()
    assert handler.error is None, handler.error_details
    archive_dir = _dir(config.pipeline_config["global"]["archive_uri"])
    assert _read(os.path.join(archive_dir, "originals", "good_and_bad.zip")) == _read(source)
    assert not _exists(s3, "incoming/good_and_bad.zip")


def test_archive_input_file_default_path_with_s3_input(s3, landing, config, imos_dir):
    source = imos_dir / GOOD_NC
    url, _etag = landing(source, f"deep/dir/{GOOD_NC}")
    handler = UploadHandler(url, config=config, archive_input_file=True)
    assert handler.input_file_archive_path == f"NO_PIPELINE/{GOOD_NC}"
    handler.run()
    assert handler.error is None, handler.error_details
    archive_dir = _dir(config.pipeline_config["global"]["archive_uri"])
    assert _read(os.path.join(archive_dir, "NO_PIPELINE", GOOD_NC)) == _read(source)
    assert handler.file_collection[0].is_stored


def test_key_with_hash_and_question_mark(s3, landing, config, imos_dir):
    """'#' and '?' are ordinary characters of an S3 key, not a URL fragment or query."""
    source = imos_dir / GOOD_NC
    decoy_url, _ = landing(source, "incoming/file ")  # what a URL parser would make of the key below
    url, etag = landing(source, "incoming/file #1?v=2.nc")
    handler = UploadHandler(url, config=config)
    handler.run()
    assert handler.error is None, handler.error_details
    assert handler.file_checksum == etag
    assert handler.file_collection[0].name == "file #1?v=2.nc"
    assert not _exists(s3, "incoming/file #1?v=2.nc")
    assert _exists(s3, "incoming/file ")  # the other object is untouched


def test_str_before_run_and_no_init_logger_needed(config, imos_file):
    path = str(imos_file(GOOD_NC))
    handler = UploadHandler(path, config=config)
    text = str(handler)  # no _pipeline_name / init_logger ordering trap
    assert text.startswith("UploadHandler({")
    assert "'input_file_archive_path': 'NO_PIPELINE/" in text
    assert handler.logger is not None  # logger works without init_logger
    handler.logger.sysinfo("sysinfo works")


def test_local_input_is_processed_and_kept(config, imos_file):
    path = str(imos_file(GOOD_NC))
    handler = UploadHandler(path, config=config)
    handler.run()
    assert handler.error is None, handler.error_details
    assert os.path.isfile(path)  # never deleted
    from aodncore.util import get_file_checksum

    assert handler.file_checksum == get_file_checksum(path)


def test_init_logger_with_logging_getlogger(config, imos_file, caplog):
    path = str(imos_file(GOOD_NC))
    handler = UploadHandler(path, config=config, dest_path_function=dest_path_testing)
    handler.init_logger(logging.getLogger)  # logger_function(None) -> the root logger
    assert handler.logger.logger is logging.getLogger()
    with caplog.at_level(logging.INFO):
        handler.run()
    assert handler.error is None, handler.error_details
    assert any(r.name == "root" and r.getMessage().startswith("running UploadHandler on ") for r in caplog.records)
    assert handler.celery_task_name == "NO_TASK"
    assert handler.celery_task_id is None


def test_unknown_keyword_still_a_type_error(config, imos_file):
    with pytest.raises(TypeError):
        UploadHandler(str(imos_file(GOOD_NC)), config=config, no_such_option=1)


def test_quarantine_failure_keeps_landing_object(s3, landing, tmp_path, imos_dir):
    """If the refused file cannot be stored in the error store, the landing object stays."""
    config = make_config(tmp_path, error_uri="s3://no-such-error-bucket")
    url, _etag = landing(imos_dir / GOOD_NC, GOOD_NC)
    handler = ContentErrorHandler(url, config=config)
    handler.run()
    assert isinstance(handler.error, InvalidFileContentError)
    assert _exists(s3, GOOD_NC)


def test_quarantine_to_s3_error_store(s3, landing, tmp_path, imos_dir):
    s3.create_bucket(Bucket="errors")
    config = make_config(tmp_path, error_uri="s3://errors/refused")
    source = imos_dir / GOOD_NC
    url, _etag = landing(source, GOOD_NC)
    handler = ContentErrorHandler(url, config=config)
    handler.run()
    assert isinstance(handler.error, InvalidFileContentError)
    keys = sorted(entry["Key"] for entry in s3.list_objects_v2(Bucket="errors").get("Contents", []))
    assert len(keys) == 2
    data_key = next(key for key in keys if not key.endswith(".reason.json"))
    assert data_key.startswith("refused/NO_PIPELINE/") and data_key.endswith("/" + GOOD_NC)
    assert reason_path_for(data_key) in keys
    assert s3.get_object(Bucket="errors", Key=data_key)["Body"].read() == _read(source)
    assert not _exists(s3, GOOD_NC)


@pytest.mark.prefect
def test_logs_go_to_the_prefect_run_logger(prefect_harness, config, imos_file):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    path = str(imos_file(GOOD_NC))

    @flow
    def ingest_one():
        handler = UploadHandler(path, config=config)
        handler.run()
        assert handler.error is None, handler.error_details
        return handler.result

    state = ingest_one(return_state=True)
    assert state.is_completed(), state
    APILogWorker.drain_all(timeout=30)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    messages = [log.message for log in logs]
    assert any(message == f"running UploadHandler on '{path}'" for message in messages), messages
    assert any(f"handler result for input_file '{path}': SUCCESS" in message for message in messages)
