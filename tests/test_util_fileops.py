"""Tests for aodncore.util.fileops: sniffing, listing order, safe copy/move and hostile archive handling."""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aodncore.limits import ArchiveLimits
from aodncore.pipeline.exceptions import InvalidFileFormatError
from aodncore.util import fileops
from aodncore.util.fileops import (
    TemporaryDirectory,
    extract_gzip,
    extract_zip,
    filesystem_sort_key,
    find_file,
    get_file_checksum,
    is_dir_writable,
    is_file_writable,
    is_gzip_file,
    is_jpeg_file,
    is_json_file,
    is_netcdf_file,
    is_nonempty_file,
    is_pdf_file,
    is_png_file,
    is_tiff_file,
    is_zip_file,
    list_regular_files,
    mkdir_p,
    rm_f,
    rm_r,
    rm_rf,
    safe_copy_file,
    safe_move_file,
    validate_dir_writable,
    validate_jpeg_file,
    validate_png_file,
)

NETCDF_NAME = "IMOS_ACORN_V_20101201T050000Z_BONC_FV00_sea-state.nc"

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PDF_BYTES = b"%PDF-1.4\n%fake\n"
TIFF_LE_BYTES = b"II*\x00" + b"\x00" * 32
TIFF_BE_BYTES = b"MM\x00*" + b"\x00" * 32


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


# ---------------------------------------------------------------------------------------------------------------------
# type sniffing
# ---------------------------------------------------------------------------------------------------------------------

def test_is_netcdf_file(imos_dir, tmp_path):
    assert is_netcdf_file(str(imos_dir / NETCDF_NAME))
    assert not is_netcdf_file(str(imos_dir / "not_a_netcdf_file.nc"))
    assert not is_netcdf_file(str(imos_dir / "bgc_trip.csv"))
    assert not is_netcdf_file(str(tmp_path / "missing.nc"))


def test_is_gzip_file(tmp_path, imos_dir):
    gz = tmp_path / "x.gz"
    with gzip.open(gz, "wb") as f:
        f.write(b"content")
    assert is_gzip_file(str(gz))
    assert not is_gzip_file(str(imos_dir / "bgc_trip.csv"))
    assert not is_gzip_file(str(tmp_path / "missing.gz"))


def test_is_zip_file(imos_dir):
    assert is_zip_file(str(imos_dir / "good_and_bad.zip"))
    assert not is_zip_file(str(imos_dir / NETCDF_NAME))


def test_is_json_file(tmp_path):
    good = _write(tmp_path / "a.json", json.dumps({"a": [1, 2]}).encode())
    bad = _write(tmp_path / "b.json", b"{not json")
    binary = _write(tmp_path / "c.json", b"\xff\xfe\x00garbage")
    assert is_json_file(good)
    assert not is_json_file(bad)
    assert not is_json_file(binary)
    with pytest.raises(OSError):
        is_json_file(str(tmp_path / "missing.json"))


def test_is_nonempty_file(tmp_path):
    assert is_nonempty_file(_write(tmp_path / "full", b"x"))
    assert not is_nonempty_file(_write(tmp_path / "empty", b""))
    with pytest.raises(OSError):
        is_nonempty_file(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "data, expected",
    [
        (PNG_BYTES, "png"),
        (JPEG_BYTES, "jpeg"),
        (PDF_BYTES, "pdf"),
        (TIFF_LE_BYTES, "tiff"),
        (TIFF_BE_BYTES, "tiff"),
        (b"plain text", None),
        (b"", None),
    ],
)
def test_image_and_pdf_sniffing(tmp_path, data, expected):
    path = _write(tmp_path / "file.bin", data)
    results = {
        "png": is_png_file(path),
        "jpeg": is_jpeg_file(path),
        "pdf": is_pdf_file(path),
        "tiff": is_tiff_file(path),
    }
    assert {name for name, value in results.items() if value} == ({expected} if expected else set())


def test_sniffing_ignores_extension(tmp_path):
    assert not is_png_file(_write(tmp_path / "fake.png", b"not really a png"))


