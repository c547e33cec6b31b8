"""Helpers for handler test suites: test configuration, NetCDF and zip builders, a null storage broker."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import netCDF4

import aodncore
from aodncore.pipeline.configlib import LazyConfigManager, load_json_file
from aodncore.pipeline.storage import BaseStorageBroker
from aodncore.util import WriteOnceOrderedDict

__all__ = [
    "NullStorageBroker",
    "dest_path_testing",
    "get_nonexistent_path",
    "get_test_config",
    "load_runtime_patched_pipeline_config_file",
    "make_test_file",
    "make_zip",
]

GLOBAL_TEST_BASE = os.path.dirname(os.path.abspath(aodncore.__file__))
TESTLIB_CONF_DIR = os.path.join(GLOBAL_TEST_BASE, "testlib", "conf")


def dest_path_testing(filename: str) -> str:
    """Path function used by the test configuration: ``DUMMY/<absolute path without the leading slash>``."""
    return os.path.join("DUMMY", os.path.relpath(filename, "/"))


def get_nonexistent_path(relative: bool = False) -> str:
    """A path that certainly does not exist (a random uuid in the middle)."""
    path = os.path.join("nonexistent", "path", "with", "a", str(uuid.uuid4()), "in", "the", "middle")
    if not relative:
        path = os.path.join(os.sep, path)
    assert not os.path.exists(path)
    return path


def make_test_file(filename: str, attributes: Mapping[str, Any] | None = None, **variables: Mapping[str, Any]) -> None:
    """Write a NetCDF file with the given global attributes and one scalar double variable per keyword."""
    with netCDF4.Dataset(filename, mode="w") as dataset:
        for name, value in (attributes or {}).items():
            dataset.setncattr(name, value)
        for name, variable_attributes in variables.items():
            variable = dataset.createVariable(name, "f8")
            for attribute, value in (variable_attributes or {}).items():
                variable.setncattr(attribute, value)


def make_zip(temp_dir: str, file_list: Iterable[str]) -> str:
    """Zip ``file_list`` (each stored under its base name, deflated) into a new ``.zip`` inside ``temp_dir``."""
    handle, zip_path = tempfile.mkstemp(suffix=".zip", dir=temp_dir)
    os.close(handle)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in file_list:
            archive.write(path, arcname=os.path.basename(path))
    return zip_path


def _to_write_once(value: Any) -> Any:
    if isinstance(value, Mapping):
        return WriteOnceOrderedDict((key, _to_write_once(item)) for key, item in value.items())
    return value


def load_runtime_patched_pipeline_config_file(
    config_file: str, rel_path: str, temp_dir: str, additional_patch: Mapping[str, Any] | None = None
) -> WriteOnceOrderedDict:
    """Load a pipeline config and point every store and working directory into fresh folders of ``temp_dir``."""
    with open(config_file) as handle:
        config = json.load(handle, object_pairs_hook=OrderedDict)

    def new_dir(prefix: str) -> str:
        return tempfile.mkdtemp(prefix=prefix, dir=temp_dir)

    config["global"]["error_uri"] = f"file://{new_dir('temp_error_dir')}"
    config["global"]["processing_dir"] = new_dir("temp_processing_dir")
    config["global"]["tmp_dir"] = temp_dir
    config["global"]["upload_uri"] = f"file://{new_dir('temp_upload_uri')}"
    config["global"]["wip_dir"] = rel_path
    config["logging"]["log_root"] = new_dir("temp_log_root")
    config["mail"]["smtp_server"] = str(uuid.uuid4())
    config["watch"]["incoming_dir"] = new_dir("temp_incoming_dir")
    if additional_patch:
        config.update(additional_patch)
    return _to_write_once(config)


def get_test_config(temp_dir: str) -> LazyConfigManager:
    """A ``LazyConfigManager`` with the shipped test configuration, redirected into ``temp_dir``."""
    from aodncore.testlib.dummyhandler import DummyHandler

    config = LazyConfigManager()
    config.__dict__["discovered_dest_path_functions"] = ({"dest_path_testing": dest_path_testing}, [])
    config.__dict__["discovered_handlers"] = ({"DummyHandler": DummyHandler}, [])
    config.__dict__["pipeline_config"] = load_runtime_patched_pipeline_config_file(
        os.path.join(TESTLIB_CONF_DIR, "pipeline.conf"), GLOBAL_TEST_BASE, temp_dir
    )
    config.__dict__["trigger_config"] = load_json_file(os.path.join(TESTLIB_CONF_DIR, "trigger.conf"))
    config.__dict__["watch_config"] = load_json_file(os.path.join(TESTLIB_CONF_DIR, "watches.conf"))
    return config


class NullStorageBroker(BaseStorageBroker):
    """A storage broker that stores nothing, counts calls, and can be told to fail.

    With ``fail=True`` each per-file operation (upload, delete, download) and ``query`` raise
    ``StorageBrokerError`` (wrapping ``Exception('deliberate failure requested')``, naming the file's relative
    ``dest_path``); the pre/post-run hooks never fail, so an empty collection never fails. Calls are counted
    before they run, failed ones included. Files need no ``dest_path`` unless ``set_is_overwrite`` is used.
    """

    _requires_dest_path = False

    def __init__(self, prefix: str, fail: bool = False) -> None:
        super().__init__()
        self.prefix = prefix
        self.fail = fail
        self.upload_call_count = 0
        self.delete_call_count = 0
        self.download_call_count = 0
        self.query_call_count = 0

    def _maybe_fail(self) -> None:
        if self.fail:
            raise Exception("deliberate failure requested")

    def _error_target(self, pipeline_file: Any, dest_path_attr: str) -> str:
        return getattr(pipeline_file, dest_path_attr)

    def _delete_file(self, pipeline_file: Any, dest_path_attr: str) -> None:
        self._maybe_fail()

    def _post_run_hook(self) -> None:
        """Nothing to tear down; never fails."""

    def _pre_run_hook(self) -> None:
        """Nothing to set up; never fails."""

    def _run_query(self, query: str) -> Any:
        self._maybe_fail()

    def _download_file(self, remote_pipeline_file: Any) -> None:
        self._maybe_fail()

    def _upload_file(self, pipeline_file: Any, dest_path_attr: str) -> None:
        self._maybe_fail()

    def _get_is_overwrite(self, pipeline_file: Any, abs_path: str) -> bool:
        return not self.fail

    def upload(self, *args: Any, **kwargs: Any) -> None:
        self.upload_call_count += 1
        super().upload(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> None:
        self.delete_call_count += 1
        super().delete(*args, **kwargs)

    def download(self, remote_pipeline_files: Any, local_path: str, dest_path_attr: str | None = None) -> None:
        self.download_call_count += 1
        super().download(remote_pipeline_files, local_path=local_path)

    def query(self, query: str = "") -> None:
        """Counts the call; returns nothing (as the classic test broker did)."""
        self.query_call_count += 1
        super().query(query)

    # -- assertions (classic messages: '<op> method call count: <n>' / '<op> method not called') --------------------

    def _assert_count(self, operation: str, expected: int) -> None:
        actual = getattr(self, f"{operation}_call_count")
        if actual != expected:
            raise AssertionError(f"{operation} method call count: {actual}")

    def _assert_called(self, operation: str) -> None:
        if not getattr(self, f"{operation}_call_count"):
            raise AssertionError(f"{operation} method not called")

    def assert_upload_call_count(self, count: int) -> None:
        self._assert_count("upload", count)

    def assert_upload_called(self) -> None:
        self._assert_called("upload")

    def assert_upload_not_called(self) -> None:
        self._assert_count("upload", 0)

    def assert_delete_call_count(self, count: int) -> None:
        self._assert_count("delete", count)

    def assert_delete_called(self) -> None:
        self._assert_called("delete")

    def assert_delete_not_called(self) -> None:
        self._assert_count("delete", 0)

    def assert_download_call_count(self, count: int) -> None:
        self._assert_count("download", count)

    def assert_download_called(self) -> None:
        self._assert_called("download")

    def assert_query_call_count(self, count: int) -> None:
        # (the classic message showed the delete counter here; this one shows the query counter)
        self._assert_count("query", count)

    def assert_query_called(self) -> None:
        self._assert_called("query")

    def assert_query_not_called(self) -> None:
        self._assert_count("query", 0)
