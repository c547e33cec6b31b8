"""The handler authors' test kit ``aodncore.testlib`` (spec §14), used the way a client test-suite uses it."""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import unittest
import zipfile

import netCDF4
import pytest

from aodncore.pipeline import HandlerBase, PipelineFile, PipelineFileCollection
from aodncore.pipeline.common import HandlerResult, PipelineFileCheckType, PipelineFilePublishType
from aodncore.pipeline.configlib import LazyConfigManager
from aodncore.pipeline.exceptions import (
    ComplianceCheckFailedError,
    InvalidFileFormatError,
    InvalidInputFileError,
    UnmatchedFilesError,
)
from aodncore.pipeline.files import RemotePipelineFile, RemotePipelineFileCollection
from aodncore.pipeline.storage import BaseStorageBroker
from aodncore.testlib import (
    BaseTestCase,
    DummyHandler,
    HandlerTestCase,
    NullStorageBroker,
    dest_path_testing,
    get_nonexistent_path,
    get_test_config,
    make_test_file,
    make_zip,
)
from aodncore.testlib.basetest import BaseTestCase as BaseTestCaseFromModule
from aodncore.testlib.testutil import (
    GLOBAL_TEST_BASE,
    TESTLIB_CONF_DIR,
    load_runtime_patched_pipeline_config_file,
)
from aodncore.util import WriteOnceOrderedDict

IMOS_DIR = os.path.join(os.path.dirname(__file__), "data", "imos")
GOOD_AND_BAD_ZIP = os.path.join(IMOS_DIR, "good_and_bad.zip")
NOT_A_NETCDF = os.path.join(IMOS_DIR, "not_a_netcdf_file.nc")
GOOD_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc"
BAD_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc"


# -- HandlerTestCase as a client test-suite would use it -----------------------------------------------------------


class TestDummyHandler(HandlerTestCase):
    """A client suite: ``handler_class`` set on the class, ``test_base`` inherited."""

    handler_class = DummyHandler

    def setUp(self):
        # client suites copy their data into the test's temp dir
        super().setUp()
        self.zip_path = shutil.copy(GOOD_AND_BAD_ZIP, self.temp_dir)

    def test_handler_class_is_a_partial_with_the_test_config(self):
        self.assertIsInstance(self.handler_class, functools.partial)
        self.assertIs(self.handler_class.func, DummyHandler)
        self.assertIs(self.handler_class.keywords["config"], self.config)

    def test_run_handler(self):
        handler = self.run_handler(self.zip_path)
        self.assertIsInstance(handler, DummyHandler)
        self.assertIs(handler.result, HandlerResult.SUCCESS)
        self.assertEqual(handler.state, "HANDLER_COMPLETED_SUCCESS")
        self.assertEqual([f.name for f in handler.file_collection], [BAD_NC, GOOD_NC])
        check_types = [f.check_type for f in handler.file_collection]
        self.assertEqual(check_types, [PipelineFileCheckType.FORMAT_CHECK, PipelineFileCheckType.NO_ACTION])
        for pipeline_file in handler.file_collection:
            self.assertTrue(pipeline_file.is_archived)
            self.assertTrue(pipeline_file.is_harvested)
            self.assertTrue(pipeline_file.is_stored)
            # files uploaded by the handler can be re-read from the test upload store
            stored = os.path.join(handler._upload_store_runner.broker.prefix, pipeline_file.dest_path)
            self.assertTrue(os.path.isfile(stored))
        self.assertEqual(handler.opendap_root, "http://opendap.example.com")

    def test_run_handler_with_kwargs(self):
        handler = self.run_handler(self.zip_path, check_params={"checks": []}, include_regexes=[r".*\.nc"])
        self.assertEqual(handler.check_params, {"checks": []})

    def test_run_handler_fails_the_test_on_error(self):
        with self.assertRaises(AssertionError) as raised:
            self.run_handler(get_nonexistent_path())
        self.assertIn("InvalidInputFileError", str(raised.exception))

    def test_run_handler_with_exception(self):
        handler = self.run_handler_with_exception(InvalidInputFileError, get_nonexistent_path())
        self.assertIs(handler.result, HandlerResult.ERROR)
        handler = self.run_handler_with_exception(UnmatchedFilesError, self.zip_path, include_regexes=["nomatch"])
        self.assertEqual(handler.state, "HANDLER_COMPLETED_ERROR")
        handler = self.run_handler_with_exception(InvalidFileFormatError, self.zip_path, allowed_extensions=[".nc"])

    def test_run_handler_with_exception_checks_the_class(self):
        with self.assertRaises(AssertionError):
            self.run_handler_with_exception(ComplianceCheckFailedError, get_nonexistent_path())
        with self.assertRaises(AssertionError):
            self.run_handler_with_exception(InvalidInputFileError, self.zip_path)  # runs fine: error is None

    def test_compliance_user_error(self):
        path = shutil.copy(NOT_A_NETCDF, self.temp_dir)
        handler = self.run_handler_with_exception(
            ComplianceCheckFailedError, path, check_params={"checks": ["cf:1.6"]}
        )
        self.assertEqual(handler.error_details, str(handler.error))

    def test_explicit_config_overrides(self):
        other_dir = tempfile.mkdtemp(dir=self.temp_dir)
        other_config = get_test_config(other_dir)
        handler = self.handler_class(self.zip_path, config=other_config)
        self.assertIs(handler.config, other_config)

    def test_metadata_regenerated_set(self):
        self.assertEqual(type(self)._metadata_regenerated, set())