def test_images_inside_test_zip(tmp_path, imos_dir):
    extracted = extract_zip(str(imos_dir / "images_and_nc.zip"), str(tmp_path))
    jpegs = [p for p in extracted if p.endswith(".jpg")]
    netcdfs = [p for p in extracted if p.endswith(".nc")]
    assert len(jpegs) == 1 and len(netcdfs) == 1
    assert jpegs[0] == str(tmp_path / "SAZ15_2012_47_1050_IRS" / "saz_2012_47_1050_IRS_01.jpg")
    assert is_jpeg_file(jpegs[0])
    assert not is_png_file(jpegs[0])
    assert is_netcdf_file(netcdfs[0])
    assert not is_jpeg_file(netcdfs[0])


def test_mime_validators_message(tmp_path):
    png = _write(tmp_path / "a.png", PNG_BYTES)
    validate_png_file(png)
    with pytest.raises(TypeError, match=r"filepath '.*a\.png' must be of type 'image/jpeg'\. Detected type: image/png"):
        validate_jpeg_file(png)


def test_get_file_checksum(tmp_path):
    path = _write(tmp_path / "data", b"hello world")
    assert get_file_checksum(path) == "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    assert get_file_checksum(path, algorithm="md5") == "5eb63bbbe01eeed093cb22bb8f5acdc3"
    assert get_file_checksum(path, block_size=3) == get_file_checksum(path)


# ---------------------------------------------------------------------------------------------------------------------
# locale and ordering
# ---------------------------------------------------------------------------------------------------------------------

def test_import_does_not_change_locale():
    # a fresh interpreter: reloading the module here would replace its functions for every later test
    code = ("import locale; before = locale.setlocale(locale.LC_ALL); import aodncore.util.fileops; "
            "after = locale.setlocale(locale.LC_ALL); print(before == after, 'aodncore.util.fileops' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", "import sys; " + code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]


def test_filesystem_sort_key_code_point_order():
    names = ["b", "Übergabe", "a", "B", "Äpfel", "A", "Österreich", "_x", "1"]
    assert sorted(names, key=filesystem_sort_key) == ["1", "A", "B", "_x", "a", "b", "Äpfel", "Österreich",
                                                      "Übergabe"]


def test_list_regular_files_order_and_exclusions(tmp_path):
    for name in ["b.nc", "a.nc", "B.nc", "A.nc", "Äpfel.nc"]:
        _write(tmp_path / name, b"x")
    _write(tmp_path / "sub2" / "z.nc", b"x")
    _write(tmp_path / "sub1" / "y.nc", b"x")
    _write(tmp_path / "sub1" / "deeper" / "w.nc", b"x")
    _write(tmp_path / "sub1" / "x.nc", b"x")
    os.symlink(tmp_path / "a.nc", tmp_path / "link.nc")
    os.symlink(tmp_path / "sub1", tmp_path / "linkdir")
    sock = socket.socket(socket.AF_UNIX)
    sock_path = tmp_path / "s.sock"
    try:
        sock.bind(str(sock_path))
        top = list(list_regular_files(str(tmp_path)))
        assert top == [str(tmp_path / n) for n in ["A.nc", "B.nc", "a.nc", "b.nc", "Äpfel.nc"]]

        recursive = list(list_regular_files(str(tmp_path), recursive=True))
        expected = ["A.nc", "B.nc", "a.nc", "b.nc", "Äpfel.nc", "sub1/x.nc", "sub1/y.nc", "sub1/deeper/w.nc",
                    "sub2/z.nc"]
        assert recursive == [str(tmp_path / n) for n in expected]
    finally:
        sock.close()


def test_list_regular_files_returns_absolute_paths(tmp_path, monkeypatch):
    _write(tmp_path / "d" / "f", b"x")
    monkeypatch.chdir(tmp_path)
    assert list(list_regular_files("d")) == [str(tmp_path / "d" / "f")]


def test_list_regular_files_sort_key_validated_eagerly(tmp_path):
    with pytest.raises(ValueError, match="sort_key must be callable"):
        list_regular_files(str(tmp_path), sort_key="nope")
    _write(tmp_path / "a", b"x")
    _write(tmp_path / "b", b"x")
    reverse = list(list_regular_files(str(tmp_path), sort_key=lambda n: [-ord(c) for c in n]))
    assert [os.path.basename(p) for p in reverse] == ["b", "a"]


