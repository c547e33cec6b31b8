"""FileClassifier helpers on real IMOS file names and NetCDF files."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from aodncore.pipeline import FileClassifier
from aodncore.pipeline.exceptions import InvalidFileContentError, InvalidFileFormatError, InvalidFileNameError

NRS_TZ = "IMOS_ANMN-NRS_TZ_20180406T080000Z_NRSROT_FV01_NRSROT-1804-SBE39-43_END-20180413T064000Z_C-20200313T000000Z.nc"
NRS_MET = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc"
NRS_MET_BAD = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc"
ACORN = "IMOS_ACORN_V_20101201T050000Z_BONC_FV00_sea-state.nc"
SRS_OC = "IMOS_SRS-OC-BODBAW_X_20060308T022541Z_SWAIN-GBR080306_4-absorption-total-AC9_FV02_END-20060308T022541Z.nc"
ANMN_HASHED = "IMOS_ANMN_Z_20170201T000000Z_NRSDAR_FV01.31e4cadf90ba8824645001ea07b74814.nc"
ARGO = "D1901119_001.nc"


class MooringClassifier(FileClassifier):
    """What a handler does: combine the helpers into a destination path."""

    @classmethod
    def dest_path(cls, input_file):
        facility, sub_facility = cls._get_facility(input_file)
        site = cls._get_site_code(input_file)
        return cls._make_path(["IMOS", facility, sub_facility, site, "Temperature", input_file.name])


# --- names -----------------------------------------------------------------------------------------------------------


def test_file_name_fields():
    fields = FileClassifier._get_file_name_fields(NRS_TZ)
    assert fields == [
        "IMOS",
        "ANMN-NRS",
        "TZ",
        "20180406T080000Z",
        "NRSROT",
        "FV01",
        "NRSROT-1804-SBE39-43",
        "END-20180413T064000Z",
        "C-20200313T000000Z",
    ]


def test_file_name_fields_uses_basename(imos_dir):
    assert FileClassifier._get_file_name_fields(str(imos_dir / ACORN))[:3] == ["IMOS", "ACORN", "V"]


def test_file_name_fields_strips_only_the_last_extension():
    assert FileClassifier._get_file_name_fields(ANMN_HASHED)[-1] == "FV01.31e4cadf90ba8824645001ea07b74814"


def test_too_few_fields_message():
    with pytest.raises(InvalidFileNameError) as excinfo:
        FileClassifier._get_file_name_fields(ARGO)
    assert str(excinfo.value) == "'D1901119_001.nc' has less than 6 fields in file name."
    assert FileClassifier._get_file_name_fields(ARGO, min_fields=2) == ["D1901119", "001"]


def test_too_few_fields_message_names_the_path_as_given(imos_dir):
    path = str(imos_dir / ARGO)
    with pytest.raises(InvalidFileNameError, match="has less than 3 fields in file name"):
        FileClassifier._get_file_name_fields(path, min_fields=3)
    with pytest.raises(InvalidFileNameError) as excinfo:
        FileClassifier._get_file_name_fields(path, min_fields=3)
    assert str(excinfo.value).startswith(f"'{path}'")


def test_extensionless_name_quirk():
    # compatible quirk: with no dot, the tail made of word characters counts as the "extension"
    with pytest.raises(InvalidFileNameError):
        FileClassifier._get_file_name_fields("IMOS_ANMN_TZ_20180406_NRSROT_FV01", min_fields=1 + 5)
    assert FileClassifier._get_file_name_fields("IMOS_ANMN-NRS_TZ_2018", min_fields=1) == ["IMOS", "ANMN"]
    assert FileClassifier._get_file_name_fields("IMOS_ANMN_TZ", min_fields=1) == [""]


def test_facility():
    assert FileClassifier._get_facility(NRS_TZ) == ("ANMN", "NRS")
    assert FileClassifier._get_facility(SRS_OC) == ("SRS", "OC", "BODBAW")
    assert FileClassifier._get_facility(ACORN, check_sub=False) == ("ACORN",)


def test_missing_sub_facility_message():
    with pytest.raises(InvalidFileNameError) as excinfo:
        FileClassifier._get_facility(ACORN)
    assert str(excinfo.value) == f"Missing sub-facility in file name '{ACORN}'"


def test_facility_needs_two_fields():
    with pytest.raises(InvalidFileNameError, match="has less than 2 fields"):
        FileClassifier._get_facility("IMOS.nc")


def test_make_path_converts_in_place():
    parts = ["IMOS", "ANMN", 2018, 1.5]
    assert FileClassifier._make_path(parts) == "IMOS/ANMN/2018/1.5"
    assert parts == ["IMOS", "ANMN", "2018", "1.5"]


# --- NetCDF content --------------------------------------------------------------------------------------------------


def test_site_code(imos_dir):
    assert FileClassifier._get_site_code(imos_dir / NRS_TZ) == "NRSROT"
    assert FileClassifier._get_site_code(str(imos_dir / ACORN)) == "BONC"


def test_missing_site_code_message(imos_dir):
    path = imos_dir / NRS_MET_BAD
    with pytest.raises(InvalidFileContentError, match="has no attribute 'site_code'") as excinfo:
        FileClassifier._get_site_code(path)
    assert str(excinfo.value) == f"File '{path}' has no attribute 'site_code'"


def test_nc_att_default_used_and_not_parsed(imos_dir):
    path = imos_dir / NRS_MET_BAD
    assert FileClassifier._get_nc_att(path, "site_code", default="UNKNOWN") == "UNKNOWN"
    assert FileClassifier._get_nc_att(path, "time_coverage_start", default="not a date", time_format=True) == (
        "not a date"
    )


def test_nc_att_list(imos_dir):
    values = FileClassifier._get_nc_att(imos_dir / NRS_MET, ["site_code", "time_coverage_start"])
    assert values == ["NRSMAI", "2016-11-09T23:11:08Z"]


def test_nc_att_time_format(imos_dir):
    start = FileClassifier._get_nc_att(imos_dir / NRS_TZ, "time_coverage_start", time_format=True)
    assert start == datetime(2018, 4, 6, 8, 0, 0)
    [start, end] = FileClassifier._get_nc_att(
        imos_dir / NRS_TZ, ["time_coverage_start", "time_coverage_end"], time_format="%Y-%m-%dT%H:%M:%SZ"
    )
    assert start < end


def test_nc_att_time_parse_failure_message(imos_dir):
    path = imos_dir / NRS_TZ
    with pytest.raises(InvalidFileContentError) as excinfo:
        FileClassifier._get_nc_att(path, "site_code", time_format=True)
    assert str(excinfo.value) == f"Could not parse attribute site_code='NRSROT' as a datetime (file '{path}')"


def test_open_not_a_netcdf_file(imos_dir):
    path = imos_dir / "not_a_netcdf_file.nc"
    for call in (
        lambda: FileClassifier._open_nc_file(path),
        lambda: FileClassifier._get_site_code(path),
        lambda: FileClassifier._get_variable_names(path),
    ):
        with pytest.raises(InvalidFileFormatError) as excinfo:
            call()
        assert str(excinfo.value) == f"Could not open NetCDF file '{path}'."


def test_open_missing_file(tmp_path):
    with pytest.raises(InvalidFileFormatError, match="Could not open NetCDF file"):
        FileClassifier._open_nc_file(tmp_path / "missing.nc")


def test_variable_names(imos_dir):
    names = FileClassifier._get_variable_names(imos_dir / NRS_TZ)
    assert names[:4] == ["DEPTH", "DEPTH_quality_control", "LATITUDE", "LONGITUDE"]
    assert "TEMP" in names


def _open_descriptors(path) -> int:
    """How many file descriptors of this process point at ``path`` (Linux /proc)."""
    fd_dir = "/proc/self/fd"
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            count += os.readlink(os.path.join(fd_dir, fd)) == str(path)
        except OSError:
            pass
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_dataset_closed_even_on_error(imos_file):
    """Unlike the classic library, a failed attribute lookup or parse does not leave the file open."""
    path = imos_file(NRS_MET_BAD)  # has no global attributes at all
    parsable = imos_file(NRS_MET)
    import netCDF4

    dataset = netCDF4.Dataset(path)  # check the probe itself sees an open file
    assert _open_descriptors(path) == 1
    dataset.close()
    with pytest.raises(InvalidFileContentError):
        FileClassifier._get_site_code(path)
    with pytest.raises(InvalidFileContentError, match="Could not parse"):
        FileClassifier._get_nc_att(parsable, "site_code", time_format=True)
    assert _open_descriptors(path) == 0
    assert _open_descriptors(parsable) == 0


def test_subclass_composes_helpers(imos_file):
    path = imos_file(NRS_TZ)
    assert MooringClassifier.dest_path(path) == f"IMOS/ANMN/NRS/NRSROT/Temperature/{NRS_TZ}"


def test_subclass_propagates_user_errors(imos_file):
    with pytest.raises(InvalidFileNameError, match="Missing sub-facility"):
        MooringClassifier.dest_path(imos_file(ACORN))
