"""Pipeline logging: the ``SYSINFO`` level, logger adapters and ``logging.config`` builders."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["SYSINFO", "WorkerLoggingConfigBuilder", "get_watchservice_logging_config", "get_pipeline_logger"]

SYSINFO = 15
"""Between DEBUG and INFO: detail about what the pipeline is doing, useful to operators."""
logging.addLevelName(SYSINFO, "SYSINFO")

LIBRARY_LOGGERS = ("botocore", "paramiko", "s3transfer", "transitions")

#: plain one-line format (no celery fields) shared by the fallback handler logger, the test kit and the defaults
BASIC_LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


class PipelineLoggerAdapter(logging.LoggerAdapter):
    """A ``LoggerAdapter`` with a ``sysinfo()`` method; per-call ``extra`` is merged over the adapter's own."""

    def sysinfo(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(SYSINFO, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def get_pipeline_logger(
    name: str | None,
    extra: Mapping[str, Any] | None = None,
    logger_function: Callable[[str | None], Any] = logging.getLogger,
) -> PipelineLoggerAdapter:
    """Wrap ``logger_function(name)`` in an adapter carrying ``extra`` and offering ``sysinfo()``."""
    return PipelineLoggerAdapter(logger_function(name), dict(extra or {}))


def _library_level(pipeline_config: Mapping[str, Any]) -> str:
    return pipeline_config["logging"].get("liblevel", "WARN")


class WorkerLoggingConfigBuilder:
    """Builds a ``logging.config.dictConfig`` dictionary for pipeline worker processes."""

    def __init__(self, pipeline_config: Mapping[str, Any]) -> None:
        self.pipeline_config = pipeline_config
        library_level = _library_level(pipeline_config)
        self._config: dict[str, Any] = {
            "version": 1,
            "formatters": {"pipeline_formatter": {"format": pipeline_config["logging"]["pipeline_format"]}},
            "filters": {},
            "handlers": {},
            "loggers": {name: {"level": library_level} for name in LIBRARY_LOGGERS},
        }

    def add_watch_config(
        self, name: str, formatter: str = "pipeline_formatter", level: str | None = None
    ) -> WorkerLoggingConfigBuilder:
        """Add a file handler ``<name>_handler`` writing ``<log_root>/process/<name>.log`` and a logger ``name``."""
        level = level or self.pipeline_config["logging"]["level"]
        handler_name = f"{name}_handler"
        self._config["handlers"][handler_name] = {
            "class": "logging.FileHandler",
            "formatter": formatter,
            "filename": os.path.join(self.pipeline_config["logging"]["log_root"], "process", f"{name}.log"),
            "delay": True,
            "level": level,
        }
        self._config["loggers"][name] = {"handlers": [handler_name], "level": level, "propagate": False}
        return self

    def add_watches(self, names: Iterable[str]) -> WorkerLoggingConfigBuilder:
        """Call :meth:`add_watch_config` for each name."""
        if isinstance(names, str | bytes) or not isinstance(names, Iterable):
            raise TypeError("names must be a non-string iterable")
        for name in names:
            self.add_watch_config(name)
        return self

    def build(self) -> dict[str, Any]:
        return self._config


def get_watchservice_logging_config(pipeline_config: Mapping[str, Any]) -> dict[str, Any]:
    """dictConfig for the watch service: one stream handler on the ``watchservice`` logger."""
    level = pipeline_config["logging"]["level"]
    return {
        "version": 1,
        "formatters": {"watchservice_formatter": {"format": pipeline_config["logging"]["watchservice_format"]}},
        "handlers": {
            "watchservice_handler": {
                "class": "logging.StreamHandler",
                "formatter": "watchservice_formatter",
                "level": level,
            }
        },
        "loggers": {"watchservice": {"handlers": ["watchservice_handler"], "level": level, "propagate": False}},
    }