class TestDefaultHandlerClass(HandlerTestCase):
    """Without ``handler_class`` the suite tests ``HandlerBase``."""

    def test_default_is_handlerbase(self):
        self.assertIs(self.handler_class.func, HandlerBase)
        self.assertIs(type(self.handler_class(self.temp_nc_file)), HandlerBase)


class TestHandlerClassSetBeforeSuperSetUp(HandlerTestCase):
    def setUp(self):
        self.handler_class = DummyHandler
        super().setUp()

    def test_instance_attribute_is_used(self):
        self.assertIs(self.handler_class.func, DummyHandler)


def test_inherited_test_base_runs_and_can_fail():
    """``test_base`` is inherited by every subclass; it fails if the constructor cannot take an empty ``.nc``."""

    class Good(HandlerTestCase):
        handler_class = DummyHandler

    class Broken(HandlerBase):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            raise RuntimeError("constructor cannot handle an empty file")

    class Bad(HandlerTestCase):
        handler_class = Broken

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Good).run(result)
    assert result.testsRun == 1 and result.wasSuccessful()
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Bad).run(result)
    assert result.testsRun == 1 and len(result.errors) == 1


# -- BaseTestCase -------------------------------------------------------------------------------------------------


class TestBaseTestCaseWithoutSuperSetUp(BaseTestCase):
    """Properties must not depend on ``super().setUp()``."""

    def setUp(self):
        pass

    def test_temp_dir(self):
        temp_dir = self.temp_dir
        self.assertTrue(os.path.isdir(temp_dir), temp_dir)
        self.assertTrue(os.path.basename(temp_dir).startswith(type(self).__name__))
        self.assertEqual(self.temp_dir, temp_dir)  # cached

    def test_temp_nc_file(self):
        path = self.temp_nc_file
        self.assertEqual(os.path.dirname(path), self.temp_dir)
        self.assertTrue(os.path.basename(path).startswith(type(self).__name__))
        self.assertTrue(path.endswith(".nc"))
        self.assertEqual(self.temp_nc_file, path)
        with netCDF4.Dataset(path) as dataset:
            self.assertEqual(dataset.ncattrs(), [])
            self.assertEqual(list(dataset.variables), [])

    def test_config(self):
        config = self.config
        self.assertIsInstance(config, LazyConfigManager)
        self.assertIs(self.config, config)
        log_root = config.pipeline_config["logging"]["log_root"]
        for sub in ("celery", "harvest", "process", "watchservice"):
            self.assertTrue(os.path.isdir(os.path.join(log_root, sub)), sub)
        self.assertTrue(log_root.startswith(self.temp_dir))

    def test_no_logger_without_setup(self):
        self.assertFalse(hasattr(self, "test_logger"))


