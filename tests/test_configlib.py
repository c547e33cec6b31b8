"""LazyConfigManager and the JSON config loaders."""

from __future__ import annotations

import json
import logging.config
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
from jsonschema.exceptions import ValidationError

import aodncore
from aodncore.pipeline import configlib
from aodncore.pipeline.config import CONFIG
from aodncore.pipeline.configlib import (
    DEFAULT_CONFIG_ENVVAR,
    DEFAULT_TRIGGER_CONFIG_ENVVAR,
    DEFAULT_WATCH_CONFIG_ENVVAR,
    LazyConfigManager,
    load_json_file,
    load_pipeline_config,
    load_trigger_config,
    load_watch_config,
    validate_lazyconfigmanager,
)
from aodncore.pipeline.exceptions import InvalidConfigError
from aodncore.pipeline.log import get_pipeline_logger
from aodncore.util.misc import WriteOnceOrderedDict

CONF_DIR = Path(aodncore.__file__).parent / "testlib" / "conf"
PIPELINE_CONF = CONF_DIR / "pipeline.conf"
TRIGGER_CONF = CONF_DIR / "trigger.conf"
WATCHES_CONF = CONF_DIR / "watches.conf"


@pytest.fixture
def nonexistent(tmp_path) -> str:
    return str(tmp_path / "does" / "not" / "exist.conf")


@pytest.fixture
def env_configs(monkeypatch):
    """Point all three config env vars at the shipped testlib files."""
    monkeypatch.setenv(DEFAULT_CONFIG_ENVVAR, str(PIPELINE_CONF))
    monkeypatch.setenv(DEFAULT_TRIGGER_CONFIG_ENVVAR, str(TRIGGER_CONF))
    monkeypatch.setenv(DEFAULT_WATCH_CONFIG_ENVVAR, str(WATCHES_CONF))


def test_constants():
    assert configlib.DEFAULT_CONFIG_FILE == "/mnt/ebs/pipeline/etc/pipeline.conf"
    assert configlib.DEFAULT_CONFIG_ENVVAR == "PIPELINE_CONFIG_FILE"
    assert configlib.DEFAULT_WATCH_CONFIG == "/mnt/ebs/pipeline/etc/watches.conf"
    assert configlib.DEFAULT_WATCH_CONFIG_ENVVAR == "PIPELINE_WATCH_CONFIG_FILE"
    assert configlib.DEFAULT_TRIGGER_CONFIG == "/usr/local/talend/etc/trigger.conf"
    assert configlib.DEFAULT_TRIGGER_CONFIG_ENVVAR == "PIPELINE_TRIGGER_CONFIG_FILE"


# --- loaders ---------------------------------------------------------------------------------------------------------


def test_load_json_file_gives_write_once_ordered_dicts():
    config = load_json_file(str(PIPELINE_CONF))
    assert isinstance(config, WriteOnceOrderedDict)
    assert isinstance(config["global"], WriteOnceOrderedDict)
    assert list(config) == ["global", "logging", "mail", "pluggable", "talend", "harvester", "templating", "watch"]
    with pytest.raises(RuntimeError):
        config["global"]["upload_uri"] = "file:///elsewhere"


def test_load_json_file_duplicate_key_raises_runtime_error(tmp_path):
    path = tmp_path / "dup.conf"
    path.write_text('{"global": {"a": 1, "a": 2}}')
    with pytest.raises(RuntimeError, match="'a'"):
        load_json_file(str(path))


def test_load_json_file_custom_hook(tmp_path):
    path = tmp_path / "dup.conf"
    path.write_text('{"a": 1, "a": 2}')
    assert load_json_file(str(path), object_pairs_hook=dict) == {"a": 2}


def test_load_json_file_missing_file(nonexistent):
    with pytest.raises(InvalidConfigError, match=r"^FileNotFoundError: .*exist\.conf"):
        load_json_file(nonexistent)


