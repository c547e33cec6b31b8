"""IMOS ``author_email`` / ``principal_investigator_email`` (compat addendum §9, decision §13): every value the
classic plugin accepts passes, plus longer top-level domains; checked on a real ACORN file with two addresses."""

from __future__ import annotations

import shutil

import netCDF4
import pytest
from checks_fixtures import run_suite

from aodncore.checks.imos import is_email_attribute_value

ACORN = "IMOS_ACORN_V_20180501T003000Z_ROT_FV00_1-hour-avg.nc"
ACORN_TWO_ADDRESSES = "simone.cosoli@uwa.edu.au; andrew.middleditch@uwa.edu.au"

CLASSIC_PASSES = [
    "a@b.com, c@d.org", "a@b.com c@d.org", "a@b.com;c@d.org", "mailto:a@b.com", " a@b.com", "a b@c.de",
    "a@@b.com", "A@B.COM", "a@b.co.uk", ACORN_TWO_ADDRESSES, "a@b.com\n", "x@y.1{1,3}",
]
CLASSIC_FAILURES_STILL_FAILING = [
    "a@b.com;", "a@b.com ", "Name <a@b.com>", "a@b.com.", "a@b.c", "a@localhost", "a@1.2.3.4", "a@b_c.com",
    "@b.com", "", "a@b.com\n\n",
]
RELAXED = ["a@b.info", "first.last@data.example.museum", "a@[1.2.3.4]"]  # classic failures that now pass


@pytest.mark.parametrize("value", CLASSIC_PASSES + RELAXED)
def test_accepted(value):
    assert is_email_attribute_value(value)


@pytest.mark.parametrize("value", CLASSIC_FAILURES_STILL_FAILING + [None, 42, ["a@b.com"]])
def test_refused(value):
    assert not is_email_attribute_value(value)


@pytest.mark.parametrize("suite", ["imos:1.3", "imos:1.4"])
def test_real_acorn_file_with_two_addresses_keeps_its_verdict(imos_dir, tmp_path, suite):
    original = run_suite(imos_dir / ACORN, suite)
    path = shutil.copy(imos_dir / ACORN, tmp_path / ACORN)
    with netCDF4.Dataset(path, "a") as dataset:
        dataset.author_email = ACORN_TWO_ADDRESSES
        dataset.principal_investigator_email = "pi@uwa.edu.au, second.pi@uwa.edu.au"
    changed = run_suite(path, suite)
    assert not changed.errors
    assert changed.verdicts == original.verdicts
    assert not [key for key in changed.failing if key[0] in ("author_email", "principal_investigator_email")]

    with netCDF4.Dataset(path, "a") as dataset:
        dataset.author_email = "simone.cosoli@uwa.edu.au; "  # nothing well formed at the end: a MEDIUM failure
    refused = run_suite(path, suite)
    assert ("author_email", 2) in refused.failing
    assert not refused.passes("normal") and refused.passes("lenient") is original.passes("lenient")