def test_find_file(tmp_path):
    _write(tmp_path / "a" / "IMOS_data.nc", b"x")
    _write(tmp_path / "b" / "imos_other.nc", b"x")
    assert find_file(str(tmp_path), r"imos_data") == str(tmp_path / "a" / "IMOS_data.nc")
    assert find_file(str(tmp_path), r"IMOS_") == str(tmp_path / "a" / "IMOS_data.nc")
    assert find_file(str(tmp_path), r"data") is None  # anchored at the start of the basename
    assert find_file(str(tmp_path), r".*other") == str(tmp_path / "b" / "imos_other.nc")


# ---------------------------------------------------------------------------------------------------------------------
# creation / removal / writability
# ---------------------------------------------------------------------------------------------------------------------

def test_mkdir_p(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    mkdir_p(str(target))
    mkdir_p(str(target))
    assert target.is_dir()
    file_path = _write(tmp_path / "f", b"x")
    with pytest.raises(OSError):
        mkdir_p(file_path)


def test_rm_family(tmp_path):
    f = _write(tmp_path / "f", b"x")
    rm_f(f)
    rm_f(f)
    assert not os.path.exists(f)

    tree = tmp_path / "tree"
    _write(tree / "x" / "y", b"x")
    rm_r(str(tree))
    assert not tree.exists()
    with pytest.raises(OSError):
        rm_r(str(tree))

    single = _write(tmp_path / "single", b"x")
    rm_r(single)
    assert not os.path.exists(single)

    rm_rf(str(tmp_path / "missing"))
    _write(tmp_path / "t2" / "z", b"x")
    rm_rf(str(tmp_path / "t2"))
    assert not (tmp_path / "t2").exists()


def test_writability(tmp_path):
    assert is_dir_writable(str(tmp_path)) is True
    assert not is_dir_writable(str(tmp_path / "missing"))
    validate_dir_writable(str(tmp_path))
    with pytest.raises(ValueError, match=r"dir '.*missing' is not writable"):
        validate_dir_writable(str(tmp_path / "missing"))
    f = _write(tmp_path / "f", b"x")
    assert is_file_writable(f)


def test_temporary_directory():
    with TemporaryDirectory(prefix="aodn") as d:
        assert os.path.isdir(d) and os.path.basename(d).startswith("aodn")
    assert not os.path.exists(d)


# ---------------------------------------------------------------------------------------------------------------------
# safe copy / move
# ---------------------------------------------------------------------------------------------------------------------

def test_safe_copy_file(tmp_path):
    source = _write(tmp_path / "src.nc", b"payload")
    os.chmod(source, 0o640)
    dest = str(tmp_path / "out" / "dst.nc")
    os.makedirs(os.path.dirname(dest))
    safe_copy_file(source, dest)
    assert Path(dest).read_bytes() == b"payload"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o640
    assert os.listdir(os.path.dirname(dest)) == ["dst.nc"]  # no temp file left behind

    with pytest.raises(OSError):
        safe_copy_file(source, dest)
    Path(source).write_bytes(b"new")
    safe_copy_file(source, dest, overwrite=True)
    assert Path(dest).read_bytes() == b"new"


def test_safe_copy_file_errors(tmp_path):
    source = _write(tmp_path / "src", b"x")
    with pytest.raises(OSError):
        safe_copy_file(str(tmp_path / "missing"), str(tmp_path / "dst"))
    with pytest.raises(OSError, match="source file and destination file can't refer to the same file"):
        safe_copy_file(source, source, overwrite=True)
    with pytest.raises(OSError):
        safe_copy_file(source, str(tmp_path / "no_such_dir" / "dst"))
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_safe_copy_file_removes_temp_on_failure(tmp_path, monkeypatch):
    source = _write(tmp_path / "src", b"x")
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()

    def failing_replace(*_args, **_kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(fileops.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        safe_copy_file(source, str(dest_dir / "dst"))
    assert os.listdir(dest_dir) == []


def test_safe_move_file(tmp_path):
    source = _write(tmp_path / "src", b"abc")
    dest = str(tmp_path / "dst")
    safe_move_file(source, dest)
    assert not os.path.exists(source)
    assert Path(dest).read_bytes() == b"abc"
    other = _write(tmp_path / "other", b"zzz")
    with pytest.raises(OSError):
        safe_move_file(other, dest)
    assert os.path.exists(other)


def test_safe_copy_and_move_from_s3(tmp_path, monkeypatch):
    import aodncore.util.s3_util as s3_util

    calls = []

    def fake_download(bucket, key, destination):
        calls.append(("download", bucket, key))
        Path(destination).write_bytes(b"from s3")

    def fake_delete(bucket, key):
        calls.append(("delete", bucket, key))

    monkeypatch.setattr(s3_util, "download_object", fake_download)
    monkeypatch.setattr(s3_util, "delete_object", fake_delete)

    dest = str(tmp_path / "copy.nc")
    safe_copy_file("s3://landing/some/dir/file.nc", dest)
    assert Path(dest).read_bytes() == b"from s3"
    safe_move_file("s3://landing/other.nc", str(tmp_path / "moved.nc"))
    assert calls == [("download", "landing", "some/dir/file.nc"), ("download", "landing", "other.nc"),
                     ("delete", "landing", "other.nc")]
    assert sorted(os.listdir(tmp_path)) == ["copy.nc", "moved.nc"]


# ---------------------------------------------------------------------------------------------------------------------
# gzip extraction
# ---------------------------------------------------------------------------------------------------------------------

def _make_gzip(path: Path, data: bytes) -> str:
    with gzip.open(path, "wb") as f:
        f.write(data)
    return str(path)


@pytest.mark.parametrize(
    "archive_name, expected_name",
    [("x.nc.gz", "x.nc"), ("log.gz", "lo"), ("data.gz", "data"), ("bigz.gz", "bi")],
)
def test_extract_gzip_default_name_quirk(tmp_path, archive_name, expected_name):
    archive = _make_gzip(tmp_path / archive_name, b"content")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = extract_gzip(archive, str(out_dir))
    assert result == str(out_dir / expected_name)
    assert os.listdir(out_dir) == [expected_name]
    assert (out_dir / expected_name).read_bytes() == b"content"


def test_extract_gzip_netcdf_roundtrip(tmp_path, imos_dir):
    original = (imos_dir / NETCDF_NAME).read_bytes()
    archive = _make_gzip(tmp_path / (NETCDF_NAME + ".gz"), original)
    out = tmp_path / "out"
    out.mkdir()
    result = extract_gzip(archive, str(out))
    assert os.path.basename(result) == NETCDF_NAME
    assert is_netcdf_file(result)


def test_extract_gzip_explicit_name_and_invalid_names(tmp_path):
    archive = _make_gzip(tmp_path / "a.gz", b"x")
    out = tmp_path / "out"
    out.mkdir()
    assert extract_gzip(archive, str(out), dest_name="chosen.txt") == str(out / "chosen.txt")
    for bad in ("../escape", "/abs", "sub/name", ".."):
        with pytest.raises(InvalidFileFormatError):
            extract_gzip(archive, str(out), dest_name=bad)


def test_extract_gzip_size_limit(tmp_path):
    archive = _make_gzip(tmp_path / "bomb.nc.gz", b"\x00" * (3 * 1024 * 1024))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match=r"bomb\.nc\.gz"):
        extract_gzip(archive, str(out), max_bytes=1024 * 1024)
    assert os.listdir(out) == []


def test_extract_gzip_limits_object(tmp_path):
    archive = _make_gzip(tmp_path / "bomb.gz", b"\x00" * (2 * 1024 * 1024))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match="limits.archive_max_member_bytes"):
        extract_gzip(archive, str(out), limits=ArchiveLimits(max_member_bytes=1024))
    assert os.listdir(out) == []


def test_extract_gzip_corrupt(tmp_path):
    bad = _write(tmp_path / "bad.gz", b"definitely not gzip")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match=r"bad\.gz"):
        extract_gzip(bad, str(out))
    assert os.listdir(out) == []