def test_load_json_file_invalid_json_names_file(tmp_path):
    path = tmp_path / "broken.conf"
    path.write_text('{"global": ')
    with pytest.raises(InvalidConfigError, match="broken.conf"):
        load_json_file(str(path))


def test_load_json_file_envvar_overrides_default(monkeypatch, nonexistent):
    monkeypatch.setenv("MY_CONFIG_VAR", str(TRIGGER_CONF))
    assert "zzz_my_test_harvester" in load_json_file(nonexistent, envvar="MY_CONFIG_VAR")
    monkeypatch.delenv("MY_CONFIG_VAR")
    with pytest.raises(InvalidConfigError):
        load_json_file(nonexistent, envvar="MY_CONFIG_VAR")


def test_load_pipeline_config_nonexistent(nonexistent):
    with pytest.raises(InvalidConfigError):
        load_pipeline_config(nonexistent, envvar="")


def test_load_pipeline_config_default_argument_is_watch_path():
    # compatible quirk: the first parameter's default is the *watch* config path
    import inspect

    default = inspect.signature(load_pipeline_config).parameters["default_config_file"].default
    assert default == configlib.DEFAULT_WATCH_CONFIG


def test_load_pipeline_config_envvar(monkeypatch, nonexistent):
    monkeypatch.setenv(DEFAULT_CONFIG_ENVVAR, str(PIPELINE_CONF))
    assert load_pipeline_config(nonexistent)["watch"]["task_namespace"] == "tasks"


def test_load_trigger_config_is_ordered_as_in_file():
    config = load_trigger_config(str(TRIGGER_CONF))
    assert isinstance(config, OrderedDict)
    assert list(config) == ["zzz_my_test_harvester", "aaa_my_test_harvester", "mmm_my_test_harvester"]
    aaa = config["aaa_my_test_harvester"]
    assert aaa["events"][0] == {"regex": [".*"], "extra_params": "--collection my_test_collection"}
    assert aaa["events"][1] == {"regex": [".*"]}
    assert aaa["exec"] == (
        'echo aaa_my_test_harvester --context_param paramFile="/usr/local/talend/jobs/param_file.conf" '
        "--context_param base=%{base} --context_param fileList=%{file_list} --context_param logDir=%{log_dir}"
    )


def test_load_trigger_and_watch_config_envvars(monkeypatch, nonexistent):
    monkeypatch.setenv(DEFAULT_TRIGGER_CONFIG_ENVVAR, str(TRIGGER_CONF))
    monkeypatch.setenv(DEFAULT_WATCH_CONFIG_ENVVAR, str(WATCHES_CONF))
    assert "mmm_my_test_harvester" in load_trigger_config(nonexistent)
    assert "SOOP_DU_JOUR" in load_watch_config(nonexistent)


def test_shipped_watches_conf():
    config = load_watch_config(str(WATCHES_CONF), envvar="")
    assert list(config) == ["ANMN_QLD_XXXX", "SOOP_DU_JOUR"]
    assert config["ANMN_QLD_XXXX"] == {
        "path": ["ANMN/QLD/XXXX"],
        "handler": "DummyHandler",
        "params": {
            "include_regexes": [".*"],
            "check_params": {"checks": ["cf"]},
            "notify_params": {"error_notify_list": ["4.XXXX"]},
        },
        "success_exit_policies": ["DELETE_SAME_NAME_FROM_ERROR_STORE"],
        "error_exit_policies": [],
    }
    assert config["SOOP_DU_JOUR"] == {
        "path": ["SOOP/DU/JOUR", "SOOP/A/L/OIGNON"],
        "handler": "DummyHandler",
        "params": {},
    }


def test_shipped_pipeline_conf_reference_values():
    config = load_json_file(str(PIPELINE_CONF))
    assert config["global"]["archive_uri"] == "file:///tmp/probably/doesnt/exist/archive"
    assert config["global"]["admin_recipients"] == ["unittest:dummy"]
    assert config["logging"]["pipeline_format"] == "%(asctime)s %(levelname)s %(name)s[%(celery_task_id)s] %(message)s"
    assert config["mail"]["smtp_server"] == "028fbd24-a700-40af-95c9-155c3b023a64"
    assert config["pluggable"]["path_function_group"] == "pipeline.path_functions"
    assert config["templating"]["text_notification_template"] == "notify.txt.j2"


