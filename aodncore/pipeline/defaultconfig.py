"""Embedded default configuration, for running aodncore without any configuration file.

Everything lives under one base directory (default ``./aodn-data``)::

    <base>/published   upload store (file://)          <base>/work/processing  processing_dir
    <base>/archive     archive store (file://)         <base>/work/tmp         tmp_dir (handler working dirs)
    <base>/error       error store (file://)           <base>/work/wip         wip_dir
    <base>/incoming    watch.incoming_dir              <base>/logs             log_root (+ talend/)
    <base>/harvester   harvester config and schemas

Notifications go to ``localhost`` but nobody is notified unless recipients are configured. Directories are made
by :func:`default_config` / :func:`load_config_file` when called, never at import.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aodncore.pipeline.configlib import (
    DEFAULT_TRIGGER_CONFIG_ENVVAR,
    DEFAULT_WATCH_CONFIG_ENVVAR,
    LazyConfigManager,
    load_json_file,
    load_trigger_config,
    load_watch_config,
)
from aodncore.pipeline.log import BASIC_LOG_FORMAT
from aodncore.pipeline.schema import validate_pipeline_config
from aodncore.util.misc import WriteOnceOrderedDict

__all__ = ["DEFAULT_BASE_DIR", "DEFAULT_PLUGGABLE", "default_config", "default_pipeline_config", "load_config_file"]

DEFAULT_BASE_DIR = "aodn-data"
"""Base directory used when none is given (relative to the current working directory)."""

DEFAULT_LOG_FORMAT = BASIC_LOG_FORMAT

DEFAULT_PLUGGABLE: dict[str, str] = dict(
    handlers_group="pipeline.handlers",
    path_function_group="pipeline.path_functions",
    module_versions_group="pipeline.module_versions",
)
"""The canonical entry-point group names."""

_FILE_SCHEME = "file://"


def _base_path(base_dir: str | os.PathLike[str] | None) -> Path:
    return Path(DEFAULT_BASE_DIR if base_dir is None else base_dir).expanduser().absolute()


def default_pipeline_config(base_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A complete pipeline configuration (valid for ``PIPELINE_CONFIG_SCHEMA``) with everything under ``base_dir``.

    Pure: nothing is created on disk. A relative ``base_dir`` is made absolute against the current directory.
    """
    base = _base_path(base_dir)
    work = base / "work"
    logs = base / "logs"
    return {
        "global": {
            "admin_recipients": [],
            "archive_uri": f"{_FILE_SCHEME}{base / 'archive'}",
            "error_uri": f"{_FILE_SCHEME}{base / 'error'}",
            "processing_dir": str(work / "processing"),
            "tmp_dir": str(work / "tmp"),
            "upload_uri": f"{_FILE_SCHEME}{base / 'published'}",
            "wip_dir": str(work / "wip"),
        },
        "logging": {
            "level": "INFO",
            "pipeline_format": DEFAULT_LOG_FORMAT,
            "log_root": str(logs),
            "watchservice_format": DEFAULT_LOG_FORMAT,
        },
        "mail": {
            "from": "aodncore@localhost",
            "subject": "aodncore: {input_file} {processing_result}",
            "smtp_server": "localhost",
            "smtp_port": 25,
            "smtp_user": "",
            "smtp_pass": "",
        },
        "pluggable": dict(DEFAULT_PLUGGABLE),
        "talend": {"talend_log_dir": str(logs / "talend")},
        "harvester": {
            "config_dir": str(base / "harvester" / "config"),
            "schema_base_dir": str(base / "harvester" / "schema-definitions"),
        },
        "templating": {
            "template_package": "aodncore.pipeline",
            "html_notification_template": "notify.html.j2",
            "text_notification_template": "notify.txt.j2",
        },
        "watch": {
            "incoming_dir": str(base / "incoming"),
            "logger_name": "watchservice",
            "task_namespace": "tasks",
        },
    }


def _freeze(value: Any) -> Any:
    """Deep copy ``value`` into write-once ordered dictionaries, like a config loaded from a file."""
    return json.loads(json.dumps(value), object_pairs_hook=WriteOnceOrderedDict)