# ---------------------------------------------------------------------------------------------------------------------
# zip extraction
# ---------------------------------------------------------------------------------------------------------------------

def test_extract_zip_good_archive(tmp_path, imos_dir):
    archive = imos_dir / "good_and_bad.zip"
    with zipfile.ZipFile(archive) as zf:
        names = sorted(i.filename for i in zf.infolist() if not i.is_dir())
    out = tmp_path / "out"
    out.mkdir()
    extracted = extract_zip(str(archive), str(out))
    assert sorted(os.path.relpath(p, out) for p in extracted) == names
    assert sorted(os.path.relpath(p, out) for p in list_regular_files(str(out), recursive=True)) == names
    assert any(is_netcdf_file(p) for p in extracted)


def test_extract_zip_nested_dirs_and_dot_dot_inside(tmp_path):
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dir/", b"")
        zf.writestr("dir/sub/file.txt", b"one")
        zf.writestr("dir/../top.txt", b"two")
    out = tmp_path / "out"
    out.mkdir()
    extract_zip(str(archive), str(out))
    assert (out / "dir" / "sub" / "file.txt").read_bytes() == b"one"
    assert (out / "top.txt").read_bytes() == b"two"


def _hostile_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> str:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return str(path)


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "members, offending, reason",
    [
        ([("good.txt", b"ok"), ("../evil.txt", b"x")], "../evil.txt", "escapes"),
        ([("good.txt", b"ok"), ("a/../../evil.txt", b"x")], "a/../../evil.txt", "escapes"),
        ([("good.txt", b"ok"), ("/etc/evil", b"x")], "/etc/evil", "absolute"),
        ([("good.txt", b"ok"), ("C:/evil", b"x")], "C:/evil", "absolute"),
        ([("good.txt", b"ok"), (_symlink_info("link"), b"/etc/passwd")], "link", "symbolic link"),
        ([("dup.txt", b"1"), ("dup.txt", b"2")], "dup.txt", "more than once"),
    ],
)
def test_extract_zip_rejects_hostile_members(tmp_path, members, offending, reason):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        archive = _hostile_zip(tmp_path / "hostile.zip", members)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError) as excinfo:
        extract_zip(archive, str(out))
    message = str(excinfo.value)
    assert "hostile.zip" in message
    assert f"'{offending}'" in message
    assert reason in message
    assert os.listdir(out) == []  # validation happens before anything is written
    assert not (tmp_path / "evil.txt").exists()