# --- LazyConfigManager -----------------------------------------------------------------------------------------------


def test_config_singleton_and_validator():
    assert isinstance(CONFIG, LazyConfigManager)
    validate_lazyconfigmanager(CONFIG)
    with pytest.raises(TypeError):
        validate_lazyconfigmanager({"pipeline_config": {}})


def test_nothing_is_loaded_on_construction(monkeypatch, nonexistent):
    monkeypatch.setenv(DEFAULT_CONFIG_ENVVAR, nonexistent)
    config = LazyConfigManager()
    assert "pipeline_config" not in config.__dict__
    with pytest.raises(InvalidConfigError):
        _ = config.pipeline_config


def test_values_loaded_from_env_files_and_cached(env_configs):
    config = LazyConfigManager()
    pipeline_config = config.pipeline_config
    assert pipeline_config["watch"]["incoming_dir"] == "/tmp/probably/doesnt/exist/incoming"
    assert config.__dict__["pipeline_config"] is pipeline_config
    assert config.pipeline_config is pipeline_config
    assert list(config.trigger_config)[0] == "zzz_my_test_harvester"
    assert list(config.watch_config) == ["ANMN_QLD_XXXX", "SOOP_DU_JOUR"]


def test_invalid_pipeline_config_raises_validation_error(monkeypatch, tmp_path):
    data = json.loads(PIPELINE_CONF.read_text())
    del data["watch"]
    path = tmp_path / "pipeline.conf"
    path.write_text(json.dumps(data))
    monkeypatch.setenv(DEFAULT_CONFIG_ENVVAR, str(path))
    with pytest.raises(ValidationError, match="watch"):
        _ = LazyConfigManager().pipeline_config


def test_injection_bypasses_file_loading(monkeypatch, nonexistent):
    for var in (DEFAULT_CONFIG_ENVVAR, DEFAULT_TRIGGER_CONFIG_ENVVAR, DEFAULT_WATCH_CONFIG_ENVVAR):
        monkeypatch.setenv(var, nonexistent)
    config = LazyConfigManager()
    injected = {"pluggable": {"path_function_group": "my.group"}}
    config.__dict__["pipeline_config"] = injected
    config.__dict__["trigger_config"] = {"h": {}}
    config.__dict__["watch_config"] = {}
    config.__dict__["discovered_dest_path_functions"] = ({"f": len}, [])
    config.__dict__["discovered_handlers"] = ({}, ["Broken"])
    assert config.pipeline_config is injected  # not validated, not loaded
    assert config.trigger_config == {"h": {}}
    assert config.watch_config == {}
    assert config.discovered_dest_path_functions == ({"f": len}, [])
    assert config.discovered_handlers == ({}, ["Broken"])


def test_discovered_entry_points_use_configured_groups():
    config = LazyConfigManager()
    config.__dict__["pipeline_config"] = json.loads(PIPELINE_CONF.read_text())
    loaded, failed = config.discovered_dest_path_functions
    from aodncore.pipeline.pathfunctions import imos_dest_path

    assert loaded["imos_dest_path"] is imos_dest_path
    assert failed == []
    versions, _ = config.discovered_module_versions
    import compliance_checker

    assert versions["compliance-checker"] == compliance_checker.__version__
    handlers = config.discovered_handlers
    assert isinstance(handlers, tuple) and isinstance(handlers[0], dict)


def test_discovered_entry_points_other_group():
    config = LazyConfigManager()
    pipeline_config = json.loads(PIPELINE_CONF.read_text())
    pipeline_config["pluggable"]["path_function_group"] = "no.such.group.anywhere"
    config.__dict__["pipeline_config"] = pipeline_config
    assert config.discovered_dest_path_functions == ({}, [])


