"""aodncore.pipeline.storage: URL dispatch, the base broker contract and the local-directory broker."""

from __future__ import annotations

import os
import stat
from datetime import datetime
from unittest import mock

import pytest

from aodncore.pipeline import storage
from aodncore.pipeline.common import PipelineFilePublishType
from aodncore.pipeline.exceptions import AttributeNotSetError, InvalidStoreUrlError, StorageBrokerError
from aodncore.pipeline.files import (
    PipelineFile,
    PipelineFileCollection,
    RemotePipelineFile,
    RemotePipelineFileCollection,
)
from aodncore.pipeline.storage import (
    DISALLOWED_DELETE_REGEXES,
    BaseStorageBroker,
    LocalFileStorageBroker,
    S3StorageBroker,
    SftpStorageBroker,
    get_storage_broker,
    validate_storage_broker,
)


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def broker(store):
    return LocalFileStorageBroker(str(store))


@pytest.fixture
def make_file(tmp_path):
    src_dir = tmp_path / "src"
    src_dir.mkdir()

    def _make(name, dest_path, content=None, publish_type=PipelineFilePublishType.UPLOAD_ONLY):
        path = src_dir / name
        path.write_bytes(content if content is not None else f"content of {name}".encode())
        return PipelineFile(str(path), dest_path=dest_path, publish_type=publish_type)

    return _make


def _fill(store, rel_paths):
    for rel in rel_paths:
        path = store / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def _deletion(dest_path, name=None):
    return PipelineFile(name or os.path.basename(dest_path), dest_path=dest_path, is_deletion=True,
                        publish_type=PipelineFilePublishType.DELETE_ONLY)


# ---- get_storage_broker --------------------------------------------------------------------------------------

def test_file_url_gives_local_broker(tmp_path):
    broker = get_storage_broker(f"file://{tmp_path}/store")
    assert isinstance(broker, LocalFileStorageBroker)
    assert broker.prefix == f"{tmp_path}/store"
    assert repr(broker) == f"LocalFileStorageBroker(prefix='{tmp_path}/store')"


@pytest.mark.parametrize("url", ["file://relative/path", "file://host/abs/path"])
def test_file_url_with_netloc_is_rejected(url):
    with pytest.raises(InvalidStoreUrlError) as excinfo:
        get_storage_broker(url)
    assert str(excinfo.value) == f"invalid URL '{url}'. Must be an absolute path"


@pytest.mark.parametrize(("url", "prefix"), [
    ("s3://my-bucket/some/prefix", "some/prefix"),
    ("s3://my-bucket/", ""),
    ("s3://my-bucket", ""),
])
def test_s3_url_gives_s3_broker(moto_endpoint, url, prefix):
    broker = get_storage_broker(url)
    assert isinstance(broker, S3StorageBroker)
    assert broker.bucket == "my-bucket"
    assert broker.prefix == prefix
    assert repr(broker) == f"S3StorageBroker(bucket='my-bucket', prefix='{prefix}')"


def test_s3_broker_construction_uses_module_boto3():
    with mock.patch.object(storage, "boto3") as fake_boto3:
        broker = S3StorageBroker("bucket", "/a/b")
    fake_boto3.client.assert_called_once_with("s3")
    assert broker.s3_client is fake_boto3.client.return_value
    assert broker.prefix == "a/b"


