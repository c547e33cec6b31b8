"""Detect truncated and corrupt NetCDF files from their headers, without the netCDF library.

A NetCDF file copied while its writer paused opens fine (its header is complete) and passes metadata-only checks,
but its data is cut short. This module compares what the header says with the file's real size:

* **classic** (``CDF\\x01``), **64-bit offset** (``CDF\\x02``) and **CDF-5** (``CDF\\x05``): the header is parsed
  (dimensions, attributes, variables with their ``begin`` offsets); every non-record variable must fit in the file,
  and so must ``numrecs`` records of the record variables. With ``numrecs = STREAMING`` the record count is
  unknown, so only the non-record variables are checked. The format is described in the NetCDF User's Guide,
  "File Format Specifications".
* **NetCDF-4 / HDF5**: the superblock (at offset 0, 512, 1024, ...) records the end-of-file address; the file must
  be exactly that long, and a version-3 superblock must not be marked as still open for writing.

:func:`netcdf_integrity_problem` returns a one-line description of the problem, or None for a sound file (and for
files that are not NetCDF at all: deciding *that* is the format check's job). Parsing reads only the header, and
every count in it is bounded by the bytes left in the file, so a crafted header cannot make the parser loop or
allocate without bound.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

__all__ = ["netcdf_integrity_problem"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TAG_ABSENT, _TAG_DIMENSION, _TAG_VARIABLE, _TAG_ATTRIBUTE = 0, 10, 11, 12
#: nc_type -> size in bytes (NC_BYTE ... NC_DOUBLE, and the CDF-5 types NC_UBYTE ... NC_UINT64)
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}


class _Corrupt(Exception):
    """The header cannot be parsed; the message says where."""


class _Header:
    """Sequential big-endian reader of a classic header, refusing to read past the end of the file."""

    def __init__(self, stream: BinaryIO, size: int, version: int) -> None:
        self.stream = stream
        self.size = size
        self.position = 4
        self.count_size = 8 if version == 5 else 4  # nelems, lengths, dimids, vsize, numrecs
        self.offset_size = 4 if version == 1 else 8  # begin

    def read(self, count: int, what: str) -> bytes:
        if count > self.size - self.position:
            raise _Corrupt(f"the header is cut short (reading {what} at byte {self.position})")
        data = self.stream.read(count)
        if len(data) != count:  # pragma: no cover - the file shrank while we read it
            raise _Corrupt(f"the header is cut short (reading {what} at byte {self.position})")
        self.position += count
        return data

    def skip(self, count: int, what: str) -> None:
        if count > self.size - self.position:
            raise _Corrupt(f"the header is cut short ({what} at byte {self.position} needs {count} bytes)")
        self.stream.seek(count, os.SEEK_CUR)
        self.position += count

    def uint(self, width: int, what: str) -> int:
        return int.from_bytes(self.read(width, what), "big")

    def count(self, what: str) -> int:
        return self.uint(self.count_size, what)

    def bounded_count(self, what: str, minimum_bytes_each: int) -> int:
        """A count of items that each take at least ``minimum_bytes_each`` more header bytes."""
        value = self.count(what)
        if value * minimum_bytes_each > self.size - self.position:
            raise _Corrupt(f"the header claims {value} {what}, more than the file can hold")
        return value

    def name(self, what: str) -> str:
        length = self.bounded_count(f"characters in a {what} name", 1)
        raw = self.read(length, f"a {what} name")
        self.skip(-length % 4, "name padding")
        return raw.decode("utf-8", errors="replace")

    def attributes(self, owner: str) -> None:
        tag, count = self.uint(4, "an attribute list tag"), self.bounded_count(f"attributes of {owner}", 12)
        if tag not in (_TAG_ABSENT, _TAG_ATTRIBUTE) or (tag == _TAG_ABSENT and count):
            raise _Corrupt(f"invalid attribute list tag {tag} for {owner}")
        for _ in range(count):
            name = self.name("attribute")
            nc_type = self.uint(4, "an attribute type")
            if nc_type not in _TYPE_SIZES:
                raise _Corrupt(f"attribute '{name}' of {owner} has an unknown type {nc_type}")
            length = self.count("an attribute length") * _TYPE_SIZES[nc_type]
            self.skip(length + (-length % 4), f"the values of attribute '{name}'")


def _product(values: list[int]) -> int:
    result = 1
    for value in values:
        result *= value
    return result


def _classic_problem(stream: BinaryIO, size: int, version: int) -> str | None:
    needed, needed_by = classic_required_size(stream, size, version)
    if needed > size:
        return (f"truncated NetCDF file: its header needs at least {needed} bytes (up to the end of {needed_by}), "
                f"the file has {size}")
    return None


def classic_required_size(stream: BinaryIO, size: int, version: int) -> tuple[int, str]:
    """The least size the classic header at the stream's position 4 implies, and what ends there."""
    header = _Header(stream, size, version)
    streaming = (1 << (8 * header.count_size)) - 1
    numrecs = header.count("the record count")

    tag, dim_count = header.uint(4, "the dimension list tag"), header.bounded_count("dimensions", 8)
    if tag not in (_TAG_ABSENT, _TAG_DIMENSION) or (tag == _TAG_ABSENT and dim_count):
        raise _Corrupt(f"invalid dimension list tag {tag}")
    dim_lengths = []
    for _ in range(dim_count):
        header.name("dimension")
        dim_lengths.append(header.count("a dimension length"))

    header.attributes("the file")

    tag, var_count = header.uint(4, "the variable list tag"), header.bounded_count("variables", 16)
    if tag not in (_TAG_ABSENT, _TAG_VARIABLE) or (tag == _TAG_ABSENT and var_count):
        raise _Corrupt(f"invalid variable list tag {tag}")
    starts: list[tuple[str, int]] = []
    fixed_ends: list[tuple[int, str]] = []
    record_vars: list[tuple[str, int, int]] = []  # (name, begin, bytes per record)
    for _ in range(var_count):
        name = header.name("variable")
        rank = header.bounded_count(f"dimensions of variable '{name}'", header.count_size)
        dim_ids = [header.count(f"a dimension id of variable '{name}'") for _ in range(rank)]
        if any(dim_id >= len(dim_lengths) for dim_id in dim_ids):
            raise _Corrupt(f"variable '{name}' uses an undefined dimension")
        header.attributes(f"variable '{name}'")
        nc_type = header.uint(4, f"the type of variable '{name}'")
        if nc_type not in _TYPE_SIZES:
            raise _Corrupt(f"variable '{name}' has an unknown type {nc_type}")
        header.count(f"the size of variable '{name}'")  # vsize: recomputed below (it saturates for huge variables)
        begin = header.uint(header.offset_size, f"the offset of variable '{name}'")
        starts.append((name, begin))
        lengths = [dim_lengths[dim_id] for dim_id in dim_ids]
        is_record = bool(lengths) and lengths[0] == 0
        data_bytes = _product(lengths[1:] if is_record else lengths) * _TYPE_SIZES[nc_type]
        if is_record:
            record_vars.append((name, begin, data_bytes))
        else:
            fixed_ends.append((begin + data_bytes, name))

    header_end = header.position
    for name, begin in starts:
        if begin < header_end:
            raise _Corrupt(f"variable '{name}' starts at byte {begin}, inside the header")

    needed, needed_by = header_end, "the header"
    for end, name in fixed_ends:
        if end > needed:
            needed, needed_by = end, f"variable '{name}'"
    if record_vars and numrecs != streaming and numrecs > 0:
        if len(record_vars) == 1:
            record_size = record_vars[0][2]
        else:
            record_size = sum(data_bytes + (-data_bytes % 4) for _, _, data_bytes in record_vars)
        for name, begin, data_bytes in record_vars:
            end = begin + (numrecs - 1) * record_size + data_bytes
            if end > needed:
                needed, needed_by = end, f"record {numrecs} of variable '{name}'"
    return needed, needed_by


