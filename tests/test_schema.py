"""Config and parameter schemas: Draft 7 semantics (``dependencies`` enforced), sections, types and enums."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

import aodncore
from aodncore.pipeline import schema
from aodncore.pipeline.schema import (
    validate_check_params,
    validate_custom_params,
    validate_harvest_params,
    validate_json_manifest,
    validate_logging_config,
    validate_notify_params,
    validate_pipeline_config,
    validate_resolve_params,
)

CONF_DIR = Path(aodncore.__file__).parent / "testlib" / "conf"


@pytest.fixture
def conf() -> dict:
    """The pipeline configuration shipped with the test kit, freshly loaded for each test."""
    with open(CONF_DIR / "pipeline.conf") as f:
        return json.load(f)


def test_all_names_exported():
    for name in schema.__all__:
        assert callable(getattr(schema, name))
    for name in (
        "CHECK_PARAMS_SCHEMA",
        "CUSTOM_PARAMS_SCHEMA",
        "HARVEST_PARAMS_SCHEMA",
        "LOGGING_CONFIG_SCHEMA",
        "NOTIFY_PARAMS_SCHEMA",
        "PIPELINE_CONFIG_SCHEMA",
        "RESOLVE_PARAMS_SCHEMA",
        "JSON_MANIFEST_SCHEMA",
    ):
        Draft7Validator.check_schema(getattr(schema, name))


# --- pipeline config -----------------------------------------------------------------------------------------------


def test_shipped_testlib_pipeline_conf_is_valid(conf):
    assert validate_pipeline_config(conf) is None


@pytest.mark.parametrize("section", ["global", "logging", "mail", "talend", "templating", "watch", "harvester"])
def test_required_sections(conf, section):
    del conf[section]
    with pytest.raises(ValidationError, match=section):
        validate_pipeline_config(conf)


def test_pluggable_and_trigger_sections_are_optional(conf):
    del conf["pluggable"]
    validate_pipeline_config(conf)


def test_unknown_section_rejected(conf):
    conf["extra"] = {}
    with pytest.raises(ValidationError, match="extra"):
        validate_pipeline_config(conf)


@pytest.mark.parametrize("section", ["global", "logging", "mail", "pluggable", "talend", "harvester", "watch"])
def test_unknown_key_in_section_rejected(conf, section):
    conf[section]["not_a_key"] = "x"
    with pytest.raises(ValidationError, match="not_a_key"):
        validate_pipeline_config(conf)


@pytest.mark.parametrize(
    "section,key",
    [
        ("global", "admin_recipients"),
        ("global", "upload_uri"),
        ("global", "wip_dir"),
        ("logging", "level"),
        ("mail", "smtp_pass"),
        ("pluggable", "path_function_group"),
        ("harvester", "schema_base_dir"),
        ("watch", "task_namespace"),
    ],
)
def test_required_keys(conf, section, key):
    del conf[section][key]
    with pytest.raises(ValidationError, match=key):
        validate_pipeline_config(conf)


@pytest.mark.parametrize("key", ["opendap_root", "wfs_url", "wfs_version"])
def test_optional_global_keys(conf, key):
    del conf["global"][key]
    validate_pipeline_config(conf)


def test_logging_levels(conf):
    for level in ("CRITICAL", "FATAL", "ERROR", "WARNING", "WARN", "INFO", "SYSINFO", "DEBUG", "NOTSET"):
        config = copy.deepcopy(conf)
        config["logging"]["level"] = level
        config["logging"]["lib_level"] = level
        validate_pipeline_config(config)
    conf["logging"]["level"] = "LOUD"
    with pytest.raises(ValidationError, match="LOUD"):
        validate_pipeline_config(conf)


def test_liblevel_spelling_is_not_allowed(conf):
    conf["logging"]["liblevel"] = "INFO"
    with pytest.raises(ValidationError):
        validate_pipeline_config(conf)


def test_type_errors(conf):
    conf["mail"]["smtp_port"] = "587"
    with pytest.raises(ValidationError, match="587"):
        validate_pipeline_config(conf)


def test_admin_recipients_must_be_strings(conf):
    conf["global"]["admin_recipients"] = [1]
    with pytest.raises(ValidationError):
        validate_pipeline_config(conf)


def test_prefect_branch_additions(conf):
    conf["global"]["landing_bucket"] = "landing"
    conf["global"]["optimised_uri"] = "s3://optimised"
    conf["trigger"] = {
        "trigger_type": "EVENT",
        "sns_topic_arn": "arn:aws:sns:ap-southeast-2:123:topic",
        "sns_message": "m",
        "prefect_api_key": "k",
        "prefect_queue_id": "q",
        "prefect_deployment_id": "d",
        "prefect_account_id": "a",
        "prefect_workspace_id": "w",
        "end_flow_function": "f",
    }
    validate_pipeline_config(conf)


def test_trigger_type_enum(conf):
    conf["trigger"] = {"trigger_type": "LOCAL_AGENT"}
    with pytest.raises(ValidationError, match="LOCAL_AGENT"):
        validate_pipeline_config(conf)
    conf["trigger"] = {"unknown": "x"}
    with pytest.raises(ValidationError):
        validate_pipeline_config(conf)


# --- harvest params: the ``dependencies`` keyword must really apply --------------------------------------------------

DB_OBJECTS = [{"name": "measurements", "type": "table", "dependencies": ["stations"]}]


def test_harvest_params_valid():
    validate_harvest_params({})
    validate_harvest_params({"slice_size": 10, "undo_previous_slices": True, "ingest_type": "append"})
    validate_harvest_params(
        {
            "db_schema": "anmn",
            "db_objects": DB_OBJECTS,
            "metadata_updates": [
                {
                    "uuid": "abc",
                    "spatial": {"table": "t", "column": "geom", "resolution": 3},
                    "temporal": {"table": "t", "column": "time"},
                    "vertical": {"table": "t", "column": "depth"},
                }
            ],
        }
    )


@pytest.mark.parametrize(
    "params",
    [
        {"db_schema": "anmn"},
        {"db_objects": DB_OBJECTS},
        {"db_schema": "anmn", "metadata_updates": []},
        {"db_objects": DB_OBJECTS, "metadata_updates": []},
        {"metadata_updates": []},
    ],
)
def test_harvest_params_dependencies_enforced(params):
    with pytest.raises(ValidationError, match="dependency|is a dependency"):
        validate_harvest_params(params)


@pytest.mark.parametrize(
    "params",
    [
        {"ingest_type": "upsert"},
        {"slice_size": "10"},
        {"undo_previous_slices": "yes"},
        {"unknown": 1},
        {"db_schema": "s", "db_objects": [{"name": "x"}]},
        {"db_schema": "s", "db_objects": [{"name": "x", "type": "table", "extra": 1}]},
        {"db_schema": "s", "db_objects": DB_OBJECTS, "metadata_updates": [{"spatial": {}}]},
        {
            "db_schema": "s",
            "db_objects": DB_OBJECTS,
            "metadata_updates": [{"uuid": "u", "spatial": {"table": "t", "column": "c"}}],
        },
        {"db_schema": "s", "db_objects": DB_OBJECTS, "metadata_updates": [{"uuid": "u", "temporal": {"table": "t"}}]},
    ],
)
def test_harvest_params_invalid(params):
    with pytest.raises(ValidationError):
        validate_harvest_params(params)


# --- other parameter schemas ----------------------------------------------------------------------------------------


def test_check_params():
    validate_check_params({"checks": ["cf", "imos:1.4"], "criteria": "normal", "skip_checks": ["x"], "verbosity": 1})
    validate_check_params({"checks": [], "output_format": "text"})
    for bad in ({"checks": "cf"}, {"verbosity": "1"}, {"skip_checks": [1]}, {"other": 1}, "cf"):
        with pytest.raises(ValidationError):
            validate_check_params(bad)


def test_custom_params():
    validate_custom_params({})
    validate_custom_params({"anything": {"nested": [1, 2]}})
    with pytest.raises(ValidationError):
        validate_custom_params("invalid_type")


def test_notify_params():
    validate_notify_params(
        {
            "notify_owner_error": True,
            "notify_owner_success": False,
            "error_notify_list": ["email:a@example.com"],
            "owner_notify_list": [],
            "success_notify_list": ["sns:topic"],
        }
    )
    for bad in ({"notify_owner_error": "true"}, {"error_notify_list": "a@example.com"}, {"cc": []}):
        with pytest.raises(ValidationError):
            validate_notify_params(bad)


def test_resolve_params():
    validate_resolve_params({"allow_delete_manifests": True, "relative_path_root": "/tmp"})
    for bad in ({"allow_delete_manifests": 1}, {"relative_path_root": 5}, {"other": True}):
        with pytest.raises(ValidationError):
            validate_resolve_params(bad)


def test_json_manifest():
    validate_json_manifest({"files": [{"local_path": "/a/b.nc", "dest_path": "X/b.nc"}, {"local_path": "/c.nc"}]})
    validate_json_manifest({"files": [], "comment": "extra top-level keys are allowed"})
    for bad in ({"files": [{"dest_path": "X/b.nc"}]}, {"files": [{"local_path": "/a", "size": 1}]}, []):
        with pytest.raises(ValidationError):
            validate_json_manifest(bad)


def test_logging_config():
    good = {"version": 1, "formatters": {}, "handlers": {}, "loggers": {}}
    validate_logging_config(good)
    validate_logging_config({**good, "filters": {}})
    for bad in ({**good, "version": 2}, {"version": 1, "formatters": {}, "handlers": {}}, {**good, "root": {}}):
        with pytest.raises(ValidationError):
            validate_logging_config(bad)
