"""Turn user-facing options (handler name, config file, store URIs, checks) into ``IngestSettings``.

Shared by the CLI and the Prefect flows, whose parameters must be plain strings and numbers.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aodncore.ingest.record import INGEST_RECORD_URL_ENV, IngestRecord, SqliteIngestRecord, open_ingest_record
from aodncore.ingest.runner import IngestSettings
from aodncore.pipeline.exceptions import InvalidHandlerError
from aodncore.pipeline.handlerref import handler_class_name, is_handler_factory
from aodncore.util.misc import discover_entry_points

__all__ = [
    "DEFAULT_HANDLER",
    "LEDGER_FILE_NAME",
    "apply_s3_endpoint",
    "build_settings",
    "ingest_record_location",
    "load_config",
    "load_handler_class",
    "open_existing_ledger",
    "planning_config",
]

DEFAULT_HANDLER = "aodncore.pipeline.imoshandler:ImosGenericHandler"
HANDLERS_GROUP = "pipeline.handlers"
LEDGER_FILE_NAME = "ingest-record.sqlite"


def load_handler_class(name: str | None = None, config: Any = None) -> Callable[..., Any]:
    """The handler class for ``name``: ``MODULE:CLASS``, an installed handler entry-point name, or the default.

    The result is returned as loaded: a ``HandlerBase`` subclass or a ``functools.partial`` of one (whose presets
    then apply to every handler built), or any other callable returning a handler.

    :raises InvalidHandlerError: if it cannot be found, or is neither a ``HandlerBase`` subclass nor a callable
        building one
    """
    name = name or DEFAULT_HANDLER
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            handler_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise InvalidHandlerError(f"cannot load handler '{name}': {error}") from error
    else:
        group = HANDLERS_GROUP
        if config is not None and "pipeline_config" in config.__dict__:
            group = config.pipeline_config.get("pluggable", {}).get("handlers_group", HANDLERS_GROUP)
        loaded, failed = discover_entry_points(group)
        if name not in loaded:
            reason = "failed to load" if name in failed else "is not installed"
            known = ", ".join(sorted(loaded)) or "none"
            raise InvalidHandlerError(f"handler '{name}' {reason} (installed handlers: {known})")
        handler_class = loaded[name]
    if not is_handler_factory(handler_class):
        raise InvalidHandlerError(f"'{name}' is not a HandlerBase subclass (or a callable building a handler)")
    return handler_class


def load_config(
    config_file: str | None = None,
    base_dir: str | None = None,
    *,
    upload_uri: str | None = None,
    archive_uri: str | None = None,
    error_uri: str | None = None,
    create_dirs: bool = True,
) -> Any:
    """A config from ``config_file``, or the embedded defaults under ``base_dir`` (default ``./aodn-data``).

    Explicit store URIs override either. ``create_dirs=False`` creates nothing on disk (the defaults' folders).
    """
    from aodncore.pipeline.defaultconfig import default_config, load_config_file

    overrides = {
        key: value
        for key, value in (("upload_uri", upload_uri), ("archive_uri", archive_uri), ("error_uri", error_uri))
        if value
    }
    if config_file:
        config = load_config_file(config_file)
        if overrides:
            from aodncore.pipeline.defaultconfig import _freeze

            merged = {section: dict(values) for section, values in config.pipeline_config.items()}
            merged["global"].update(overrides)
            config.__dict__["pipeline_config"] = _freeze(merged)
        return config
    return default_config(base_dir, {"global": overrides} if overrides else None, create_dirs=create_dirs)


def apply_s3_endpoint(config: Any) -> str | None:
    """Use ``global.s3_endpoint_url`` of the config for every S3 client, unless ``AWS_ENDPOINT_URL`` is set.

    The standard ``AWS_ENDPOINT_URL`` variable wins, so one configuration works against AWS and a local
    S3-compatible store alike. Returns the endpoint in force (``None`` for AWS itself).
    """
    configured = config.pipeline_config["global"].get("s3_endpoint_url")
    if configured and not os.environ.get("AWS_ENDPOINT_URL"):
        os.environ["AWS_ENDPOINT_URL"] = configured
    return os.environ.get("AWS_ENDPOINT_URL")


def ingest_record_location(config: Any, base_dir: str | None = None) -> str:
    """Where the ingest record lives: ``AODNCORE_INGEST_RECORD_URL``, else ``global.ingest_record_url`` of the
    config, else the SQLite file ``<base_dir>/ingest-record.sqlite`` (beside the default stores)."""
    configured = os.environ.get(INGEST_RECORD_URL_ENV) or config.pipeline_config["global"].get("ingest_record_url")
    if configured:
        return configured
    tmp_dir = config.pipeline_config["global"].get("tmp_dir")
    root = Path(base_dir) if base_dir else Path(tmp_dir).parent if tmp_dir else Path.cwd()
    return str(root / LEDGER_FILE_NAME)


_ledger_path = ingest_record_location


def planning_config(
    *,
    handler: str | None = None,
    config_file: str | None = None,
    base_dir: str | None = None,
    upload_uri: str | None = None,
    archive_uri: str | None = None,
    error_uri: str | None = None,
) -> Any:
    """The config of an ingest that is only planned (``--dry-run``): validated, handler checked, nothing created."""
    config = load_config(config_file, base_dir, upload_uri=upload_uri, archive_uri=archive_uri, error_uri=error_uri,
                         create_dirs=False)
    apply_s3_endpoint(config)
    load_handler_class(handler, config)
    return config


def open_existing_ledger(config: Any, base_dir: str | None = None) -> IngestRecord | None:
    """The ingest record of this configuration if it exists (None: nothing was ingested yet); nothing created
    locally (a PostgreSQL record is opened: its tables are created if missing, which changes no data)."""
    location = ingest_record_location(config, base_dir)
    if "://" in location and not location.startswith("sqlite:"):
        return open_ingest_record(location)
    path = location.removeprefix("sqlite:///")
    return SqliteIngestRecord(path, readonly=True) if os.path.isfile(path) else None
def open_record(config: Any, base_dir: str | None = None, location: str | None = None) -> IngestRecord:
    """The ingest record of this configuration (see :func:`ingest_record_location`)."""
    return open_ingest_record(location or ingest_record_location(config, base_dir))


def build_settings(
    *,
    handler: str | None = None,
    config_file: str | None = None,
    base_dir: str | None = None,
    upload_uri: str | None = None,
    archive_uri: str | None = None,
    error_uri: str | None = None,
    checks: Sequence[str] | None = None,
    handler_params: Mapping[str, Any] | None = None,
    delete_landing: bool = True,
    ledger_path: str | None = None,
    run_id: str | None = None,
) -> IngestSettings:
    """Everything an ingest run needs, from plain options.

    ``checks`` (e.g. ``['cf:1.6', 'imos:1.4']``) become the handler's ``check_params['checks']``.
    """
    config = load_config(config_file, base_dir, upload_uri=upload_uri, archive_uri=archive_uri, error_uri=error_uri)
    apply_s3_endpoint(config)
    handler_class = load_handler_class(handler, config)
    handler_kwargs = dict(handler_params or {})
    if checks:
        check_params = dict(handler_kwargs.get("check_params") or {})
        check_params["checks"] = list(checks)
        handler_kwargs["check_params"] = check_params
    work_dir = config.pipeline_config["global"].get("tmp_dir")
    if work_dir:
        os.makedirs(work_dir, exist_ok=True)
    return IngestSettings(
        handler_class=handler_class,
        config=config,
        handler_kwargs=handler_kwargs,
        work_dir=work_dir,
        pipeline_name=handler_class_name(handler_class),
        delete_landing=delete_landing,
        ledger=open_record(config, base_dir, ledger_path),
        run_id=run_id,
    )