def test_extract_zip_bomb_declared_size(tmp_path):
    archive = _hostile_zip(tmp_path / "bomb.zip", [("zeros.bin", b"\x00" * (4 * 1024 * 1024))])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match=r"bomb\.zip.*limit"):
        extract_zip(archive, str(out), max_bytes=1024 * 1024)
    assert os.listdir(out) == []


def test_extract_zip_bomb_ratio(tmp_path):
    archive = _hostile_zip(tmp_path / "ratio.zip", [("zeros.bin", b"\x00" * (4 * 1024 * 1024))])
    out = tmp_path / "out"
    out.mkdir()
    limits = ArchiveLimits(ratio_threshold_bytes=1024 * 1024)
    with pytest.raises(InvalidFileFormatError, match=r"'zeros\.bin' has a compression ratio"):
        extract_zip(archive, str(out), max_ratio=50, limits=limits)
    assert os.listdir(out) == []
    extract_zip(archive, str(out), max_ratio=100_000, limits=limits)
    assert (out / "zeros.bin").stat().st_size == 4 * 1024 * 1024


def test_extract_zip_too_many_members(tmp_path):
    archive = _hostile_zip(tmp_path / "many.zip", [(f"f{i}", b"x") for i in range(5)])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match="5 members exceed the limit of 4"):
        extract_zip(archive, str(out), limits=ArchiveLimits(max_members=4))
    assert os.listdir(out) == []


