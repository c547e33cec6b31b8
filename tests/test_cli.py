"""The ``aodncore`` command through ``aodncore.cli.main(argv)``: exit codes, output, and one-line usage errors.

Commands that may start Prefect run inside the session's ``prefect_harness`` so no second server is started.
"""

from __future__ import annotations

import json
import shutil

import pytest
from ingest_helpers import BAD_NC, BAD_PROFILE, GOOD_FILES, IMOS_DIR, expected_key, restore_process_state  # noqa: F401

from aodncore.cli import main

GOOD = next(iter(GOOD_FILES))


def _assert_one_line_usage_error(capsys, code: int, *fragments: str) -> str:
    captured = capsys.readouterr()
    assert code == 2
    assert len(captured.err.strip().splitlines()) == 1, captured.err  # not wrapped, no traceback
    message = captured.err.strip()
    assert message.startswith("error:"), captured.err
    assert "Traceback" not in captured.err + captured.out
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_handlers_lists_the_default_handler(capsys):
    assert main(["handlers"]) == 0
    out = capsys.readouterr().out
    assert "ImosGenericHandler" in out
    assert "aodncore.pipeline.imoshandler.ImosGenericHandler" in out
    assert "imos_dest_path" in out


@pytest.mark.parametrize(
    "name, checks, code",
    [
        (GOOD, [], 0),
        (BAD_NC, [], 1),  # not NetCDF at all: even the format check fails
        (BAD_PROFILE, [], 0),  # valid NetCDF: the format check passes ...
        (BAD_PROFILE, ["--check", "cf:1.6"], 1),  # ... the CF suite does not
        (GOOD, ["--check", "cf:1.6"], 0),
    ],
)
def test_check_exit_codes(capsys, name, checks, code):
    assert main(["check", str(IMOS_DIR / name), *checks]) == code
    out = capsys.readouterr().out
    assert name[:10] in out
    assert ("FAIL" in out) == bool(code)


def test_check_prints_the_failed_check_log(capsys):
    assert main(["check", str(IMOS_DIR / GOOD), str(IMOS_DIR / BAD_PROFILE), "--check", "cf:1.6"]) == 1
    out = capsys.readouterr().out
    assert "pass" in out and "FAIL" in out
    assert "DEPTH" in out  # the CF finding about the bad profile's coordinate


def test_unknown_option_is_a_usage_error_without_traceback(capsys):
    assert main(["check", str(IMOS_DIR / GOOD), "--no-such-option"]) == 2
    captured = capsys.readouterr()
    assert "No such option" in captured.err and "--no-such-option" in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_check_unknown_suite_is_a_usage_error(capsys):
    code = main(["check", str(IMOS_DIR / GOOD), "--check", "nosuch:1.0"])
    _assert_one_line_usage_error(capsys, code, "nosuch")


def test_check_missing_file_is_a_usage_error(capsys, tmp_path):
    code = main(["check", str(tmp_path / "missing.nc")])
    _assert_one_line_usage_error(capsys, code, "missing.nc")


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
class TestIngestCommand:

    def test_unknown_handler(self, capsys, tmp_path):
        code = main(["ingest", str(IMOS_DIR / GOOD), "--base-dir", str(tmp_path), "--handler", "NoSuchHandler"])
        _assert_one_line_usage_error(capsys, code, "NoSuchHandler")

    def test_unknown_check_suite(self, capsys, tmp_path):
        code = main(["ingest", str(IMOS_DIR / GOOD), "--base-dir", str(tmp_path), "--check", "nosuch:1.0"])
        _assert_one_line_usage_error(capsys, code, "nosuch")

    def test_missing_source(self, capsys, tmp_path):
        code = main(["ingest", str(tmp_path / "nowhere"), "--base-dir", str(tmp_path)])
        _assert_one_line_usage_error(capsys, code, "nowhere")

    @pytest.mark.parametrize("content", ["{not json", json.dumps({"global": {"upload_uri": 42}})])
    def test_invalid_config_file(self, capsys, tmp_path, content):
        config = tmp_path / "config.json"
        config.write_text(content)
        code = main(["ingest", str(IMOS_DIR / GOOD), "--base-dir", str(tmp_path), "--config", str(config)])
        _assert_one_line_usage_error(capsys, code)
        assert not (tmp_path / "published").exists()

    def test_keep_landing_on_a_local_folder(self, capsys, tmp_path):
        landing = tmp_path / "landing"
        landing.mkdir()
        names = list(GOOD_FILES)[:2]
        for name in names:
            shutil.copy(IMOS_DIR / name, landing / name)
        base = tmp_path / "base"

        code = main(["ingest", str(landing), "--base-dir", str(base), "--keep-landing", "--check", "cf:1.6",
                     "--settle", "0"])

        assert code == 0
        out = capsys.readouterr().out
        assert "2 published" in out
        for name in names:
            assert (base / "published" / expected_key(name)).read_bytes() == (IMOS_DIR / name).read_bytes()
            assert (landing / name).read_bytes() == (IMOS_DIR / name).read_bytes()  # kept


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_config_error_about_a_secret_does_not_echo_its_value(capsys, tmp_path):
    from aodncore.pipeline.defaultconfig import default_pipeline_config

    pipeline_config = default_pipeline_config(tmp_path / "data")
    pipeline_config["mail"]["smtp_pass"] = 987654321  # wrong type: must be a string
    config = tmp_path / "pipeline.conf"
    config.write_text(json.dumps(pipeline_config))

    code = main(["ingest", str(IMOS_DIR / GOOD), "--config", str(config)])

    message = _assert_one_line_usage_error(capsys, code, "mail/smtp_pass", "value not shown")
    assert "987654321" not in message
