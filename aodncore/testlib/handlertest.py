"""``HandlerTestCase``: run a handler class against the test configuration."""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any

from aodncore.pipeline import HandlerBase
from aodncore.testlib.basetest import BaseTestCase

__all__ = ["HandlerTestCase", "TEST_ROOT"]

TEST_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)))


def _declared_handler_class(test_case: Any) -> Any:
    """``handler_class`` as declared on the instance or class, without binding it as a method.

    A ``functools.partial`` (or plain function) stored as a class attribute must come back as it is.
    """
    declared = inspect.getattr_static(test_case, "handler_class", None)
    if isinstance(declared, staticmethod | classmethod):
        declared = declared.__func__
    return declared or HandlerBase


class HandlerTestCase(BaseTestCase):
    """Set ``handler_class`` on the subclass; ``self.handler_class(path, **kw)`` then uses the test config.

    ``handler_class`` may be a ``functools.partial`` of a handler class with presets (as handler packages
    register them). It is wrapped as it is, so a call's keyword arguments win over the injected test ``config``,
    which wins over a preset ``config``; the other presets apply unchanged.
    """

    handler_class: Any = HandlerBase

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls._metadata_regenerated = set()

    def setUp(self) -> None:
        super().setUp()
        self.handler_class = functools.partial(_declared_handler_class(self), config=self.config)

    def test_base(self) -> None:
        self.assertIsInstance(self.handler_class(self.temp_nc_file), HandlerBase)

    def _new_handler_run(self, args: tuple, kwargs: dict) -> Any:
        """A handler built by ``handler_class`` from ``args``/``kwargs``, after its ``run()``."""
        new_handler = self.handler_class(*args, **kwargs)
        new_handler.run()
        return new_handler

    def run_handler(self, *args: Any, **kwargs: Any) -> Any:
        """Construct and run a handler; assert it finished without error."""
        handler = self._new_handler_run(args, kwargs)
        self.assertIsNone(handler.error, msg=f"handler error: {handler.error_details}")
        return handler

    def run_handler_with_exception(self, expected_error: type[BaseException], *args: Any, **kwargs: Any) -> Any:
        """Construct and run a handler; assert it failed with ``expected_error``."""
        handler = self._new_handler_run(args, kwargs)
        self.assertIsInstance(handler.error, expected_error, msg=f"handler error: {handler.error_details}")
        return handler
