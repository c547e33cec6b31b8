"""Embedded default configuration and loading of a user's pipeline config file."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
from jsonschema.exceptions import ValidationError

import aodncore
from aodncore.pipeline.configlib import (
    DEFAULT_CONFIG_ENVVAR,
    DEFAULT_TRIGGER_CONFIG_ENVVAR,
    DEFAULT_WATCH_CONFIG_ENVVAR,
    LazyConfigManager,
)
from aodncore.pipeline.defaultconfig import (
    DEFAULT_BASE_DIR,
    DEFAULT_PLUGGABLE,
    create_directories,
    default_config,
    default_pipeline_config,
    load_config_file,
)
from aodncore.pipeline.destpath import get_path_function
from aodncore.pipeline.exceptions import InvalidConfigError
from aodncore.pipeline.pathfunctions import imos_dest_path
from aodncore.pipeline.schema import validate_pipeline_config

CONF_DIR = Path(aodncore.__file__).parent / "testlib" / "conf"


@pytest.fixture(autouse=True)
def no_config_env(monkeypatch, tmp_path):
    """No test here may read the machine's real config files."""
    monkeypatch.setenv(DEFAULT_CONFIG_ENVVAR, str(tmp_path / "missing.conf"))
    monkeypatch.delenv(DEFAULT_TRIGGER_CONFIG_ENVVAR, raising=False)
    monkeypatch.delenv(DEFAULT_WATCH_CONFIG_ENVVAR, raising=False)


def test_default_pipeline_config_is_valid_and_pure(tmp_path):
    config = default_pipeline_config(tmp_path / "base")
    validate_pipeline_config(config)
    assert not (tmp_path / "base").exists()


def test_default_pipeline_config_layout(tmp_path):
    base = tmp_path / "base"
    config = default_pipeline_config(str(base))
    assert config["global"]["upload_uri"] == f"file://{base}/published"
    assert config["global"]["archive_uri"] == f"file://{base}/archive"
    assert config["global"]["error_uri"] == f"file://{base}/error"
    assert config["global"]["processing_dir"] == f"{base}/work/processing"
    assert config["global"]["tmp_dir"] == f"{base}/work/tmp"
    assert config["global"]["wip_dir"] == f"{base}/work/wip"
    assert config["global"]["admin_recipients"] == []
    assert config["logging"]["log_root"] == f"{base}/logs"
    assert config["mail"]["smtp_server"] == "localhost"
    expected_groups = {"handlers_group": "pipeline.handlers", "path_function_group": "pipeline.path_functions",
                       "module_versions_group": "pipeline.module_versions"}
    assert config["pluggable"] == DEFAULT_PLUGGABLE == expected_groups
    assert config["templating"]["text_notification_template"] == "notify.txt.j2"
    assert config["templating"]["html_notification_template"] == "notify.html.j2"


def test_relative_base_dir_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = default_pipeline_config("rel")
    assert config["global"]["upload_uri"] == f"file://{tmp_path}/rel/published"


def test_default_config_injects_everything(tmp_path):
    base = tmp_path / "data"
    config = default_config(base)
    assert isinstance(config, LazyConfigManager)
    assert set(config.__dict__) >= {"pipeline_config", "trigger_config", "watch_config"}
    assert config.pipeline_config["global"]["upload_uri"] == f"file://{base}/published"
    assert isinstance(config.trigger_config, OrderedDict) and config.trigger_config == {}
    assert config.watch_config == {}
    # loaded like a file: write-once
    with pytest.raises(RuntimeError):
        config.pipeline_config["global"]["upload_uri"] = "s3://elsewhere"


def test_default_config_creates_directories(tmp_path):
    base = tmp_path / "data"
    default_config(base)
    for relative in ("published", "archive", "error", "work/processing", "work/tmp", "work/wip", "logs", "incoming"):
        assert (base / relative).is_dir(), relative


def test_default_config_without_creating_directories(tmp_path):
    default_config(tmp_path / "data", create_dirs=False)
    assert not (tmp_path / "data").exists()


def test_default_base_dir_is_cwd_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = default_config()
    assert DEFAULT_BASE_DIR == "aodn-data"
    assert config.pipeline_config["global"]["upload_uri"] == f"file://{tmp_path}/aodn-data/published"
    assert (tmp_path / "aodn-data" / "published").is_dir()


def test_overrides_are_per_section(tmp_path):
    config = default_config(
        tmp_path,
        overrides={
            "global": {"upload_uri": "s3://bucket", "admin_recipients": ["email:ops@example.com"]},
            "trigger": {"trigger_type": "EVENT"},
        },
    )
    global_ = config.pipeline_config["global"]
    assert global_["upload_uri"] == "s3://bucket"
    assert global_["admin_recipients"] == ["email:ops@example.com"]
    assert global_["archive_uri"] == f"file://{tmp_path}/archive"  # untouched
    assert config.pipeline_config["trigger"] == {"trigger_type": "EVENT"}
    assert not (tmp_path / "published").exists()  # not a local store any more


