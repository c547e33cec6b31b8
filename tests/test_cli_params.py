"""``aodncore ingest --handler-param KEY=VALUE`` and ``aodncore serve --settle``, through the command line."""

from __future__ import annotations

import shutil

import pytest
from ingest_helpers import GOOD_FILES, IMOS_DIR, restore_process_state  # noqa: F401

from aodncore.cli import main
from aodncore.ingest.handlerparams import parse_handler_params

XBT = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc"
OTHER = next(name for name in GOOD_FILES if name != XBT)


def test_values_are_json_when_they_parse_and_strings_otherwise():
    parsed = parse_handler_params(["a=1", "b=csv", 'c=["x", "y"]', 'd="1"', "e=", "f=null", "g=false",
                                   'h={"checks": ["cf:1.6"]}', "i=a=b", "j=IMOS_.*\\.nc"])
    assert parsed == {"a": 1, "b": "csv", "c": ["x", "y"], "d": "1", "e": "", "f": None, "g": False,
                      "h": {"checks": ["cf:1.6"]}, "i": "a=b", "j": "IMOS_.*\\.nc"}
    with pytest.raises(ValueError, match="a given twice"):
        parse_handler_params(["a=1", "a=2"])
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_handler_params(["=1"])


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_handler_params_reach_the_handler(tmp_path, capsys):
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in (XBT, OTHER):
        shutil.copy(IMOS_DIR / name, landing / name)
    base = tmp_path / "base"

    code = main(["ingest", str(landing), "--base-dir", str(base), "--workers", "1", "--settle", "0",
                 "--handler-param", 'include_regexes=["IMOS_SOOP-XBT_.*"]',  # JSON list
                 "--handler-param", "archive_input_file=false"])  # JSON false (the string "false" would be true)

    output = capsys.readouterr().out
    assert code == 1, output  # the file no include regex matches is quarantined
    assert (base / "published" / "IMOS/SOOP/XBT" / XBT).read_bytes() == (IMOS_DIR / XBT).read_bytes()
    assert not [p for p in (base / "archive").rglob("*") if p.is_file()]  # archive_input_file=false
    assert f"quarantined {OTHER}" in output or ("quarantined" in output and "UnmatchedFilesError" in output)
    assert len(list((base / "error").rglob(OTHER))) == 1


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
@pytest.mark.parametrize("params, expected", [
    (["novalue"], "expected KEY=VALUE"),
    (["bogus_parameter=1"], "bogus_parameter"),
    (["include_regexes=5"], "include_regexes"),
    (["smtp_password=hunter2"], "Secret block"),
])
def test_bad_handler_params_are_one_line_usage_errors(tmp_path, capsys, params, expected):
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(IMOS_DIR / XBT, landing / XBT)
    args = [item for param in params for item in ("--handler-param", param)]
    code = main(["ingest", str(landing), "--base-dir", str(tmp_path / "base"), "--settle", "0", *args])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert expected in captured.err and "Traceback" not in captured.err and "hunter2" not in captured.err
    assert (landing / XBT).exists() and not list((tmp_path / "base").rglob("*.nc"))


def test_serve_settle_must_be_a_non_negative_number(capsys):
    assert main(["serve", "/nowhere", "--settle", "-1"]) == 2
    assert "--settle" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["ingest"], ["serve"]])
def test_help_documents_the_new_options(command):
    from typer.testing import CliRunner

    from aodncore.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0
    assert ("--handler-param" in result.output and "JSON" in result.output) if command == ["ingest"] else \
        ("--settle" in result.output)
