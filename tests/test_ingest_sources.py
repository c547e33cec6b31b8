"""Landing areas: local folders and a real S3 endpoint (moto server)."""

import hashlib
import os
from pathlib import Path

import pytest

from aodncore.ingest import (
    LandingObject,
    LandingObjectChangedError,
    fetch,
    file_fingerprint,
    list_landing,
    remove_landing,
)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def landing(tmp_path):
    root = tmp_path / "landing"
    _write(root / "b.nc", b"bbb")
    _write(root / "A.nc", b"AAA")
    _write(root / "sub dir" / "c #1+.nc", b"ccc")
    _write(root / "sub dir" / "deeper" / "d.nc", b"ddd")
    _write(root / ".hidden", b"x")
    _write(root / ".dotdir" / "e.nc", b"x")
    _write(root / "b.nc.aodncore.json", b"{}")
    (root / "link.nc").symlink_to(root / "b.nc")
    (root / "linkdir").symlink_to(root / "sub dir", target_is_directory=True)
    return root


def test_local_folder_listing_is_recursive_filtered_and_sorted(landing):
    objects = list(list_landing(str(landing)))
    rel = [Path(o.path).relative_to(landing).as_posix() for o in objects]
    assert rel == ["A.nc", "b.nc", "sub dir/c #1+.nc", "sub dir/deeper/d.nc"]
    first = objects[0]
    assert first.name == "A.nc"
    assert first.size == 3
    assert first.fingerprint == "sha256:" + hashlib.sha256(b"AAA").hexdigest()
    assert first.uri == (landing / "A.nc").as_uri()
    assert first.bucket is None and first.key is None and not first.is_s3
    assert first.last_modified is not None


def test_local_single_file_and_file_uri(landing):
    (obj,) = list_landing(str(landing / "sub dir" / "c #1+.nc"))
    assert obj.name == "c #1+.nc"
    (again,) = list_landing(obj.uri)
    assert again == obj


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list(list_landing(str(tmp_path / "nowhere")))


def test_fetch_local_copies_atomically_and_remove_deletes(landing, tmp_path):
    obj = LandingObject.from_path(landing / "b.nc")
    work = tmp_path / "work"
    copy = fetch(obj, work)
    assert copy == work / "b.nc" and copy.read_bytes() == b"bbb"
    assert [p.name for p in work.iterdir()] == ["b.nc"]  # no partial file left behind
    assert (landing / "b.nc").exists()
    assert remove_landing(obj) is True
    assert not (landing / "b.nc").exists()
    assert remove_landing(obj) is False  # already gone


def test_changed_local_file_is_neither_fetched_nor_removed(landing, tmp_path):
    obj = LandingObject.from_path(landing / "A.nc")
    (landing / "A.nc").write_bytes(b"a newer upload")
    with pytest.raises(LandingObjectChangedError, match="changed"):
        fetch(obj, tmp_path / "work")
    assert list((tmp_path / "work").iterdir()) == []
    assert remove_landing(obj) is False
    assert (landing / "A.nc").read_bytes() == b"a newer upload"
    assert file_fingerprint(landing / "A.nc") != obj.fingerprint


# -- S3 ---------------------------------------------------------------------------------------------------------

def test_s3_listing_pages_past_1000_keys(s3):
    s3.create_bucket(Bucket="landing")
    for i in range(1005):
        s3.put_object(Bucket="landing", Key=f"IMOS/batch/file{i:04d}.nc", Body=b"x")
    s3.put_object(Bucket="landing", Key="IMOS/batch/", Body=b"")  # "folder" marker
    s3.put_object(Bucket="landing", Key="IMOS/batch/file0000.nc.aodncore.json", Body=b"{}")
    s3.put_object(Bucket="landing", Key="other/file.nc", Body=b"x")

    objects = list(list_landing("s3://landing/IMOS/"))
    assert len(objects) == 1005
    assert objects[0].uri == "s3://landing/IMOS/batch/file0000.nc"
    assert objects[-1].key == "IMOS/batch/file1004.nc"
    assert objects[0].fingerprint == hashlib.md5(b"x").hexdigest()
    # an explicit client gives the same answer through boto3's paginator
    assert [o.key for o in list_landing("s3://landing/IMOS/", s3_client=s3)] == [o.key for o in objects]


def test_s3_fetch_and_remove(s3, tmp_path):
    s3.create_bucket(Bucket="landing")
    key = "IMOS/ANMN/NRS daily+temp (v1)/file #1.nc"
    s3.put_object(Bucket="landing", Key=key, Body=b"netcdf bytes")
    (obj,) = list_landing("s3://landing/IMOS/ANMN/")
    assert obj.name == "file #1.nc" and obj.key == key and obj.size == 12
    assert obj.uri == f"s3://landing/{key}"

    path = fetch(obj, tmp_path)
    assert path.read_bytes() == b"netcdf bytes"
    assert remove_landing(obj) is True
    assert s3.list_objects_v2(Bucket="landing").get("KeyCount") == 0


def test_s3_replaced_object_is_not_fetched_or_removed(s3, tmp_path):
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key="x.nc", Body=b"first")
    (obj,) = list_landing("s3://landing/x.nc")
    s3.put_object(Bucket="landing", Key="x.nc", Body=b"second upload")
    with pytest.raises(LandingObjectChangedError):
        fetch(obj, tmp_path)
    assert os.listdir(tmp_path) == []
    assert remove_landing(obj) is False
    assert s3.get_object(Bucket="landing", Key="x.nc")["Body"].read() == b"second upload"


def test_s3_source_without_bucket_is_refused():
    with pytest.raises(ValueError, match="no bucket"):
        list(list_landing("s3:///prefix"))