def _local_dirs(pipeline_config: Mapping[str, Any]) -> list[Path]:
    """The local directories a configuration needs: ``file://`` stores, working, log and incoming dirs."""
    global_ = pipeline_config["global"]
    dirs = [global_.get(key) for key in ("processing_dir", "tmp_dir", "wip_dir")]
    dirs += [
        uri[len(_FILE_SCHEME) :]
        for uri in (global_.get(key) for key in ("upload_uri", "archive_uri", "error_uri"))
        if isinstance(uri, str) and uri.startswith(_FILE_SCHEME)
    ]
    dirs += [pipeline_config["logging"].get("log_root"), pipeline_config["watch"].get("incoming_dir")]
    return [Path(d) for d in dirs if d]


def create_directories(pipeline_config: Mapping[str, Any]) -> list[Path]:
    """Create (if missing) the local directories the configuration points at; returns them."""
    dirs = _local_dirs(pipeline_config)
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
    return dirs


def _inject(
    pipeline_config: Mapping[str, Any], trigger_config: Any = None, watch_config: Any = None
) -> LazyConfigManager:
    config = LazyConfigManager()
    config.__dict__["pipeline_config"] = pipeline_config
    if trigger_config is not None:
        config.__dict__["trigger_config"] = trigger_config
    if watch_config is not None:
        config.__dict__["watch_config"] = watch_config
    return config


def default_config(
    base_dir: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    create_dirs: bool = True,
) -> LazyConfigManager:
    """A :class:`LazyConfigManager` holding the embedded defaults; no configuration file is read.

    :param base_dir: root of all stores and working directories (default ``./aodn-data``)
    :param overrides: per-section updates applied over the defaults, e.g. ``{'global': {'upload_uri':
        's3://bucket'}}``; keys of a section are replaced one by one (shallow), other keys keep their default
    :param create_dirs: create the local directories (``file://`` stores, working, log and incoming dirs)
    :raises jsonschema.exceptions.ValidationError: if the overrides make the configuration invalid
    """
    settings = default_pipeline_config(_base_path(base_dir))
    for section, values in (overrides or {}).items():
        settings.setdefault(section, {}).update(copy.deepcopy(dict(values)))
    validate_pipeline_config(settings)
    if create_dirs:
        create_directories(settings)
    return _inject(_freeze(settings), WriteOnceOrderedDict(), WriteOnceOrderedDict())


def load_config_file(
    path: str | os.PathLike[str],
    *,
    trigger_config_file: str | os.PathLike[str] | None = None,
    watch_config_file: str | os.PathLike[str] | None = None,
    create_dirs: bool = False,
) -> LazyConfigManager:
    """A :class:`LazyConfigManager` built from a user's pipeline config JSON file (validated).

    A missing ``pluggable`` section is filled with the canonical group names. The trigger and watch
    configurations come from the given files, else from the files named by ``$PIPELINE_TRIGGER_CONFIG_FILE`` /
    ``$PIPELINE_WATCH_CONFIG_FILE`` (loaded lazily), else they are empty.

    :raises InvalidConfigError: if a file cannot be read or is not JSON
    :raises jsonschema.exceptions.ValidationError: if the pipeline configuration is invalid
    """
    loaded = load_json_file(os.fspath(path))
    if isinstance(loaded, Mapping) and "pluggable" not in loaded:
        loaded = {**loaded, "pluggable": dict(DEFAULT_PLUGGABLE)}
    validate_pipeline_config(loaded)
    if create_dirs:
        create_directories(loaded)

    if trigger_config_file is not None:
        trigger_config = load_trigger_config(os.fspath(trigger_config_file), envvar="")
    elif os.environ.get(DEFAULT_TRIGGER_CONFIG_ENVVAR):
        trigger_config = None
    else:
        trigger_config = WriteOnceOrderedDict()

    if watch_config_file is not None:
        watch_config = load_watch_config(os.fspath(watch_config_file), envvar="")
    elif os.environ.get(DEFAULT_WATCH_CONFIG_ENVVAR):
        watch_config = None
    else:
        watch_config = WriteOnceOrderedDict()

    return _inject(_freeze(loaded), trigger_config, watch_config)
