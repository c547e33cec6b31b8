"""Loading of the pipeline's JSON configuration files and the lazily evaluated :class:`LazyConfigManager`.

Every value of a :class:`LazyConfigManager` is computed on first access and then cached in the instance
``__dict__`` under the attribute's own name. Writing that entry beforehand (``config.__dict__['pipeline_config'] =
{...}``) therefore replaces the value without any file being read; test helpers rely on this.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cached_property
from typing import Any

from aodncore.pipeline.exceptions import InvalidConfigError
from aodncore.pipeline.log import WorkerLoggingConfigBuilder, get_watchservice_logging_config
from aodncore.pipeline.schema import validate_logging_config, validate_pipeline_config
from aodncore.util.misc import (
    Validator,
    WriteOnceOrderedDict,
    discover_entry_points,
    format_exception,
    validate_type,
)

__all__ = [
    "LazyConfigManager",
    "load_json_file",
    "load_pipeline_config",
    "load_trigger_config",
    "load_watch_config",
    "validate_lazyconfigmanager",
]

DEFAULT_CONFIG_FILE = "/mnt/ebs/pipeline/etc/pipeline.conf"
DEFAULT_CONFIG_ENVVAR = "PIPELINE_CONFIG_FILE"
DEFAULT_WATCH_CONFIG = "/mnt/ebs/pipeline/etc/watches.conf"
DEFAULT_WATCH_CONFIG_ENVVAR = "PIPELINE_WATCH_CONFIG_FILE"
DEFAULT_TRIGGER_CONFIG = "/usr/local/talend/etc/trigger.conf"
DEFAULT_TRIGGER_CONFIG_ENVVAR = "PIPELINE_TRIGGER_CONFIG_FILE"


def load_json_file(
    default_config_file: str | os.PathLike[str],
    envvar: str = "",
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] = WriteOnceOrderedDict,
) -> Any:
    """Parse a JSON file, taking its path from the environment variable ``envvar`` when that is set.

    With the default hook every object becomes a :class:`WriteOnceOrderedDict`, so a key repeated in the file
    raises ``RuntimeError`` and the loaded values cannot be changed afterwards. A file that cannot be read, or that
    is not valid JSON, raises :class:`InvalidConfigError` naming the file.
    """
    path = os.environ.get(envvar, default_config_file) if envvar else default_config_file
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle, object_pairs_hook=object_pairs_hook)
    except OSError as e:
        raise InvalidConfigError(format_exception(e)) from e
    except json.JSONDecodeError as e:
        raise InvalidConfigError(f"{format_exception(e)} (file '{path}')") from e


def load_pipeline_config(default_config_file: str = DEFAULT_WATCH_CONFIG, envvar: str = DEFAULT_CONFIG_ENVVAR) -> Any:
    """Load (without validating) the pipeline configuration.

    The default of ``default_config_file`` is the *watch* config path, as in the classic library; callers always
    pass the pipeline config path explicitly.
    """
    return load_json_file(default_config_file, envvar=envvar)


def load_watch_config(
    default_config_file: str = DEFAULT_WATCH_CONFIG, envvar: str = DEFAULT_WATCH_CONFIG_ENVVAR
) -> Any:
    """Load the watch configuration (pipeline name -> watched paths, handler and parameters)."""
    return load_json_file(default_config_file, envvar=envvar)


def load_trigger_config(
    default_config_file: str = DEFAULT_TRIGGER_CONFIG, envvar: str = DEFAULT_TRIGGER_CONFIG_ENVVAR
) -> Any:
    """Load the harvester trigger map; the result is ordered as in the file (harvesters run in that order)."""
    return load_json_file(default_config_file, envvar=envvar)


class LazyConfigManager:
    """All configuration needed by handlers and the watch service, each part loaded only when first used."""

    @cached_property
    def pipeline_config(self) -> Any:
        """The validated pipeline configuration (``$PIPELINE_CONFIG_FILE`` or :data:`DEFAULT_CONFIG_FILE`)."""
        config = load_pipeline_config(DEFAULT_CONFIG_FILE, envvar=DEFAULT_CONFIG_ENVVAR)
        validate_pipeline_config(config)
        return config

    @cached_property
    def watch_config(self) -> Any:
        """The watch configuration (``$PIPELINE_WATCH_CONFIG_FILE`` or :data:`DEFAULT_WATCH_CONFIG`)."""
        return load_watch_config(DEFAULT_WATCH_CONFIG)

    @cached_property
    def trigger_config(self) -> Any:
        """The harvester trigger map (``$PIPELINE_TRIGGER_CONFIG_FILE`` or :data:`DEFAULT_TRIGGER_CONFIG`)."""
        return load_trigger_config(DEFAULT_TRIGGER_CONFIG)

    def _pluggable_group(self, key: str) -> str:
        try:
            return self.pipeline_config["pluggable"][key]
        except KeyError as e:
            raise InvalidConfigError(f"pipeline config has no 'pluggable.{key}' entry") from e

    @cached_property
    def discovered_dest_path_functions(self) -> tuple[dict[str, Any], list[str]]:
        """``(loaded, failed)`` entry points of the ``pluggable.path_function_group`` group."""
        return discover_entry_points(self._pluggable_group("path_function_group"))

    @cached_property
    def discovered_handlers(self) -> tuple[dict[str, Any], list[str]]:
        """``(loaded, failed)`` entry points of the ``pluggable.handlers_group`` group."""
        return discover_entry_points(self._pluggable_group("handlers_group"))

    @cached_property
    def discovered_module_versions(self) -> tuple[dict[str, Any], list[str]]:
        """``(loaded, failed)`` entry points of the ``pluggable.module_versions_group`` group."""
        return discover_entry_points(self._pluggable_group("module_versions_group"))

    @cached_property
    def watchservice_logging_config(self) -> dict[str, Any]:
        """The validated ``dictConfig`` dictionary used by the watch service."""
        config = get_watchservice_logging_config(self.pipeline_config)
        validate_logging_config(config)
        return config

    @cached_property
    def celery_routes(self) -> dict[str, dict[str, str]]:
        """One Celery route per watched pipeline: task ``<namespace>.<pipeline>`` goes to queue ``<pipeline>``."""
        namespace = self.pipeline_config["watch"]["task_namespace"]
        return {
            f"{namespace}.{pipeline}": {"queue": pipeline, "routing_key": pipeline} for pipeline in self.watch_config
        }

    @cached_property
    def celery_application(self) -> Any:
        """A configured Celery application with one task per watched pipeline (needs the optional ``celery``)."""
        try:
            from celery import Celery
        except ImportError as e:
            raise InvalidConfigError(
                "the Celery application needs the optional 'celery' package, which is not installed "
                "(pip install celery)"
            ) from e
        try:
            from aodncore.pipeline.watch import CeleryConfig, CeleryContext
        except ImportError as e:
            raise InvalidConfigError(f"the watch service module is unavailable: {format_exception(e)}") from e

        application = Celery(self.pipeline_config["watch"]["task_namespace"])
        return CeleryContext(application, self, CeleryConfig(self.celery_routes)).application

    @cached_property
    def watch_directory_map(self) -> dict[str, str]:
        """Absolute watched directory -> pipeline name, for every path of every watched pipeline."""
        incoming_dir = self.pipeline_config["watch"]["incoming_dir"]
        return {
            os.path.join(incoming_dir, relative): pipeline
            for pipeline, watch in self.watch_config.items()
            for relative in watch["path"]
        }

    def get_worker_logging_config(self, task_name: str) -> dict[str, Any]:
        """The validated ``dictConfig`` dictionary for the worker running ``task_name``."""
        config = WorkerLoggingConfigBuilder(self.pipeline_config).add_watch_config(task_name).build()
        validate_logging_config(config)
        return config


validate_lazyconfigmanager: Validator = validate_type(LazyConfigManager)
