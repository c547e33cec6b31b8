"""JSON schemas for the pipeline configuration and handler parameters, and the functions validating them.

Every schema is checked with an explicit Draft 7 validator. ``jsonschema.validate()`` would pick the newest draft
(2020-12), in which the ``dependencies`` keyword used by :data:`HARVEST_PARAMS_SCHEMA` is silently ignored.
All ``validate_*`` functions return ``None`` and raise :class:`jsonschema.exceptions.ValidationError` on failure.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator

from aodncore.limits import limits_schema

__all__ = [
    "validate_check_params",
    "validate_custom_params",
    "validate_harvest_params",
    "validate_json_manifest",
    "validate_logging_config",
    "validate_pipeline_config",
    "validate_notify_params",
    "validate_resolve_params",
]

_STRING = {"type": "string"}
_BOOLEAN = {"type": "boolean"}
_INTEGER = {"type": "integer"}
_STRING_ARRAY = {"type": "array", "items": _STRING}

LOGGING_LEVELS = ["CRITICAL", "FATAL", "ERROR", "WARNING", "WARN", "INFO", "SYSINFO", "DEBUG", "NOTSET"]


def _section(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """A closed object schema: only ``properties`` are allowed, ``required`` must be present."""
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


_GLOBAL_SECTION = _section(
    {
        "admin_recipients": _STRING_ARRAY,
        "landing_bucket": _STRING,
        "manifest_roots": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "archive_uri": _STRING,
        "error_uri": _STRING,
        "ingest_record_url": _STRING,
        "optimised_uri": _STRING,
        "opendap_root": _STRING,
        "processing_dir": _STRING,
        "s3_endpoint_url": _STRING,
        "tmp_dir": _STRING,
        "upload_uri": _STRING,
        "wfs_url": _STRING,
        "wfs_version": _STRING,
        "wip_dir": _STRING,
    },
    ["admin_recipients", "archive_uri", "error_uri", "processing_dir", "upload_uri", "wip_dir"],
)

_LOGGING_SECTION = _section(
    {
        "level": {"$ref": "#/definitions/loggingLevel"},
        "lib_level": {"$ref": "#/definitions/loggingLevel"},
        "pipeline_format": _STRING,
        "log_root": _STRING,
        "watchservice_format": _STRING,
    },
    ["level", "pipeline_format", "log_root", "watchservice_format"],
)

_MAIL_SECTION = _section(
    {
        "from": _STRING,
        "subject": _STRING,
        "smtp_server": _STRING,
        "smtp_port": _INTEGER,
        "smtp_user": _STRING,
        "smtp_pass": _STRING,
    },
    ["from", "subject", "smtp_server", "smtp_user", "smtp_pass"],
)

_PLUGGABLE_SECTION = _section(
    {"handlers_group": _STRING, "path_function_group": _STRING, "module_versions_group": _STRING},
    ["handlers_group", "path_function_group", "module_versions_group"],
)

_TALEND_SECTION = _section({"talend_log_dir": _STRING}, ["talend_log_dir"])

_HARVESTER_SECTION = _section({"config_dir": _STRING, "schema_base_dir": _STRING}, ["config_dir", "schema_base_dir"])

_TEMPLATING_SECTION = _section(
    {"template_package": _STRING, "html_notification_template": _STRING, "text_notification_template": _STRING},
    ["template_package", "html_notification_template", "text_notification_template"],
)

_WATCH_SECTION = _section(
    {"incoming_dir": _STRING, "logger_name": _STRING, "task_namespace": _STRING},
    ["incoming_dir", "logger_name", "task_namespace"],
)

_TRIGGER_SECTION = _section(
    {
        "trigger_type": {"type": "string", "enum": ["EVENT"]},
        "sns_topic_arn": _STRING,
        "sns_message": _STRING,
        "prefect_api_key": _STRING,
        "prefect_queue_id": _STRING,
        "prefect_deployment_id": _STRING,
        "prefect_account_id": _STRING,
        "prefect_workspace_id": _STRING,
        "end_flow_function": _STRING,
    }
)

PIPELINE_CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "definitions": {"loggingLevel": {"type": "string", "enum": LOGGING_LEVELS}},
    "type": "object",
    "properties": {
        "global": _GLOBAL_SECTION,
        "logging": _LOGGING_SECTION,
        "mail": _MAIL_SECTION,
        "pluggable": _PLUGGABLE_SECTION,
        "talend": _TALEND_SECTION,
        "harvester": _HARVESTER_SECTION,
        "templating": _TEMPLATING_SECTION,
        "watch": _WATCH_SECTION,
        "trigger": _TRIGGER_SECTION,
        "limits": limits_schema(),
    },
    "required": ["global", "logging", "mail", "talend", "templating", "watch", "harvester"],
    "additionalProperties": False,
}

CHECK_PARAMS_SCHEMA: dict[str, Any] = _section(
    {
        "checks": {"type": "array"},
        "criteria": _STRING,
        "skip_checks": _STRING_ARRAY,
        "output_format": _STRING,
        "verbosity": _INTEGER,
        "tableschema_filename_pattern": _STRING,
        "legacy_cf_verdicts": _BOOLEAN,
        "cc_fast_path": _BOOLEAN,  # aodncore.checks.ccfast switch (default on)
    }
)

CUSTOM_PARAMS_SCHEMA: dict[str, Any] = {"type": "object"}

_TABLE_COLUMN = _section({"table": _STRING, "column": _STRING}, ["table", "column"])

HARVEST_PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "slice_size": _INTEGER,
        "undo_previous_slices": _BOOLEAN,
        "ingest_type": {"type": "string", "enum": ["replace", "truncate", "append"]},
        "db_schema": _STRING,
        "db_objects": {
            "type": "array",
            "items": _section({"name": _STRING, "type": _STRING, "dependencies": _STRING_ARRAY}, ["name", "type"]),
        },
        "metadata_updates": {
            "type": "array",
            "items": _section(
                {
                    "uuid": _STRING,
                    "spatial": _section(
                        {"table": _STRING, "column": _STRING, "resolution": _INTEGER},
                        ["table", "column", "resolution"],
                    ),
                    "temporal": _TABLE_COLUMN,
                    "vertical": _TABLE_COLUMN,
                },
                ["uuid"],
            ),
        },
    },
    "additionalProperties": False,
    "dependencies": {
        "db_schema": ["db_objects"],
        "db_objects": ["db_schema"],
        "metadata_updates": ["db_schema", "db_objects"],
    },
}

NOTIFY_PARAMS_SCHEMA: dict[str, Any] = _section(
    {
        "notify_owner_error": _BOOLEAN,
        "notify_owner_success": _BOOLEAN,
        "error_notify_list": _STRING_ARRAY,
        "owner_notify_list": _STRING_ARRAY,
        "success_notify_list": _STRING_ARRAY,
    }
)

RESOLVE_PARAMS_SCHEMA: dict[str, Any] = _section({"allow_delete_manifests": _BOOLEAN, "relative_path_root": _STRING})

JSON_MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "files": {
            "type": "array",
            "items": _section({"local_path": _STRING, "dest_path": _STRING}, ["local_path"]),
        }
    },
}

LOGGING_CONFIG_SCHEMA: dict[str, Any] = _section(
    {
        "version": {"type": "integer", "enum": [1]},
        "formatters": {"type": "object"},
        "filters": {"type": "object"},
        "handlers": {"type": "object"},
        "loggers": {"type": "object"},
    },
    ["version", "formatters", "handlers", "loggers"],
)


def _validator_for(schema: dict[str, Any]) -> Any:
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


_PIPELINE_CONFIG_VALIDATOR = _validator_for(PIPELINE_CONFIG_SCHEMA)
_CHECK_PARAMS_VALIDATOR = _validator_for(CHECK_PARAMS_SCHEMA)
_CUSTOM_PARAMS_VALIDATOR = _validator_for(CUSTOM_PARAMS_SCHEMA)
_HARVEST_PARAMS_VALIDATOR = _validator_for(HARVEST_PARAMS_SCHEMA)
_NOTIFY_PARAMS_VALIDATOR = _validator_for(NOTIFY_PARAMS_SCHEMA)
_RESOLVE_PARAMS_VALIDATOR = _validator_for(RESOLVE_PARAMS_SCHEMA)
_JSON_MANIFEST_VALIDATOR = _validator_for(JSON_MANIFEST_SCHEMA)
_LOGGING_CONFIG_VALIDATOR = _validator_for(LOGGING_CONFIG_SCHEMA)


def validate_pipeline_config(config: Any) -> None:
    """Validate a whole ``pipeline.conf`` document against :data:`PIPELINE_CONFIG_SCHEMA`."""
    _PIPELINE_CONFIG_VALIDATOR.validate(config)


def validate_check_params(params: Any) -> None:
    """Validate a handler's ``check_params`` against :data:`CHECK_PARAMS_SCHEMA`."""
    _CHECK_PARAMS_VALIDATOR.validate(params)