def test_invalid_overrides_rejected(tmp_path):
    with pytest.raises(ValidationError, match="smtp_port"):
        default_config(tmp_path, overrides={"mail": {"smtp_port": "25"}})
    with pytest.raises(ValidationError):
        default_config(tmp_path, overrides={"global": {"unknown": "x"}})


def test_default_config_reads_no_files(tmp_path, monkeypatch):
    monkeypatch.setenv(DEFAULT_TRIGGER_CONFIG_ENVVAR, str(tmp_path / "missing-trigger.conf"))
    config = default_config(tmp_path)
    assert config.trigger_config == {}


def test_default_handler_path_function_resolves(tmp_path):
    """The embedded config's path function group finds imos_dest_path by name."""

    class Handler:
        dest_path_function = "imos_dest_path"
        archive_path_function = None

        def __init__(self, config):
            self.config = config

    handler = Handler(default_config(tmp_path, create_dirs=False))
    function, name = get_path_function(handler, handler.config.pipeline_config["pluggable"]["path_function_group"])
    assert function is imos_dest_path
    assert name == "aodncore.pipeline.pathfunctions.imos_dest_path"


def test_create_directories_only_for_local_stores(tmp_path):
    config = default_pipeline_config(tmp_path)
    config["global"]["archive_uri"] = "s3://bucket/archive"
    created = create_directories(config)
    assert tmp_path / "published" in created
    assert not (tmp_path / "archive").exists()


# --- load_config_file ------------------------------------------------------------------------------------------------


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_load_config_file(tmp_path):
    user = default_pipeline_config(tmp_path)
    user["global"]["upload_uri"] = "s3://published-bucket"
    config = load_config_file(_write(tmp_path / "pipeline.conf", user))
    assert config.pipeline_config["global"]["upload_uri"] == "s3://published-bucket"
    assert config.trigger_config == {}
    assert config.watch_config == {}
    assert not (tmp_path / "work").exists()


def test_load_config_file_shipped_testlib_conf():
    config = load_config_file(CONF_DIR / "pipeline.conf")
    assert config.pipeline_config["mail"]["from"] == "info@aodn.org.au"


def test_load_config_file_fills_missing_pluggable(tmp_path):
    user = default_pipeline_config(tmp_path)
    del user["pluggable"]
    config = load_config_file(_write(tmp_path / "pipeline.conf", user))
    assert config.pipeline_config["pluggable"] == DEFAULT_PLUGGABLE


def test_load_config_file_validates(tmp_path):
    user = default_pipeline_config(tmp_path)
    del user["global"]["upload_uri"]
    with pytest.raises(ValidationError, match="upload_uri"):
        load_config_file(_write(tmp_path / "pipeline.conf", user))


def test_load_config_file_missing(tmp_path):
    with pytest.raises(InvalidConfigError, match="FileNotFoundError"):
        load_config_file(tmp_path / "nope.conf")


def test_load_config_file_duplicate_key(tmp_path):
    path = tmp_path / "pipeline.conf"
    path.write_text('{"global": {}, "global": {}}')
    with pytest.raises(RuntimeError):
        load_config_file(path)


def test_load_config_file_with_explicit_trigger_and_watch_files(tmp_path):
    config = load_config_file(
        CONF_DIR / "pipeline.conf",
        trigger_config_file=CONF_DIR / "trigger.conf",
        watch_config_file=CONF_DIR / "watches.conf",
    )
    assert list(config.trigger_config) == ["zzz_my_test_harvester", "aaa_my_test_harvester", "mmm_my_test_harvester"]
    assert list(config.watch_config) == ["ANMN_QLD_XXXX", "SOOP_DU_JOUR"]


def test_load_config_file_uses_env_configured_trigger_and_watch(monkeypatch):
    monkeypatch.setenv(DEFAULT_TRIGGER_CONFIG_ENVVAR, str(CONF_DIR / "trigger.conf"))
    monkeypatch.setenv(DEFAULT_WATCH_CONFIG_ENVVAR, str(CONF_DIR / "watches.conf"))
    config = load_config_file(CONF_DIR / "pipeline.conf")
    assert "trigger_config" not in config.__dict__  # left to lazy loading
    assert "aaa_my_test_harvester" in config.trigger_config
    assert "SOOP_DU_JOUR" in config.watch_config


def test_load_config_file_creates_directories_on_request(tmp_path):
    user = default_pipeline_config(tmp_path / "base")
    load_config_file(_write(tmp_path / "pipeline.conf", user), create_dirs=True)
    assert (tmp_path / "base" / "work" / "tmp").is_dir()
