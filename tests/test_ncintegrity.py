"""``aodncore.util.ncintegrity``: truncated and corrupt NetCDF files are recognised from their headers."""

from __future__ import annotations

import os
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from aodncore.util.ncintegrity import classic_required_size, netcdf_integrity_problem

IMOS_DIR = Path(__file__).parent / "data" / "imos"
REAL_NETCDF = sorted(p for p in IMOS_DIR.glob("*.nc") if p.name != "not_a_netcdf_file.nc")


def _write_classic(path: Path, fmt: str, record_vars: dict[str, str], fixed_vars: dict[str, str], records: int = 7):
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.title = "a test file"
        ds.createDimension("time", None)
        ds.createDimension("depth", 5)
        for name, dtype in fixed_vars.items():
            var = ds.createVariable(name, dtype, ("depth",))
            var.units = "m"
            var[:] = np.arange(5).astype(dtype)
        for name, dtype in record_vars.items():
            var = ds.createVariable(name, dtype, ("time", "depth"))
            var[:records, :] = np.ones((records, 5), dtype=dtype)
    return path


def _truncated_copy(source: Path, target: Path, size: int) -> Path:
    target.write_bytes(source.read_bytes()[:size])
    return target


@pytest.mark.parametrize("path", REAL_NETCDF, ids=lambda p: p.name[:40])
def test_real_imos_files_are_sound_and_cutting_into_their_data_is_detected(path, tmp_path):
    assert netcdf_integrity_problem(path) is None
    # cut half of the file: always into the data (or the header)
    problem = netcdf_integrity_problem(_truncated_copy(path, tmp_path / path.name, os.path.getsize(path) // 2))
    assert problem is not None and ("truncated" in problem or "corrupt" in problem)


@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_DATA"])
@pytest.mark.parametrize("record_vars", [{}, {"flag": "i1"}, {"flag": "i1", "temp": "f4", "count": "i2"}],
                         ids=["no-records", "one-record-var", "several-record-vars"])
def test_classic_header_size_is_exact_for_files_netcdf_writes(tmp_path, fmt, record_vars):
    path = _write_classic(tmp_path / "x.nc", fmt, record_vars, {"depth": "f8", "code": "i1"})
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        magic = stream.read(4)
        needed, _ = classic_required_size(stream, size, magic[3])
    # the implied size is the file size, give or take the padding of the very last variable
    assert size - 3 <= needed <= size
    assert netcdf_integrity_problem(path) is None
    problem = netcdf_integrity_problem(_truncated_copy(path, tmp_path / "cut.nc", needed - 1))
    assert problem is not None and problem.startswith("truncated NetCDF file")
    assert f"the file has {needed - 1}" in problem


def test_a_paused_writer_leaves_a_classic_file_that_is_detected(tmp_path):
    path = _write_classic(tmp_path / "x.nc", "NETCDF3_CLASSIC", {"temp": "f8"}, {}, records=1000)
    partial = _truncated_copy(path, tmp_path / "partial.nc", int(os.path.getsize(path) * 0.4))
    with netCDF4.Dataset(partial):  # netCDF itself opens it happily
        pass
    problem = netcdf_integrity_problem(partial)
    assert "record 1000 of variable 'temp'" in problem


def test_streaming_record_count_checks_only_fixed_variables(tmp_path):
    path = _write_classic(tmp_path / "x.nc", "NETCDF3_CLASSIC", {"temp": "f4"}, {"depth": "f8"})
    data = bytearray(path.read_bytes())
    data[4:8] = b"\xff\xff\xff\xff"  # numrecs = STREAMING
    streaming = tmp_path / "streaming.nc"
    streaming.write_bytes(bytes(data))
    assert netcdf_integrity_problem(streaming) is None
    with open(streaming, "rb") as stream:
        stream.read(4)
        needed, needed_by = classic_required_size(stream, len(data), 1)
    assert needed_by == "variable 'depth'"
    assert netcdf_integrity_problem(_truncated_copy(streaming, tmp_path / "cut.nc", needed - 1)) is not None


@pytest.mark.parametrize("patch, expected", [
    ((8, b"\x00\x00\x00\x0d"), "invalid dimension list tag 13"),
    ((12, b"\x7f\xff\xff\xff"), "more than the file can hold"),
])
def test_corrupt_classic_headers_are_reported_without_hanging(tmp_path, patch, expected):
    path = _write_classic(tmp_path / "x.nc", "NETCDF3_CLASSIC", {"temp": "f4"}, {"depth": "f8"})
    data = bytearray(path.read_bytes())
    offset, replacement = patch
    data[offset:offset + len(replacement)] = replacement
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes(bytes(data))
    problem = netcdf_integrity_problem(corrupt)
    assert problem.startswith("corrupt classic NetCDF file") and expected in problem


def test_header_cut_inside_the_header(tmp_path):
    path = _write_classic(tmp_path / "x.nc", "NETCDF3_64BIT_OFFSET", {"temp": "f4"}, {"depth": "f8"})
    problem = netcdf_integrity_problem(_truncated_copy(path, tmp_path / "cut.nc", 30))
    assert problem.startswith("corrupt 64-bit offset NetCDF file")


def _write_netcdf4(path: Path) -> Path:
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.createDimension("x", 20000)
        var = ds.createVariable("v", "f8", ("x",), zlib=True)
        var[:] = np.random.default_rng(1).random(20000)
    return path


def test_netcdf4_eof_address_must_match_the_file_size(tmp_path):
    path = _write_netcdf4(tmp_path / "n4.nc")
    size = os.path.getsize(path)
    assert netcdf_integrity_problem(path) is None
    cut = netcdf_integrity_problem(_truncated_copy(path, tmp_path / "cut.nc", size - 1))
    assert cut.startswith("truncated HDF5 (NetCDF-4) file") and f"byte {size}" in cut
    longer = tmp_path / "longer.nc"
    longer.write_bytes(path.read_bytes() + b"\x00" * 100)
    assert "100 bytes beyond the end of file" in netcdf_integrity_problem(longer)


def test_netcdf4_superblock_after_a_user_block_and_open_for_write_flag(tmp_path):
    path = _write_netcdf4(tmp_path / "n4.nc")
    data = path.read_bytes()
    version = data[8]
    assert version in (0, 2, 3)
    if version in (2, 3):  # mark a version-3 superblock as still open for writing
        patched = bytearray(data)
        patched[8], patched[11] = 3, patched[11] | 0x1
        flagged = tmp_path / "flagged.nc"
        flagged.write_bytes(bytes(patched))
        assert "still open for writing" in netcdf_integrity_problem(flagged)
    # no superblock anywhere: not HDF5 at all, not this module's business
    other = tmp_path / "other.nc"
    other.write_bytes(b"\x00" * 4096)
    assert netcdf_integrity_problem(other) is None


def test_not_netcdf_and_missing_files_are_left_to_the_format_check(tmp_path):
    text = tmp_path / "t.nc"
    text.write_text("This is not a netcdf file\n")
    assert netcdf_integrity_problem(text) is None
    assert netcdf_integrity_problem(tmp_path / "missing.nc") is None
    empty = tmp_path / "empty.nc"
    empty.write_bytes(b"")
    assert netcdf_integrity_problem(empty) is None