def validate_custom_params(params: Any) -> None:
    """Validate a handler's ``custom_params`` (any JSON object) against :data:`CUSTOM_PARAMS_SCHEMA`."""
    _CUSTOM_PARAMS_VALIDATOR.validate(params)


def validate_harvest_params(params: Any) -> None:
    """Validate ``harvest_params`` against :data:`HARVEST_PARAMS_SCHEMA`, including its ``dependencies`` rules."""
    _HARVEST_PARAMS_VALIDATOR.validate(params)


def validate_notify_params(params: Any) -> None:
    """Validate a handler's ``notify_params`` against :data:`NOTIFY_PARAMS_SCHEMA`."""
    _NOTIFY_PARAMS_VALIDATOR.validate(params)


def validate_resolve_params(params: Any) -> None:
    """Validate a handler's ``resolve_params`` against :data:`RESOLVE_PARAMS_SCHEMA`."""
    _RESOLVE_PARAMS_VALIDATOR.validate(params)


def validate_json_manifest(manifest: Any) -> None:
    """Validate a parsed JSON manifest against :data:`JSON_MANIFEST_SCHEMA`."""
    _JSON_MANIFEST_VALIDATOR.validate(manifest)


def validate_logging_config(config: Any) -> None:
    """Validate a ``logging.config.dictConfig`` dictionary against :data:`LOGGING_CONFIG_SCHEMA`."""
    _LOGGING_CONFIG_VALIDATOR.validate(config)