class TestBaseTestCaseSetUpTearDown(BaseTestCase):
    def test_setup(self):
        self.assertEqual(self.maxDiff, 10000)
        self.assertTrue(hasattr(self.test_logger, "sysinfo"))

    def test_teardown_removes_temp_dir(self):
        temp_dir = self.temp_dir
        self.tearDown()
        self.assertFalse(os.path.exists(temp_dir))

    def test_teardown_without_temp_dir(self):
        self.tearDown()  # nothing created: nothing to remove, no error

    def test_assert_no_exception_context_manager(self):
        with self.assertNoException():
            pass
        with self.assertRaises(AssertionError) as raised, self.assertNoException():
            raise ValueError("boom")
        self.assertEqual(str(raised.exception), "unexpected exception raised. ValueError boom")

    def test_assert_no_exception_callable(self):
        self.assertEqual(self.assertNoException(lambda a, b=0: a + b, 1, b=2), 3)

        def fail(message):
            raise KeyError(message)

        with self.assertRaises(AssertionError) as raised:
            self.assertNoException(fail, "x")
        self.assertIn("unexpected exception raised. KeyError", str(raised.exception))


def test_basetestcase_import_paths():
    assert BaseTestCase is BaseTestCaseFromModule


# -- get_test_config and load_runtime_patched_pipeline_config_file ---------------------------------------------------


@pytest.fixture
def test_config(tmp_path):
    return get_test_config(str(tmp_path))