def _hdf5_problem(stream: BinaryIO, size: int) -> str | None:
    offset = 0
    while True:
        stream.seek(offset)
        if stream.read(8) == _HDF5_SIGNATURE:
            break
        offset = 512 if offset == 0 else offset * 2
        if offset + 8 > size:
            return None  # no superblock: not an HDF5 file (the format check decides what it is)
    fields = stream.read(16)
    if len(fields) < 4:
        return f"truncated HDF5 (NetCDF-4) file: its superblock at byte {offset} is cut short"
    version = fields[0]
    if version in (0, 1):
        offset_size = fields[5]
        addresses_at = offset + 8 + 16 + (4 if version == 1 else 0)
        flags = 0
    elif version in (2, 3):
        offset_size, flags = fields[1], fields[3]
        addresses_at = offset + 8 + 4
    else:
        return f"corrupt HDF5 (NetCDF-4) file: unknown superblock version {version}"
    if offset_size not in (2, 4, 8):
        return f"corrupt HDF5 (NetCDF-4) file: invalid address size {offset_size} in its superblock"
    address_count = 3  # base address, then free-space (v0/1) or extension (v2/3) address, then end of file
    stream.seek(addresses_at)
    raw = stream.read(offset_size * address_count)
    if len(raw) < offset_size * address_count:
        return f"truncated HDF5 (NetCDF-4) file: its superblock at byte {offset} is cut short"
    fmt = {2: "<H", 4: "<I", 8: "<Q"}[offset_size]  # HDF5 is little-endian
    base, _, eof = (struct.unpack(fmt, raw[i * offset_size:(i + 1) * offset_size])[0] for i in range(3))
    undefined = (1 << (8 * offset_size)) - 1
    if eof == undefined or base == undefined:
        return "corrupt HDF5 (NetCDF-4) file: its superblock has no end-of-file address"
    expected = base + eof
    if version == 3 and flags & 0x1:
        return "incomplete HDF5 (NetCDF-4) file: its superblock says it is still open for writing"
    if size < expected:
        return (f"truncated HDF5 (NetCDF-4) file: its superblock records an end of file at byte {expected}, "
                f"the file has {size}")
    if size > expected:
        return (f"corrupt HDF5 (NetCDF-4) file: {size - expected} bytes beyond the end of file its superblock "
                f"records (byte {expected}); it was probably copied while being written")
    return None


def netcdf_integrity_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the NetCDF file at ``path`` is truncated or corrupt, or None (also for files that are not NetCDF, and for
    files that cannot be read at all: the format check itself reports those)."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with statement below
        size = os.fstat(stream.fileno()).st_size
    except OSError:
        return None
    with stream:
        magic = stream.read(4)
        try:
            if magic[:3] == b"CDF" and len(magic) == 4 and magic[3] in (1, 2, 5):
                return _classic_problem(stream, size, magic[3])
            stream.seek(0)
            return _hdf5_problem(stream, size)
        except _Corrupt as error:
            kind = {1: "classic", 2: "64-bit offset", 5: "CDF-5"}.get(magic[3] if len(magic) == 4 else 0, "")
            return f"corrupt {kind} NetCDF file: {error}"
