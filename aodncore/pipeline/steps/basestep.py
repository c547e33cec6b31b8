"""Common base of every step runner (resolve, check, store, harvest, notify)."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["BaseStepRunner"]

_FALLBACK_LOGGER = logging.getLogger("aodncore.pipeline.steps")


class BaseStepRunner:
    """Hold the configuration and logger a step runs with.

    Both may be ``None`` (unit tests build runners that way), so subclasses only dereference the config when they
    actually need a value from it.
    """

    def __init__(self, config: Any, logger: logging.Logger | logging.LoggerAdapter | None) -> None:
        self._config = config
        self._logger = logger

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _get_logger(self) -> logging.Logger | logging.LoggerAdapter:
        """The logger given at construction, or the package's step logger when none was given."""
        return self._logger if self._logger is not None else _FALLBACK_LOGGER
