"""``aodncore.limits``: every safety limit with its default, configuration key and parsing."""

from __future__ import annotations

import pytest
from jsonschema.exceptions import ValidationError

from aodncore import limits
from aodncore.limits import (
    ARCHIVE_MAX_TOTAL_BYTES,
    CHECK_MEMORY_BYTES,
    CHECK_TIMEOUT_SECONDS,
    LIMITS,
    MANIFEST_ROOTS,
    ArchiveLimits,
    CheckLimits,
    archive_limits,
    check_limits,
    format_size,
    limit_value,
    parse_size,
)
from aodncore.pipeline.defaultconfig import default_config


@pytest.mark.parametrize("text, expected", [
    (0, 0), (1234, 1234), ("1234", 1234), ("1 KiB", 1024), ("512MiB", 512 * 1024 ** 2), ("4 GiB", 4 * 1024 ** 3),
    ("100 MB", 100 * 1000 ** 2), ("1.5 GiB", int(1.5 * 1024 ** 3)), (" 2 gib ", 2 * 1024 ** 3), ("7 b", 7),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "lots", "4 GiBs", "-1", -1, True, None, "1e9", "4 PiB"])
def test_parse_size_refuses(bad):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(bad)


def test_format_size():
    assert format_size(4 * 1024 ** 3) == "4 GiB"
    assert format_size(16 * 1024 ** 2) == "16 MiB"
    assert format_size(1536 * 1024) == "1536 KiB"
    assert format_size(1000) == "1000 bytes"


def test_every_limit_has_a_key_default_and_description():
    keys = [limit.key for limit in LIMITS]
    assert len(keys) == len(set(keys))
    for limit in LIMITS:
        assert limit.description and limit.unit in ("bytes", "seconds", "count", "ratio", "paths")
        assert limit.key == f"{limit.section}.{limit.name}"
    assert MANIFEST_ROOTS.key == "global.manifest_roots" and MANIFEST_ROOTS.default is None


def test_defaults_without_config():
    assert archive_limits(None) == ArchiveLimits()
    assert check_limits(None) == CheckLimits()
    assert limit_value(None, ARCHIVE_MAX_TOTAL_BYTES) == 4 * 1024 ** 3
    assert limit_value(None, MANIFEST_ROOTS) is None


def test_configured_values_are_read_through_the_config(tmp_path):
    config = default_config(tmp_path, {
        "limits": {"archive_max_total_bytes": "1 GiB", "archive_max_ratio": 20, "check_timeout_seconds": 2.5,
                   "check_memory_bytes": 0},
        "global": {"manifest_roots": ["/data/landing", "s3://bucket/incoming/"]},
    })
    assert archive_limits(config).max_total_bytes == 1024 ** 3
    assert archive_limits(config).max_ratio == 20
    assert archive_limits(config).max_members == limits.ARCHIVE_MAX_MEMBERS.default
    caps = check_limits(config)
    assert (caps.memory_bytes, caps.timeout_seconds, caps.enabled) == (0, 2.5, True)
    assert limit_value(config, MANIFEST_ROOTS) == ("/data/landing", "s3://bucket/incoming/")
    assert not CheckLimits(memory_bytes=0, timeout_seconds=0).enabled


@pytest.mark.parametrize("section, values", [
    ("limits", {"archive_max_total_bytes": "huge"}),
    ("limits", {"archive_max_members": 0}),
    ("limits", {"check_timeout_seconds": -1}),
    ("limits", {"no_such_limit": 1}),
    ("global", {"manifest_roots": "/not/a/list"}),
])
def test_schema_refuses_bad_limits(tmp_path, section, values):
    with pytest.raises(ValidationError):
        default_config(tmp_path, {section: values}, create_dirs=False)


def test_invalid_value_names_the_key():
    with pytest.raises(ValueError, match=r"limits\.check_memory_bytes"):
        limit_value({"limits": {"check_memory_bytes": "plenty"}}, CHECK_MEMORY_BYTES)
    with pytest.raises(ValueError, match=r"limits\.check_timeout_seconds"):
        limit_value({"limits": {"check_timeout_seconds": "soon"}}, CHECK_TIMEOUT_SECONDS)