def _lying_zip(path: Path, real_size: int, declared_size: int) -> str:
    """A zip whose headers under-state the uncompressed size of its (zero-filled) member."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("small.txt", b"tiny")
        zf.writestr("liar.bin", b"\x00" * real_size)
    data = bytearray(buffer.getvalue())
    real = real_size.to_bytes(4, "little")
    fake = declared_size.to_bytes(4, "little")
    # patch the uncompressed-size field in both the local header and the central directory record
    count = 0
    start = 0
    while True:
        index = data.find(b"liar.bin", start)
        if index < 0:
            break
        for header_sig, size_offset, name_offset in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
            header = index - name_offset
            if header >= 0 and data[header:header + 4] == header_sig:
                assert data[header + size_offset:header + size_offset + 4] == real
                data[header + size_offset:header + size_offset + 4] = fake
                count += 1
        start = index + 1
    assert count == 2
    path.write_bytes(bytes(data))
    return str(path)


def test_extract_zip_lying_header_refused_and_partial_output_removed(tmp_path):
    # the header claims 100 bytes; the data inflates to 3 MiB: extraction must fail without leaving the
    # already-extracted first member (or a truncated second one) behind
    archive = _lying_zip(tmp_path / "liar.zip", real_size=3 * 1024 * 1024, declared_size=100)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match=r"liar\.zip"):
        extract_zip(archive, str(out), max_bytes=1024 * 1024)
    assert os.listdir(out) == []


def test_extract_zip_not_a_zip(tmp_path, imos_dir):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidFileFormatError, match=NETCDF_NAME):
        extract_zip(str(imos_dir / NETCDF_NAME), str(out))


def test_a_copy_left_half_written_by_a_killed_process_is_taken_over_by_the_next_copy(tmp_path):
    """A SIGKILLed copy leaves its temporary sibling; the next copy to the same destination writes through that
    same name and renames it into place, so nothing partial stays beside the published file."""
    import subprocess
    import sys

    source, destination = tmp_path / "data.nc", tmp_path / "store" / "data.nc"
    source.write_bytes(b"x" * 100_000)
    os.chmod(source, 0o444)
    destination.parent.mkdir()
    writer = ("import os, sys, fcntl\nfrom aodncore.util import fileops\n"
              "path, fd = fileops._locked_temp_sibling(sys.argv[1])\n"
              "open(path, 'wb').write(b'partial')\nos.chmod(path, 0o444)\nprint('ready', flush=True)\n"
              "sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", writer, str(destination)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    child.kill()
    child.wait()
    assert [p.name for p in destination.parent.iterdir()] == [os.path.basename(fileops.temp_sibling_name(
        str(destination)))]

    safe_copy_file(str(source), str(destination))
    assert [p.name for p in destination.parent.iterdir()] == ["data.nc"]
    assert destination.read_bytes() == source.read_bytes()
    assert stat.S_IMODE(destination.stat().st_mode) == 0o444


def test_copies_to_one_destination_take_turns(tmp_path):
    """While one writer holds the temporary sibling, another waits; each rename publishes a whole file."""
    import threading

    destination = tmp_path / "out.nc"
    sources = []
    for index in range(6):
        source = tmp_path / f"in{index}.nc"
        source.write_bytes(bytes([65 + index]) * 300_000)
        sources.append(source)
    errors = []

    def copy(source):
        try:
            for _ in range(5):
                safe_copy_file(str(source), str(destination), overwrite=True)
                data = destination.read_bytes()
                assert len(data) == 300_000 and len(set(data)) == 1
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=copy, args=(source,)) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([s.name for s in sources] + ["out.nc"])


def test_a_left_over_sibling_this_process_may_not_open_does_not_stop_the_copy(tmp_path):
    """A folder or a symlink where the temporary sibling goes: the copy uses a name of its own, follows nothing."""
    source, destination = tmp_path / "a.nc", tmp_path / "b.nc"
    source.write_bytes(b"data")
    blocker = Path(fileops.temp_sibling_name(str(destination)))
    blocker.mkdir()  # cannot be opened as a file, by anyone
    safe_copy_file(str(source), str(destination))
    assert destination.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.nc", "b.nc", blocker.name])

    blocker.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"untouched")
    blocker.symlink_to(elsewhere)
    safe_copy_file(str(source), str(destination), overwrite=True)
    assert elsewhere.read_bytes() == b"untouched" and destination.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.nc", "b.nc", blocker.name, "elsewhere"])
