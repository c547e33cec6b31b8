"""imos_dest_path: the IMOS naming convention on real file names, the fallback, and its entry point."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from aodncore.pipeline.pathfunctions import FALLBACK_DIR, imos_dest_path
from aodncore.util.misc import discover_entry_points

EXPECTED_DIRS = {
    "IMOS_ANMN-NRS_TZ_20180406T080000Z_NRSROT_FV01_NRSROT-1804-SBE39-43_END-20180413T064000Z_C-20200313T000000Z.nc": (
        "IMOS/ANMN/NRS"
    ),
    "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV01_Profile-SBE-19plus_C-20160524T003914Z.nc": "IMOS/ANMN/NRS",
    "IMOS_ACORN_V_20101201T050000Z_BONC_FV00_sea-state.nc": "IMOS/ACORN",
    "IMOS_ACORN_V_20180501T003000Z_ROT_FV00_1-hour-avg.nc": "IMOS/ACORN",
    "IMOS_ANFOG_BCEOSTUV_20180503T075848Z_SL210_FV00_timeseries_END-20180504T000000Z.nc": "IMOS/ANFOG",
    "IMOS_ANMN_Z_20170201T000000Z_NRSDAR_FV01.31e4cadf90ba8824645001ea07b74814.nc": "IMOS/ANMN",
    "IMOS_SOOP-ASF_MT_20130117T215000Z_VLHJ_FV01_C-20130307T042609Z.nc": "IMOS/SOOP/ASF",
    "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc": "IMOS/SOOP/XBT",
    "IMOS_SRS-OC-BODBAW_X_20060308T022541Z_SWAIN-GBR080306_4-absorption-total-AC9_FV02_END-20060308T022541Z.nc": (
        "IMOS/SRS/OC/BODBAW"
    ),
    "IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc": "IMOS/SRSALT",
    "D1901119_001.nc": FALLBACK_DIR,
    "DSTO_MD_CEPSTUV_20130706T122916Z_SL090_FV01_timeseries_END-20130715T040955Z.nc": FALLBACK_DIR,
    "19920326032000-ABOM-L3S_GHRSST-SSTskin-AVHRR_D-1d_day.nc": FALLBACK_DIR,
    "not_a_netcdf_file.nc": FALLBACK_DIR,
    "bgc_trip.csv": FALLBACK_DIR,
    "good_and_bad.zip": FALLBACK_DIR,
}


def test_fallback_dir():
    assert FALLBACK_DIR == "UNCLASSIFIED"


@pytest.mark.parametrize("name,expected_dir", sorted(EXPECTED_DIRS.items()))
def test_real_imos_file_names(imos_dir, name, expected_dir):
    path = imos_dir / name
    assert path.exists()
    assert imos_dest_path(str(path)) == f"{expected_dir}/{name}"


def test_every_data_file_gets_a_path(imos_dir):
    for path in imos_dir.iterdir():
        result = imos_dest_path(path)
        assert result.endswith("/" + path.name)
        assert result.startswith(("IMOS/", "UNCLASSIFIED/"))


def test_accepts_path_objects_and_bare_names():
    name = "IMOS_ACORN_V_20101201T050000Z_BONC_FV00_sea-state.nc"
    assert imos_dest_path(Path("/some/where") / name) == imos_dest_path(name) == f"IMOS/ACORN/{name}"


@pytest.mark.parametrize(
    "name",
    [
        "IMOS_ANMN.nc",  # too few fields
        "IMOS_.nc",
        "IMOS__TZ_2018.nc",  # empty facility
        "IMOS_ANMN-_TZ_2018.nc",  # empty sub-facility
        "IMOS_-NRS_TZ_2018.nc",
        "IMOS_..-x_TZ_2018.nc",  # no path tricks from the facility field
        "IMOS_AN.MN_TZ_2018.nc",
        "IMOS_ANMN-NRS_TZ_20180406",  # no extension
        "imos_ANMN-NRS_TZ_2018.nc",  # prefix is case-sensitive
        "IMOSX_ANMN-NRS_TZ_2018.nc",
        "IMOS",
    ],
)
def test_unrecognised_names_fall_back(name):
    assert imos_dest_path(name) == f"{FALLBACK_DIR}/{name}"


@pytest.mark.parametrize("path", ["", "IMOS/ANMN/"])
def test_no_file_name(path):
    with pytest.raises(ValueError, match="has no file name"):
        imos_dest_path(path)


def test_compressed_imos_file():
    name = "IMOS_ANMN-NRS_TZ_20180406T080000Z_NRSROT_FV01.nc.gz"
    assert imos_dest_path(name) == f"IMOS/ANMN/NRS/{name}"


def test_registered_as_entry_point():
    [entry_point] = [ep for ep in entry_points(group="pipeline.path_functions") if ep.name == "imos_dest_path"]
    assert entry_point.load() is imos_dest_path
    loaded, failed = discover_entry_points("pipeline.path_functions")
    assert loaded["imos_dest_path"] is imos_dest_path
    assert "imos_dest_path" not in failed
