"""Test kit for handler authors: ``HandlerTestCase``, test configuration and file builders."""

from .basetest import BaseTestCase
from .dummyhandler import DummyHandler
from .handlertest import HandlerTestCase
from .testutil import (
    NullStorageBroker,
    dest_path_testing,
    get_nonexistent_path,
    get_test_config,
    make_test_file,
    make_zip,
)

__all__ = [
    "BaseTestCase",
    "DummyHandler",
    "HandlerTestCase",
    "NullStorageBroker",
    "dest_path_testing",
    "get_nonexistent_path",
    "get_test_config",
    "make_test_file",
    "make_zip",
]
