"""Regression tier: the IMOS suites and cf:1.6 over the real IMOS files in tests/data/imos, asserting the
per-file baseline of the spec (shared/spec/imos-checks.md §3.4, reference plugin under compliance-checker 6.1)."""

from __future__ import annotations

import pytest
from checks_fixtures import run_suite
from compliance_checker.runner import CheckSuite

pytestmark = pytest.mark.slow

# file -> (cf:1.6 L/N/S, IMOS suite or None, IMOS L/N/S, number of failing groups under normal)
BASELINE = {
    "19920326032000-ABOM-L3S_GHRSST-SSTskin-AVHRR_D-1d_day.nc": ("FFF", "ghrsst:1.0", "PPP", 0),
    "D1901119_001.nc": ("FFF", None, None, None),
    "DSTO_MD_CEPSTUV_20130706T122916Z_SL090_FV01_timeseries_END-20130715T040955Z.nc": ("FFF", None, None, None),
    "IMOS_ACORN_V_20101201T050000Z_BONC_FV00_sea-state.nc": ("FFF", None, None, None),
    "IMOS_ACORN_V_20180501T003000Z_ROT_FV00_1-hour-avg.nc": ("PFF", "imos:1.4", "FFF", 3),
    "IMOS_ANFOG_BCEOSTUV_20180503T075848Z_SL210_FV00_timeseries_END-20180504T000000Z.nc": ("FFF", None, None, None),
    "IMOS_ANMN-NRS_BCKOSTUZ_20081120T081531Z_NRSROT_FV01_NRSROT-0811-WQM-21_END-20081120T171535Z_C-"
    "20190418T000000Z.nc": ("PPF", "imos:1.4", "PPP", 0),
    "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV00_Profile-BAD_C-20160524T003914Z.nc": ("FFF", None, None,
                                                                                               None),
    "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV01_Profile-SBE-19plus_C-20160524T003914Z.nc": (
        "PPP", "imos:1.4", "PPP", 0),
    "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc": ("FFF", None, None, None),
    "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc": (
        "FFF", "imos:1.3", "PPP", 0),
    "IMOS_ANMN-NRS_TZ_20180406T080000Z_NRSROT_FV01_NRSROT-1804-SBE39-43_END-20180413T064000Z_C-20200313T000000Z.nc": (
        "PPF", "imos:1.4", "FFF", 2),
    "IMOS_ANMN_Z_20170201T000000Z_NRSDAR_FV01.31e4cadf90ba8824645001ea07b74814.nc": ("PPF", "imos:1.3", "PPP", 0),
    "IMOS_SOOP-ASF_MT_20130117T215000Z_VLHJ_FV01_C-20130307T042609Z.nc": ("FFF", None, None, None),
    "IMOS_SOOP-SST_T_20150127T103500Z_9V2768_FV01_C-20150624T041651Z.nc": ("FFF", None, None, None),
    "IMOS_SOOP-TRV_B_20100225T073727Z_VMQ9273_FV01_END-20100225T131607Z_C-2016225T100000Z.nc": (
        "PPF", "imos:1.3", "PPP", 0),
    "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc": ("PPP", "imos:1.4", "PPP", 0),
    "IMOS_SRS-OC-BODBAW_X_20060308T022541Z_SWAIN-GBR080306_4-absorption-total-AC9_FV02_END-20060308T022541Z.nc": (
        "PFF", "imos:1.4", "FFF", 4),
    "IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc": ("PFF", "imos:1.3", "PPP", 0),
}

# imos:1.4 run on files that do not declare it (spec §3.4 notes): file -> number of failing groups under normal
IMOS_1_4_ON_OTHER_FILES = {
    "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc": 26,
    "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV00_Profile-BAD_C-20160524T003914Z.nc": 22,
    "IMOS_ANMN_Z_20170201T000000Z_NRSDAR_FV01.31e4cadf90ba8824645001ea07b74814.nc": 7,
}

# the failing groups the spec names for the failing declared-suite files
EXPECTED_FAILING_NAMES = {
    "IMOS_ANMN-NRS_TZ_20180406T080000Z_NRSROT_FV01_NRSROT-1804-SBE39-43_END-20180413T064000Z_C-20200313T000000Z.nc": {
        ("geospatial_vertical_min", 3), ("geospatial_vertical_max", 3)},
    "IMOS_SRS-OC-BODBAW_X_20060308T022541Z_SWAIN-GBR080306_4-absorption-total-AC9_FV02_END-20060308T022541Z.nc": {
        ("TIME", 3), ("LATITUDE", 3), ("LONGITUDE", 3), ("DEPTH", 3)},
    "IMOS_ACORN_V_20180501T003000Z_ROT_FV00_1-hour-avg.nc": {
        ("standard_name_vocabulary", 3), ("UCUR_quality_control", 2), ("VCUR_quality_control", 2)},
}

DECLARED = sorted(name for name, row in BASELINE.items() if row[1])


@pytest.fixture(autouse=True)
def _offline_cf(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))


def test_baseline_covers_every_readable_data_file(imos_dir):
    names = {p.name for p in imos_dir.glob("*.nc")} - {"not_a_netcdf_file.nc"}
    assert names == set(BASELINE)


@pytest.mark.parametrize("name", DECLARED)
def test_declared_suite_matches_baseline(imos_dir, name):
    _cf, suite, verdicts, n_failing = BASELINE[name]
    outcome = run_suite(imos_dir / name, suite)
    assert not outcome.errors
    assert outcome.verdicts == verdicts
    assert len(outcome.failing) == n_failing
    if name in EXPECTED_FAILING_NAMES:
        assert set(outcome.failing) == EXPECTED_FAILING_NAMES[name]


@pytest.mark.parametrize("name", sorted(IMOS_1_4_ON_OTHER_FILES))
def test_imos_1_4_on_undeclared_files(imos_dir, name):
    outcome = run_suite(imos_dir / name, "imos:1.4")
    assert not outcome.errors
    assert outcome.verdicts == "FFF"
    assert len(outcome.failing) == IMOS_1_4_ON_OTHER_FILES[name]


@pytest.mark.parametrize("suite", ["imos:1.3", "imos:1.4", "ghrsst:1.0"])
def test_no_check_raises_on_any_real_file(imos_dir, suite):
    for name in BASELINE:
        assert run_suite(imos_dir / name, suite).errors == {}, name


@pytest.mark.parametrize("name", sorted(BASELINE))
def test_cf_1_6_matches_baseline(imos_dir, name):
    """compliance-checker's own cf:1.6 (6.1) verdicts from the same table, run next to the IMOS suites."""
    assert run_suite(imos_dir / name, "cf:1.6").verdicts == BASELINE[name][0]


def test_not_a_netcdf_file_cannot_be_loaded(imos_dir):
    with pytest.raises(OSError):
        CheckSuite().load_dataset(str(imos_dir / "not_a_netcdf_file.nc"))