def test_get_test_config_values(test_config, tmp_path):
    config = test_config
    assert config.discovered_dest_path_functions == ({"dest_path_testing": dest_path_testing}, [])
    assert config.discovered_handlers == ({"DummyHandler": DummyHandler}, [])
    assert "discovered_module_versions" not in config.__dict__
    assert isinstance(config.pipeline_config, WriteOnceOrderedDict)
    assert isinstance(config.trigger_config, WriteOnceOrderedDict)
    assert isinstance(config.watch_config, WriteOnceOrderedDict)
    assert set(config.trigger_config) == {"zzz_my_test_harvester", "aaa_my_test_harvester", "mmm_my_test_harvester"}

    glob = config.pipeline_config["global"]
    temp = str(tmp_path)
    assert glob["tmp_dir"] == temp
    assert glob["wip_dir"] == GLOBAL_TEST_BASE
    for key, prefix in (("error_uri", "temp_error_dir"), ("upload_uri", "temp_upload_uri")):
        assert glob[key].startswith("file://")
        path = glob[key][len("file://"):]
        assert os.path.isabs(path) and os.path.isdir(path)
        assert os.path.dirname(path) == temp and os.path.basename(path).startswith(prefix)
    assert glob["archive_uri"] == "file:///tmp/probably/doesnt/exist/archive"
    processing = glob["processing_dir"]
    assert os.path.dirname(processing) == temp and os.path.basename(processing).startswith("temp_processing_dir")
    log_root = config.pipeline_config["logging"]["log_root"]
    assert os.path.dirname(log_root) == temp and os.path.basename(log_root).startswith("temp_log_root")
    incoming = config.pipeline_config["watch"]["incoming_dir"]
    assert os.path.dirname(incoming) == temp and os.path.basename(incoming).startswith("temp_incoming_dir")
    smtp_server = config.pipeline_config["mail"]["smtp_server"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", smtp_server)


def test_get_test_config_is_fresh_each_time(tmp_path):
    first, second = get_test_config(str(tmp_path)), get_test_config(str(tmp_path))
    assert first.pipeline_config["global"]["upload_uri"] != second.pipeline_config["global"]["upload_uri"]
    assert first.pipeline_config["mail"]["smtp_server"] != second.pipeline_config["mail"]["smtp_server"]


def test_global_test_base_and_conf_dir():
    import aodncore

    assert os.path.dirname(os.path.abspath(aodncore.__file__)) == GLOBAL_TEST_BASE
    assert os.path.join(GLOBAL_TEST_BASE, "testlib", "conf") == TESTLIB_CONF_DIR
    for name in ("pipeline.conf", "trigger.conf", "watches.conf"):
        assert os.path.isfile(os.path.join(TESTLIB_CONF_DIR, name))


def test_config_is_write_once(test_config):
    with pytest.raises(Exception):  # noqa: B017 - WriteOnceOrderedDict refuses re-assignment
        test_config.pipeline_config["global"]["upload_uri"] = "file:///elsewhere"


def test_additional_patch_is_a_shallow_top_level_replace(tmp_path):
    config = load_runtime_patched_pipeline_config_file(
        os.path.join(TESTLIB_CONF_DIR, "pipeline.conf"),
        "rel/path",
        str(tmp_path),
        additional_patch={"harvester": {"config_dir": "/x"}, "mail": {"smtp_server": "127.0.0.1"}},
    )
    assert dict(config["harvester"]) == {"config_dir": "/x"}
    assert dict(config["mail"]) == {"smtp_server": "127.0.0.1"}  # the whole section is replaced
    assert config["global"]["wip_dir"] == "rel/path"
    assert isinstance(config["harvester"], WriteOnceOrderedDict)


def test_config_validates(test_config):
    from aodncore.pipeline.schema import validate_pipeline_config

    validate_pipeline_config(test_config.pipeline_config)


# -- make_test_file, make_zip, get_nonexistent_path, dest_path_testing -----------------------------------------------


def test_make_test_file(tmp_path):
    path = str(tmp_path / "made.nc")
    make_test_file(path, {"title": "a title", "history": "h"}, TEMP={"units": "degC", "long_name": "t"}, PSAL={})
    with netCDF4.Dataset(path) as dataset:
        assert dataset.getncattr("title") == "a title"
        assert dataset.getncattr("history") == "h"
        assert set(dataset.variables) == {"TEMP", "PSAL"}
        temp = dataset.variables["TEMP"]
        assert temp.dimensions == ()
        assert temp.dtype.name == "float64"
        assert temp.getncattr("units") == "degC"
        assert temp.getncattr("long_name") == "t"
        assert dataset.variables["PSAL"].ncattrs() == []


def test_make_test_file_plain(tmp_path):
    path = str(tmp_path / "plain.nc")
    make_test_file(path)
    with netCDF4.Dataset(path) as dataset:
        assert dataset.ncattrs() == [] and list(dataset.variables) == []


def test_make_zip(tmp_path):
    sources = tmp_path / "src" / "deep"
    sources.mkdir(parents=True)
    paths = []
    for name, content in (("one.txt", b"1" * 1000), ("two.nc", b"2")):
        path = sources / name
        path.write_bytes(content)
        paths.append(str(path))
    zip_path = make_zip(str(tmp_path), paths)
    assert os.path.dirname(zip_path) == str(tmp_path)
    assert zip_path.endswith(".zip")
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.namelist() == ["one.txt", "two.nc"]  # stored under their base names
        assert archive.read("one.txt") == b"1" * 1000
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    assert make_zip(str(tmp_path), paths) != zip_path  # a new name each time


def test_get_nonexistent_path():
    absolute = get_nonexistent_path()
    assert absolute.startswith("/nonexistent/path/with/a/")
    assert absolute.endswith("/in/the/middle")
    assert not os.path.exists(absolute)
    relative = get_nonexistent_path(relative=True)
    assert relative.startswith("nonexistent/path/with/a/")
    assert not os.path.isabs(relative)
    assert get_nonexistent_path() != absolute
    middle = absolute.split("/")[5]
    import uuid

    assert str(uuid.UUID(middle)) == middle


def test_dest_path_testing():
    assert dest_path_testing("/tmp/dir/file.nc") == "DUMMY/tmp/dir/file.nc"
    assert dest_path_testing("/file.nc") == "DUMMY/file.nc"


def test_dummy_handler_dest_path_is_static():
    assert DummyHandler.dest_path("x.nc") == "DUMMY/path/renamed-from-handler-method-x.nc"


def test_dummy_handler_defaults(test_config, tmp_path):
    path = str(tmp_path / "f.nc")
    make_test_file(path)
    handler = DummyHandler(path, config=test_config)
    assert handler.default_addition_publish_type is PipelineFilePublishType.HARVEST_ARCHIVE_UPLOAD
    assert handler.opendap_root == "http://opendap.example.com"


def test_dummy_handler_preprocess_keeps_assigned_check_types(test_config, tmp_path):
    paths = []
    for name in ("a.nc", "b.nc", "c.nc"):
        paths.append(str(tmp_path / name))
        make_test_file(paths[-1])
    handler = DummyHandler(make_zip(str(tmp_path), paths), config=test_config)
    original = handler.preprocess

    def preprocess():
        handler.file_collection[2].check_type = PipelineFileCheckType.FORMAT_CHECK
        original()

    handler.preprocess = preprocess
    handler.run()
    assert handler.error is None, handler.error_details
    assert [f.check_type for f in handler.file_collection] == [
        PipelineFileCheckType.FORMAT_CHECK,
        PipelineFileCheckType.NO_ACTION,
        PipelineFileCheckType.FORMAT_CHECK,
    ]
    assert handler.file_collection[2].is_checked


# -- NullStorageBroker ------------------------------------------------------------------------------------------------


def _files(tmp_path, count=2):
    collection = PipelineFileCollection()
    for index in range(count):
        path = tmp_path / f"null_{index}.nc"
        path.write_bytes(b"x")
        collection.add(PipelineFile(str(path), dest_path=f"dest/null_{index}.nc",
                                    publish_type=PipelineFilePublishType.UPLOAD_ONLY))
    return collection


def test_null_storage_broker_counts(tmp_path):
    broker = NullStorageBroker("/some/prefix")
    assert isinstance(broker, BaseStorageBroker)
    assert broker.prefix == "/some/prefix"
    broker.assert_upload_not_called()
    broker.assert_delete_not_called()
    broker.assert_query_not_called()
    with pytest.raises(AssertionError):
        broker.assert_upload_called()
    with pytest.raises(AssertionError):
        broker.assert_download_called()

    files = _files(tmp_path)
    broker.upload(files)
    broker.upload(files[0])
    broker.assert_upload_called()
    broker.assert_upload_call_count(2)
    with pytest.raises(AssertionError):
        broker.assert_upload_call_count(1)
    with pytest.raises(AssertionError):
        broker.assert_upload_not_called()
    assert all(f.is_stored for f in files)

    broker.delete(files)
    broker.assert_delete_called()
    broker.assert_delete_call_count(1)

    assert broker.query("dest/") is None  # QUIRK: returns nothing
    broker.assert_query_called()
    broker.assert_query_call_count(1)
    with pytest.raises(AssertionError):
        broker.assert_query_not_called()

    remote = RemotePipelineFileCollection([RemotePipelineFile("dest/null_0.nc")])
    broker.download(remote, str(tmp_path / "downloads"), dest_path_attr="ignored")
    broker.assert_download_called()
    broker.assert_download_call_count(1)
    assert broker.upload_call_count == 2
    assert broker.delete_call_count == 1
    assert broker.download_call_count == 1
    assert broker.query_call_count == 1


def test_null_storage_broker_fail(tmp_path):
    from aodncore.pipeline.exceptions import StorageBrokerError

    broker = NullStorageBroker("/prefix", fail=True)
    files = _files(tmp_path)
    with pytest.raises(Exception) as raised:  # noqa: PT011
        broker.upload(files)
    assert "deliberate failure requested" in str(raised.value) or isinstance(raised.value, StorageBrokerError)
    broker.assert_upload_call_count(1)
    assert not any(f.is_stored for f in files)
    with pytest.raises(Exception):  # noqa: B017
        broker.delete(files)
    broker.assert_delete_call_count(1)
    with pytest.raises(Exception):  # noqa: B017
        broker.query("x")
    broker.assert_query_call_count(1)


def test_null_storage_broker_is_overwrite(tmp_path):
    files = _files(tmp_path)
    NullStorageBroker("/prefix").set_is_overwrite(files)
    assert all(f.is_overwrite for f in files)
    files = _files(tmp_path)
    NullStorageBroker("/prefix", fail=True).set_is_overwrite(files)
    assert not any(f.is_overwrite for f in files)


def test_null_storage_broker_with_store_runner(tmp_path, test_config):
    import logging

    from aodncore.pipeline.steps.store import StoreRunner

    broker = NullStorageBroker("/prefix")
    runner = StoreRunner(broker, test_config, logging.getLogger("aodncore.tests.testlib"))
    files = _files(tmp_path)
    runner.run(files)
    broker.assert_upload_call_count(1)
    broker.assert_delete_not_called()
    assert all(f.is_stored for f in files)
