"""Names as shown and stored (:mod:`aodncore.ingest.names`) and the settle-time rule of :mod:`aodncore.ingest.plan`."""

from __future__ import annotations

import os

import pytest

from aodncore.ingest.names import scrub, shown, storable_name, unusable_name_reason
from aodncore.ingest.plan import plan_landing, resolve_settle_seconds
from aodncore.limits import CLI_SETTLE_SECONDS, LANDING_SETTLE_SECONDS
from aodncore.pipeline.defaultconfig import default_config


@pytest.mark.parametrize(("name", "expected"), [
    ("plain name.nc", "plain name.nc"),
    (os.fsdecode(b"caf\xe9.nc"), "caf\\xe9.nc"),
    ("a\nb\r\x1b[31m.nc", "a\\u000ab\\u000d\\u001b[31m.nc"),
    ("back\\slash", "back\\\\slash"),  # so an escape is never ambiguous
    ("rtl\u202eoverride\u2028sep", "rtl\\u202eoverride\\u2028sep"),
    ("émoji 🌊.nc", "émoji 🌊.nc"),
])
def test_shown_is_one_printable_line(name, expected):
    assert shown(name) == expected
    assert shown(name).isprintable()


def test_scrub_keeps_line_breaks_and_backslashes_of_text_already_shown():
    assert scrub("line 1\nname \\x41 \x1b[0m") == "line 1\nname \\x41 \\u001b[0m"


@pytest.mark.parametrize(("name", "fragment"), [
    (os.fsdecode(b"x\xff.nc"), "not valid UTF-8 (byte 0xff)"),
    ("x\ny.nc", "control characters (\\u000a)"),
    ("x\u2028y.nc", "control characters (\\u2028)"),
    ("x" * 253 + ".nc", "256 bytes long"),
    ("é" * 127 + ".nc", "257 bytes long"),
])
def test_unusable_names(name, fragment):
    assert fragment in unusable_name_reason(name)


@pytest.mark.parametrize("name", ["x" * 251 + ".nc", "IMOS_ok [1] #2.nc", "émoji 🌊.nc"])
def test_usable_names(name):
    assert unusable_name_reason(name) is None
    assert storable_name(name) == name


@pytest.mark.parametrize(("name", "expected"), [
    (os.fsdecode(b"x\xff.nc"), "x%FF.nc"),
    ("a\nb.nc", "a%0Ab.nc"),
    ("a/b", "a%2Fb"),
])
def test_storable_name_percent_encodes(name, expected):
    assert storable_name(name) == expected


def test_storable_name_shortens_in_the_middle_keeping_the_extension():
    stored = storable_name("start_" + "é" * 400 + "_end.nc")
    assert len(stored.encode()) <= 255
    assert stored.startswith("start_") and stored.endswith("_end.nc") and "…" in stored


def test_settle_time_explicit_then_config_then_default(tmp_path):
    plain = default_config(tmp_path, create_dirs=False)
    configured = default_config(tmp_path, {"limits": {"landing_settle_seconds": 5}}, create_dirs=False)
    assert resolve_settle_seconds(plain, None, LANDING_SETTLE_SECONDS.default) == 30
    assert resolve_settle_seconds(plain, None, CLI_SETTLE_SECONDS) == CLI_SETTLE_SECONDS
    assert resolve_settle_seconds(configured, None, CLI_SETTLE_SECONDS) == 5
    assert resolve_settle_seconds(configured, 0, CLI_SETTLE_SECONDS) == 0


def test_waiting_within_the_run_takes_a_file_that_did_not_change(tmp_path):
    """With ``wait``, a fresh file is looked at again once it would have settled (the clock and sleep are fake)."""
    (tmp_path / "fresh.nc").write_bytes(b"complete")
    changed_at = max(os.stat(tmp_path / "fresh.nc").st_mtime, os.stat(tmp_path / "fresh.nc").st_ctime)
    now = [changed_at + 1.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    items = list(plan_landing(str(tmp_path), settle_seconds=10, wait=True, clock=lambda: now[0], sleep=sleep))

    assert [(item.status, item.name) for item in items] == [("todo", "fresh.nc")]
    assert slept == [pytest.approx(9.0)] and items[0].obj.fingerprint.startswith("sha256:")
    without_wait = list(plan_landing(str(tmp_path), settle_seconds=10, clock=lambda: changed_at + 1.0))
    assert [item.status for item in without_wait] == ["waiting"]


@pytest.mark.parametrize("keep", ["\n", "", "\n\t"])
def test_scrub_fast_check_agrees_with_the_character_by_character_rule(keep):
    from aodncore.ingest.names import scrub

    samples = ["plain line", "two\nlines", "tab\there", "bell\x07", "esc \x1b[31mred", "undecodable \udcff",
               "trailing\n", "\n", "", "carriage\r\nreturn", "wide 文字\nnext", "zero\u200bwidth", "back\\slash\n"]
    for text in samples:
        slow_ok = all(char.isprintable() or char in keep for char in text)
        expected = text if slow_ok else "".join(
            char if char in keep else scrub(char, keep="") for char in text)
        assert scrub(text, keep=keep) == expected, (text, keep)


@pytest.mark.parametrize("name", [
    "IMOS_ANMN-NRS_TZ_20180406T080000Z_NRSROT_FV01.nc", "plain name.nc", ".", "..", "", "a/b.nc", "x" * 255,
    "x" * 256, "~!@#$%^&*()_+`-={}|[]\\:\";'<>?,.", "tab\tname", "new\nline", "del\x7f", "esc\x1b[0m",
    "caf\u00e9.nc", os.fsdecode(b"caf\xe9.nc"), "line\u2028sep", "para\u2029sep", "\u00e9" * 128, "nul\x00",
])
def test_ascii_fast_path_gives_the_general_reason(name):
    """Printable ASCII names skip the per-character scans (no undecodable byte or control character can be in
    them): the reason is exactly the general check's, for every name."""
    from aodncore.ingest.names import _general_unusable_name_reason

    assert unusable_name_reason(name) == _general_unusable_name_reason(name)
