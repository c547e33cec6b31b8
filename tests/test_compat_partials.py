"""Handler classes given as ``functools.partial`` (compat addendum §8): presets apply in testlib, in handler
loading and through the Prefect flows; a partial is named by the class it wraps."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from compat_handlers import (
    OTHER_FILE,
    XBT_FILE,
    XBT_OPTS,
    SoopHandler,
    SoopXbtHandler,
    SoopXbtQuietHandler,
    write_entry_points,
)
from ingest_helpers import IMOS_DIR

from aodncore.ingest.configure import build_settings, load_handler_class
from aodncore.pipeline import HandlerBase
from aodncore.pipeline.exceptions import InvalidHandlerError, InvalidInputFileError
from aodncore.pipeline.handlerref import handler_class_name, is_handler_factory, unwrap_handler_class
from aodncore.testlib import HandlerTestCase, get_test_config


class TestPartialHandlerInHandlerTestCase(HandlerTestCase):
    """A client test-suite whose ``handler_class`` is a partial with presets."""

    handler_class = SoopXbtHandler

    def setUp(self):
        super().setUp()
        self.xbt = shutil.copy(IMOS_DIR / XBT_FILE, self.temp_dir)

    def test_presets_are_kept_and_the_config_injected(self):
        self.assertIs(self.handler_class.func, SoopHandler)
        self.assertIs(self.handler_class.keywords["config"], self.config)
        for key, value in XBT_OPTS.items():
            self.assertEqual(self.handler_class.keywords[key], value)

    def test_run_uses_the_preset_path_functions_and_archives_the_input(self):
        handler = self.run_handler(self.xbt)
        self.assertIs(type(handler), SoopHandler)
        [published] = handler.file_collection
        self.assertEqual(published.dest_path, f"COMPAT/SOOP/XBT/{XBT_FILE}")
        self.assertEqual(published.archive_path, f"COMPAT/ARCHIVE/XBT/{XBT_FILE}")
        self.assertTrue(published.is_stored and published.is_archived)
        self.assertEqual(handler.check_params, {"checks": ["cf:1.6"]})
        self.assertTrue(handler.input_file_object.is_archived)
        upload_root = Path(handler._upload_store_runner.broker.prefix)
        self.assertTrue((upload_root / "COMPAT/SOOP/XBT" / XBT_FILE).is_file())

    def test_preset_regexes_are_enforced(self):
        other = shutil.copy(IMOS_DIR / OTHER_FILE, self.temp_dir)
        handler = self.run_handler_with_exception(InvalidInputFileError, other)
        self.assertIn("allowed_regexes", str(handler.error))

    def test_call_time_keywords_win_over_presets_and_the_test_config(self):
        other_config = get_test_config(tempfile.mkdtemp(dir=self.temp_dir))
        handler = self.handler_class(self.xbt, config=other_config, check_params={"checks": []})
        self.assertIs(handler.config, other_config)
        self.assertEqual(handler.check_params, {"checks": []})
        self.assertEqual(handler.allowed_extensions, [".nc"])  # untouched presets still apply


class TestNestedPartialWithPresetConfig(HandlerTestCase):
    """The injected test config wins over a config preset in the partial; nested partials keep every preset."""

    handler_class = functools.partial(SoopXbtQuietHandler, config="not-a-config-preset")

    def test_injected_config_wins_over_a_preset_config(self):
        handler = self.handler_class(shutil.copy(IMOS_DIR / XBT_FILE, self.temp_dir))
        self.assertIs(handler.config, self.config)
        self.assertEqual(handler.notify_params, {"error_notify_list": []})
        self.assertIs(handler.dest_path_function, XBT_OPTS["dest_path_function"])


def test_handlerref_unwraps_only_to_check_and_name():
    assert unwrap_handler_class(SoopXbtQuietHandler) is SoopHandler
    assert handler_class_name(SoopXbtQuietHandler) == "SoopHandler"
    assert handler_class_name(HandlerBase) == "HandlerBase"
    assert is_handler_factory(SoopXbtHandler) and is_handler_factory(SoopHandler)
    assert not is_handler_factory(functools.partial(dict, a=1))
    assert not is_handler_factory("SoopHandler")


def test_load_handler_class_returns_the_partial_itself(tmp_path, monkeypatch):
    assert load_handler_class("compat_handlers:SoopXbtHandler") is SoopXbtHandler
    monkeypatch.syspath_prepend(str(write_entry_points(tmp_path / "site", {
        "SoopXbtHandler": "compat_handlers:SoopXbtHandler", "NotAHandler": "json:JSONDecoder"})))
    assert load_handler_class("SoopXbtHandler") is SoopXbtHandler
    with pytest.raises(InvalidHandlerError, match="'NotAHandler' is not a HandlerBase subclass"):
        load_handler_class("NotAHandler")

    settings = build_settings(handler="SoopXbtHandler", base_dir=str(tmp_path / "base"))
    assert settings.handler_class is SoopXbtHandler
    assert settings.handler_name == settings.pipeline_name == "SoopHandler"


def test_cli_lists_a_partial_handler(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from aodncore.cli import app

    monkeypatch.syspath_prepend(str(write_entry_points(tmp_path / "site", {
        "SoopXbtHandler": "compat_handlers:SoopXbtHandler"})))
    result = CliRunner().invoke(app, ["handlers"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "compat_handlers.SoopHandler (partial:" in result.output


def test_partial_entry_point_runs_through_the_flows(prefect_harness, tmp_path, monkeypatch):
    """``ingest_landing`` with a partial registered as a ``pipeline.handlers`` entry point: the presets decide the
    destination and refuse the file they do not allow; reports name the wrapped class."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from aodncore.prefect.flows import ingest_landing

    monkeypatch.syspath_prepend(str(write_entry_points(tmp_path / "site", {
        "SoopXbtHandler": "compat_handlers:SoopXbtHandler"})))
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in (XBT_FILE, OTHER_FILE):
        shutil.copy(IMOS_DIR / name, landing / name)
    broken = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-999999.nc"  # allowed name, not NetCDF: fails cf:1.6
    shutil.copy(IMOS_DIR / "not_a_netcdf_file.nc", landing / broken)
    base = tmp_path / "base"
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        state = ingest_landing(str(landing), handler="SoopXbtHandler", base_dir=str(base), workers=2,
                               settle_seconds=0, return_state=True)
    assert state.is_completed() and state.name == "Quarantined", state  # refused files, none failed
    outcomes = state.result()["outcomes"]
    by_name = {outcome["name"]: outcome for outcome in outcomes}
    assert by_name[XBT_FILE]["status"] == "published", by_name[XBT_FILE]
    assert (base / "published/COMPAT/SOOP/XBT" / XBT_FILE).read_bytes() == (IMOS_DIR / XBT_FILE).read_bytes()
    assert (base / "archive/COMPAT/ARCHIVE/XBT" / XBT_FILE).is_file()
    # a name the preset regexes refuse (classic system error InvalidInputFileError) is about the input: quarantined
    assert by_name[OTHER_FILE]["status"] == "quarantined"
    assert "allowed_regexes" in by_name[OTHER_FILE]["error"]
    assert not (landing / OTHER_FILE).exists()
    # the preset check_params refuse the broken file: quarantined in the folder named by the wrapped class
    assert by_name[broken]["status"] == "quarantined"
    reasons = {json.loads(path.read_text())["name"]: json.loads(path.read_text())["error_class"]
               for path in (base / "error" / "SoopHandler").glob("*/*.reason.json")}
    assert reasons == {broken: "ComplianceCheckFailedError", OTHER_FILE: "InvalidInputFileError"}


def test_copied_to_landing_through_flow_handler_params(prefect_harness, tmp_path):
    """The README's replacement for the classic watch's ``copy_to_landing_bucket``: ``input_file_copied_to_landing``
    with ``custom_params.harvest_only`` given as flow ``handler_params`` makes additions harvest-only."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from aodncore.prefect.flows import ingest_file

    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(IMOS_DIR / XBT_FILE, landing / XBT_FILE)
    params = {"input_file_copied_to_landing": True, "custom_params": {"harvest_only": True}, "harvest_type": None,
              "dest_path_function": "imos_dest_path"}
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        outcome = ingest_file(str(landing / XBT_FILE), handler="aodncore.pipeline.handlerbase:HandlerBase",
                              base_dir=str(tmp_path / "base"), handler_params=params, settle_seconds=0)
    assert outcome["publish_type"] == "HARVEST_ONLY", outcome
    assert not list((tmp_path / "base").glob("published/**/*.nc"))  # harvest only: nothing uploaded
