"""``BaseTestCase``: unittest base with a lazy temp dir, a temp NetCDF file and the test configuration."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import unittest
from contextlib import contextmanager
from typing import Any

from aodncore.pipeline.log import BASIC_LOG_FORMAT, SYSINFO, get_pipeline_logger
from aodncore.testlib.testutil import get_test_config, make_test_file

__all__ = ["BaseTestCase", "TEST_LOG_FORMAT", "TEST_LOG_LEVEL"]

TEST_LOG_FORMAT = BASIC_LOG_FORMAT
TEST_LOG_LEVEL = SYSINFO


class BaseTestCase(unittest.TestCase):
    """Test case base for pipeline code. Properties work even if a subclass forgets ``super().setUp()``."""

    def setUp(self) -> None:
        self.maxDiff = 10000
        self.test_logger = get_pipeline_logger("unittest")
        logging.basicConfig(format=TEST_LOG_FORMAT, level=TEST_LOG_LEVEL)

    def tearDown(self) -> None:
        temp_dir = self.__dict__.get("_temp_dir")
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)

    @property
    def temp_dir(self) -> str:
        if not self.__dict__.get("_temp_dir"):
            self._temp_dir = tempfile.mkdtemp(prefix=type(self).__name__)
        return self._temp_dir

    @property
    def temp_nc_file(self) -> str:
        if not self.__dict__.get("_temp_nc_file"):
            handle, path = tempfile.mkstemp(prefix=type(self).__name__, suffix=".nc", dir=self.temp_dir)
            os.close(handle)
            make_test_file(path)
            self._temp_nc_file = path
        return self._temp_nc_file

    @property
    def config(self) -> Any:
        if not self.__dict__.get("_config"):
            config = get_test_config(self.temp_dir)
            log_root = config.pipeline_config["logging"]["log_root"]
            for subdir in ("celery", "harvest", "process", "watchservice"):
                os.makedirs(os.path.join(log_root, subdir), exist_ok=True)
            self._config = config
        return self._config

    @contextmanager
    def _no_exception(self):
        try:
            yield
        except Exception as error:  # noqa: BLE001 - converted into a test failure
            self.fail(f"unexpected exception raised. {type(error).__name__} {error}")

    def assertNoException(self, callable_: Any = None, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        """Fail the test if ``callable_(*args, **kwargs)`` raises; without a callable, a context manager."""
        if callable_ is None:
            return self._no_exception()
        with self._no_exception():
            return callable_(*args, **kwargs)
