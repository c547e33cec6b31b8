"""``aodncore.util.archives``: decompression stops at the caps while streaming, whatever the headers claim."""

from __future__ import annotations

import gzip
import io
import os
import zipfile

import pytest

from aodncore.limits import ArchiveLimits
from aodncore.pipeline.exceptions import InvalidFileFormatError
from aodncore.util.archives import _CHUNK_SIZE, extract_gzip, extract_zip

MiB = 1024 ** 2


@pytest.fixture
def decompressed(monkeypatch):
    """Counts the bytes the extraction code reads out of gzip and zip decompressors."""
    counter = {"bytes": 0}

    def counting(read):
        def wrapper(self, *args, **kwargs):
            data = read(self, *args, **kwargs)
            counter["bytes"] += len(data)
            return data
        return wrapper

    monkeypatch.setattr(gzip.GzipFile, "read", counting(gzip.GzipFile.read))
    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting(zipfile.ZipExtFile.read))
    return counter


def _gzip_bomb(path, gib: int = 10):
    """``gib`` GiB of zeros as concatenated gzip members (~10 MB for 10 GiB)."""
    member = gzip.compress(b"\x00" * (64 * MiB), compresslevel=9)
    with open(path, "wb") as out:
        for _ in range(gib * 16):
            out.write(member)
    return str(path)


def _lying_zip(path, real_size: int, declared_size: int):
    """A zip of one zero-filled member whose headers claim ``declared_size`` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("liar.bin", b"\x00" * real_size)
    data = bytearray(buffer.getvalue())
    real, fake = real_size.to_bytes(4, "little"), declared_size.to_bytes(4, "little")
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        header = data.find(signature)
        assert data[header + size_offset:header + size_offset + 4] == real
        data[header + size_offset:header + size_offset + 4] = fake
    path.write_bytes(bytes(data))
    return str(path)


def test_a_10_gib_gzip_bomb_stops_at_the_member_cap(tmp_path, decompressed):
    bomb = _gzip_bomb(tmp_path / "bomb.nc.gz")
    out = tmp_path / "out"
    out.mkdir()
    limits = ArchiveLimits(max_member_bytes=32 * MiB, max_ratio=10 ** 9)
    with pytest.raises(InvalidFileFormatError, match=r"more than the per-member limit of 32 MiB"):
        extract_gzip(bomb, str(out), limits=limits)
    assert decompressed["bytes"] <= 32 * MiB + _CHUNK_SIZE
    assert os.listdir(out) == []


def test_a_gzip_bomb_stops_at_the_ratio_cap_with_defaults(tmp_path, decompressed):
    bomb = _gzip_bomb(tmp_path / "bomb.gz", gib=1)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match=r"compression ratio above the limit of 100:1"):
        extract_gzip(bomb, str(out))
    assert decompressed["bytes"] <= 100 * os.path.getsize(bomb) + _CHUNK_SIZE
    assert os.listdir(out) == []


def test_a_zip_member_lying_about_its_size_is_refused_after_its_declared_size(tmp_path, decompressed):
    # the header says 100 bytes, the data inflates to 64 MiB: reading stops at the declared size (the checksum
    # then fails), so a lying header cannot smuggle output past the caps checked against it
    liar = _lying_zip(tmp_path / "liar.zip", real_size=64 * MiB, declared_size=100)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match=r"liar\.zip"):
        extract_zip(liar, str(out), limits=ArchiveLimits(max_total_bytes=8 * MiB))
    assert decompressed["bytes"] <= 100
    assert os.listdir(out) == []


def test_whole_archive_ratio_catches_many_small_members(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(64):
            archive.writestr(f"m{index:02d}.bin", b"\x00" * MiB)  # each below the ratio threshold
    out = tmp_path / "out"
    out.mkdir()
    limits = ArchiveLimits(ratio_threshold_bytes=4 * MiB)
    with pytest.raises(InvalidFileFormatError, match=r"declares .* a compression ratio above the limit"):
        extract_zip(str(path), str(out), limits=limits)
    assert os.listdir(out) == []
    # within the caps the same archive extracts completely
    assert len(extract_zip(str(path), str(out), limits=ArchiveLimits(max_ratio=10 ** 6))) == 64


def test_declared_sizes_are_refused_before_anything_is_written(tmp_path, decompressed):
    path = tmp_path / "declared.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("first.txt", b"fine")
        archive.writestr("big.bin", b"\x00" * (4 * MiB))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match=r"'big\.bin' declares 4194304 bytes.*archive_max_member_bytes"):
        extract_zip(str(path), str(out), limits=ArchiveLimits(max_member_bytes=MiB))
    assert decompressed["bytes"] == 0
    assert os.listdir(out) == []