def test_sftp_url_gives_sftp_broker(monkeypatch):
    for name in ("AODNCORE_SFTP_PORT", "AODNCORE_SFTP_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    broker = get_storage_broker("sftp://sftp.example.org/data/store")
    assert isinstance(broker, SftpStorageBroker)
    assert (broker.server, broker.prefix, broker.port) == ("sftp.example.org", "/data/store", 22)
    assert broker.sftp_client is None  # no connection until needed

    broker = get_storage_broker("sftp://alice@sftp.example.org:2222/data")
    assert (broker.server, broker.prefix, broker.port, broker.username) == ("sftp.example.org", "/data", 2222,
                                                                            "alice")


@pytest.mark.parametrize(("url", "scheme"), [("http://x/y", "http"), ("/abs/path", ""), ("ftp://h/p", "ftp")])
def test_unknown_scheme_is_rejected(url, scheme):
    with pytest.raises(InvalidStoreUrlError) as excinfo:
        get_storage_broker(url)
    assert str(excinfo.value) == f"invalid URL scheme '{scheme}'"


def test_validate_storage_broker(broker):
    validate_storage_broker(broker)
    with pytest.raises(TypeError):
        validate_storage_broker("file:///tmp")


def test_disallowed_delete_regexes():
    assert sorted(DISALLOWED_DELETE_REGEXES) == ["", ".*", ".+"]


def test_base_broker_is_abstract():
    with pytest.raises(TypeError):
        BaseStorageBroker()


# ---- upload --------------------------------------------------------------------------------------------------

def test_upload_copies_files_and_marks_them(broker, store, make_file):
    files = PipelineFileCollection([make_file("a.nc", "IMOS/A/a.nc"), make_file("b.txt", "IMOS/B/deep/b.txt")])
    broker.upload(files)
    assert (store / "IMOS/A/a.nc").read_bytes() == b"content of a.nc"
    assert (store / "IMOS/B/deep/b.txt").read_bytes() == b"content of b.txt"
    assert all(f.is_stored for f in files)


def test_upload_single_file_and_custom_attributes(broker, store, make_file):
    pf = make_file("a.nc", "ignored/a.nc", publish_type=PipelineFilePublishType.ARCHIVE_ONLY)
    pf.archive_path = "archive/a.nc"
    broker.upload(pf, is_stored_attr="is_archived", dest_path_attr="archive_path")
    assert (store / "archive/a.nc").exists()
    assert not (store / "ignored").exists()
    assert pf.is_archived and not pf.is_stored


def test_upload_call_forms(broker, store, make_file):
    """The documented patch targets are the functions actually called, with these argument forms."""
    pf = make_file("a.nc", "X/a.nc")
    abs_path = os.path.join(str(store), "X/a.nc")
    with mock.patch.object(storage, "mkdir_p", wraps=storage.mkdir_p) as mkdir_p, \
            mock.patch.object(storage, "safe_copy_file", wraps=storage.safe_copy_file) as safe_copy_file:
        broker.upload(pf)
    mkdir_p.assert_called_once_with(os.path.dirname(abs_path))
    safe_copy_file.assert_called_once_with(pf.src_path, abs_path, overwrite=True)
    with mock.patch.object(storage, "rm_f", wraps=storage.rm_f) as rm_f:
        broker.delete(_deletion("X/a.nc"))
    rm_f.assert_called_once_with(abs_path)
    assert not os.path.exists(abs_path)


def test_upload_replaces_existing_object(broker, store, make_file):
    _fill(store, ["X/a.nc"])
    broker.upload(make_file("a.nc", "X/a.nc", content=b"new"))
    assert (store / "X/a.nc").read_bytes() == b"new"


def test_upload_applies_mode(broker, store, make_file):
    broker.mode = 0o640
    broker.upload(make_file("a.nc", "X/a.nc"))
    assert stat.S_IMODE(os.stat(store / "X/a.nc").st_mode) == 0o640


def test_upload_failure_stops_and_reports(broker, store, make_file):
    good = make_file("good.nc", "X/good.nc")
    bad = make_file("bad.nc", "X/bad.nc")
    after = make_file("after.nc", "X/after.nc")
    files = PipelineFileCollection([good, bad, after])
    os.remove(bad.src_path)
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.upload(files)
    message = str(excinfo.value)
    assert message.startswith(f"error uploading '{os.path.join(str(store), 'X/bad.nc')}': ")
    assert good.is_stored and not bad.is_stored and not after.is_stored
    assert not (store / "X/after.nc").exists()


def test_upload_without_dest_path(broker, tmp_path):
    path = tmp_path / "a.nc"
    path.write_text("x")
    pf = PipelineFile(str(path), publish_type=PipelineFilePublishType.UPLOAD_ONLY)
    with pytest.raises(AttributeNotSetError) as excinfo:
        broker.upload(pf)
    assert str(excinfo.value).startswith("attribute 'dest_path' not set in ")


# ---- overwrite detection -------------------------------------------------------------------------------------

def test_set_is_overwrite(broker, store, make_file):
    _fill(store, ["X/exists.nc", "X/a.nc.bak"])
    exists = make_file("exists.nc", "X/exists.nc")
    new = make_file("a.nc", "X/a.nc")
    untyped = PipelineFile(make_file("u.nc", "X/u.nc").src_path)  # no publish type: skipped
    harvest_only = make_file("h.nc", "X/exists.nc", publish_type=PipelineFilePublishType.HARVEST_ONLY)
    deletion = _deletion("X/exists.nc")
    broker.set_is_overwrite(PipelineFileCollection([exists, new, untyped]))
    broker.set_is_overwrite(harvest_only)
    broker.set_is_overwrite(deletion)
    assert exists.is_overwrite is True
    assert new.is_overwrite is False
    assert untyped.is_overwrite is None
    assert harvest_only.is_overwrite is None
    assert deletion.is_overwrite is None


# ---- delete --------------------------------------------------------------------------------------------------

def test_delete_removes_files_and_tolerates_missing(broker, store):
    _fill(store, ["X/a.nc", "X/b.nc"])
    a, missing = _deletion("X/a.nc"), _deletion("X/missing.nc")
    broker.delete(PipelineFileCollection([a, missing]))
    assert not (store / "X/a.nc").exists()
    assert (store / "X/b.nc").exists()
    assert a.is_stored and a.is_deleted and missing.is_stored


def test_delete_error_is_wrapped(broker, store):
    _fill(store, ["X/dir/inner.nc"])
    target = _deletion("X/dir")  # a directory cannot be removed with rm_f
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.delete(target)
    assert str(excinfo.value).startswith(f"error deleting '{os.path.join(str(store), 'X/dir')}': ")
    assert not target.is_stored


# ---- query ---------------------------------------------------------------------------------------------------

QUERY_TREE = ["IMOS/b.nc", "IMOS/B.nc", "IMOS/a.nc", "IMOS/Z.txt", "IMOS/sub/abc1.nc", "IMOS/sub/abc2.nc",
              "IMOS/sub/xyz.nc", "OTHER/o.nc", "top.nc"]


def test_query_everything_is_prefix_relative(broker, store):
    _fill(store, QUERY_TREE)
    result = broker.query()
    assert isinstance(result, RemotePipelineFileCollection)
    assert sorted(result.keys()) == sorted(QUERY_TREE)
    one = result.get_pipelinefile_from_dest_path("IMOS/sub/abc1.nc")
    assert one.name == "abc1.nc"
    assert one.size == len("IMOS/sub/abc1.nc")
    assert isinstance(one.last_modified, datetime)
    assert abs(one.last_modified.timestamp() - os.path.getmtime(store / "IMOS/sub/abc1.nc")) < 1


def test_query_orders_files_by_code_point_within_directory(broker, store):
    _fill(store, QUERY_TREE)
    keys = broker.query("IMOS/").keys()
    top_level = [k for k in keys if k.count("/") == 1]
    assert top_level == ["IMOS/B.nc", "IMOS/Z.txt", "IMOS/a.nc", "IMOS/b.nc"]
    sub = [k for k in keys if k.startswith("IMOS/sub/")]
    assert sub == ["IMOS/sub/abc1.nc", "IMOS/sub/abc2.nc", "IMOS/sub/xyz.nc"]


def test_query_partial_names(broker, store):
    _fill(store, QUERY_TREE)
    assert broker.query("IMOS/sub/abc").keys() == ["IMOS/sub/abc1.nc", "IMOS/sub/abc2.nc"]
    assert broker.query("IMOS/sub/abc2.nc").keys() == ["IMOS/sub/abc2.nc"]
    assert sorted(broker.query("OTH").keys()) == ["OTHER/o.nc"]


def test_query_no_match_is_empty(broker, store):
    _fill(store, QUERY_TREE)
    assert len(broker.query("NOPE/")) == 0
    assert len(broker.query("IMOS/sub/zzz")) == 0


def test_query_skips_symlinks_and_directories(broker, store, tmp_path):
    _fill(store, ["D/real.nc"])
    outside = tmp_path / "outside.nc"
    outside.write_text("x")
    os.symlink(outside, store / "D/link.nc")
    (store / "D/emptydir").mkdir()
    assert broker.query("D/").keys() == ["D/real.nc"]


def test_query_rejects_absolute_paths(broker):
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.query("/etc/")
    assert str(excinfo.value).startswith("error querying storage: ValueError: ")


# ---- download ------------------------------------------------------------------------------------------------

def test_download_query_results(broker, store, tmp_path):
    _fill(store, ["IMOS/x/a.nc", "IMOS/y/b.nc"])
    local = tmp_path / "downloads"
    remote = broker.query("IMOS/")
    broker.download(remote, str(local))
    for rf in remote:
        assert rf.local_path == os.path.join(str(local), rf.dest_path)
        with open(rf.local_path) as f:
            assert f.read() == rf.dest_path


def test_download_single_remote_file(broker, store, tmp_path):
    _fill(store, ["IMOS/x/a.nc"])
    rf = RemotePipelineFile("IMOS/x/a.nc")
    broker.download(rf, str(tmp_path / "dl"))
    assert (tmp_path / "dl/IMOS/x/a.nc").read_text() == "IMOS/x/a.nc"


def test_download_missing_file(broker, tmp_path):
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.download(RemotePipelineFile("IMOS/none.nc"), str(tmp_path / "dl"))
    assert str(excinfo.value).startswith(f"error downloading 'IMOS/none.nc' to '{tmp_path / 'dl'}': ")


def test_download_refuses_paths_escaping_the_target(broker, store, tmp_path):
    _fill(store, ["a.nc"])
    (tmp_path / "dl").mkdir()
    with pytest.raises(StorageBrokerError):
        broker.download(RemotePipelineFile("../a.nc"), str(tmp_path / "dl"))
    assert not (tmp_path / "a.nc").exists()


def test_download_iterator_removes_each_local_copy(broker, store, tmp_path):
    _fill(store, ["I/a.nc", "I/b.nc"])
    local = tmp_path / "dl"
    seen = []
    for rf in broker.download_iterator(broker.query("I/"), str(local)):
        assert os.path.isfile(rf.local_path)
        seen.append(rf.local_path)
    assert len(seen) == 2
    assert not any(os.path.exists(p) for p in seen)


# ---- delete_regexes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("regex", sorted(DISALLOWED_DELETE_REGEXES))
def test_delete_regexes_refuses_match_all(broker, store, regex):
    _fill(store, ["A/a.nc"])
    with pytest.raises(ValueError):
        broker.delete_regexes([regex])
    with pytest.raises(ValueError):
        broker.delete_regexes(["A/.*", regex])
    assert (store / "A/a.nc").exists()


def test_delete_regexes_allow_match_all(broker, store):
    _fill(store, ["A/a.nc", "B/b.nc"])
    deleted = broker.delete_regexes([".*"], allow_match_all=True)
    assert sorted(deleted.get_attribute_list("dest_path")) == ["A/a.nc", "B/b.nc"]
    assert broker.query().keys() == []


def test_delete_regexes_empty_list(broker, store):
    _fill(store, ["A/a.nc"])
    result = broker.delete_regexes([])
    assert isinstance(result, PipelineFileCollection)
    assert len(result) == 0
    assert (store / "A/a.nc").exists()


def test_delete_regexes_matches_relative_paths(broker, store):
    _fill(store, ["A/a1.nc", "A/a2.txt", "B/b1.nc", "CA/c.nc"])
    deleted = broker.delete_regexes([r"A/.*\.nc$"])
    assert deleted.get_attribute_list("dest_path") == ["A/a1.nc"]
    assert all(f.is_deletion and f.is_stored for f in deleted)
    assert sorted(broker.query().keys()) == ["A/a2.txt", "B/b1.nc", "CA/c.nc"]


def test_query_results_round_trip_into_delete(broker, store):
    _fill(store, ["A/a1.nc", "A/a2.nc", "B/b.nc"])
    deletions = PipelineFileCollection.from_remotepipelinefilecollection(broker.query("A/"), are_deletions=True)
    broker.delete(deletions)
    assert broker.query().keys() == ["B/b.nc"]