def _config_with(tmp_path, watch_config=None) -> LazyConfigManager:
    pipeline_config = json.loads(PIPELINE_CONF.read_text())
    pipeline_config["logging"]["log_root"] = str(tmp_path)
    pipeline_config["watch"]["incoming_dir"] = "/incoming"
    config = LazyConfigManager()
    config.__dict__["pipeline_config"] = pipeline_config
    config.__dict__["watch_config"] = watch_config if watch_config is not None else load_json_file(str(WATCHES_CONF))
    return config


def test_celery_routes(tmp_path):
    assert _config_with(tmp_path).celery_routes == {
        "tasks.ANMN_QLD_XXXX": {"queue": "ANMN_QLD_XXXX", "routing_key": "ANMN_QLD_XXXX"},
        "tasks.SOOP_DU_JOUR": {"queue": "SOOP_DU_JOUR", "routing_key": "SOOP_DU_JOUR"},
    }


def test_watch_directory_map(tmp_path):
    assert _config_with(tmp_path).watch_directory_map == {
        "/incoming/ANMN/QLD/XXXX": "ANMN_QLD_XXXX",
        "/incoming/SOOP/DU/JOUR": "SOOP_DU_JOUR",
        "/incoming/SOOP/A/L/OIGNON": "SOOP_DU_JOUR",
    }


def test_watchservice_logging_config(tmp_path):
    config = _config_with(tmp_path)
    logging_config = config.watchservice_logging_config
    assert logging_config["version"] == 1
    assert list(logging_config["handlers"]) == ["watchservice_handler"]
    assert logging_config["loggers"]["watchservice"]["level"] == "SYSINFO"
    assert config.__dict__["watchservice_logging_config"] is logging_config


def test_get_worker_logging_config_is_usable(tmp_path):
    config = _config_with(tmp_path)
    worker_config = config.get_worker_logging_config("tasks.ANMN_QLD_XXXX")
    assert list(worker_config["handlers"]) == ["tasks.ANMN_QLD_XXXX_handler"]
    handler = worker_config["handlers"]["tasks.ANMN_QLD_XXXX_handler"]
    assert handler["filename"] == str(tmp_path / "process" / "tasks.ANMN_QLD_XXXX.log")
    (tmp_path / "process").mkdir()
    # do not disable the loggers other tests have created
    logging.config.dictConfig({**worker_config, "disable_existing_loggers": False})
    logger = logging.getLogger("tasks.ANMN_QLD_XXXX")
    try:
        get_pipeline_logger("tasks.ANMN_QLD_XXXX", extra={"celery_task_id": "abc123"}).sysinfo("hello from the worker")
        for h in logger.handlers:
            h.flush()
        assert "[abc123] hello from the worker" in (tmp_path / "process" / "tasks.ANMN_QLD_XXXX.log").read_text()
    finally:
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()


def test_celery_application_without_celery_is_a_clear_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)  # makes "import celery" raise ImportError
    config = _config_with(tmp_path)
    with pytest.raises(InvalidConfigError, match="celery"):
        _ = config.celery_application
    assert "celery_application" not in config.__dict__


def test_testlib_conf_is_an_importable_package_with_the_three_files():
    import inspect

    from aodncore.testlib import conf

    conf_dir = Path(inspect.getfile(conf)).parent
    assert conf_dir == CONF_DIR
    assert {p.name for p in conf_dir.glob("*.conf")} == {"pipeline.conf", "trigger.conf", "watches.conf"}


def test_test_config_validates_against_the_schema(tmp_path):
    from aodncore.pipeline.schema import validate_pipeline_config
    from aodncore.testlib.testutil import get_test_config

    config = get_test_config(str(tmp_path))
    validate_pipeline_config(config.pipeline_config)
    assert config.pipeline_config["global"]["upload_uri"].startswith(f"file://{tmp_path}")
