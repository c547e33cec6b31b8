"""S3StorageBroker against a real HTTP S3 endpoint (moto server reached through AWS_ENDPOINT_URL)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from aodncore.pipeline.common import PipelineFilePublishType
from aodncore.pipeline.exceptions import InvalidStoreUrlError, StorageBrokerError
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection, RemotePipelineFile
from aodncore.pipeline.storage import S3StorageBroker, get_storage_broker
from aodncore.util.s3_util import compute_etag

BUCKET = "store-bucket"
PREFIX = "some/prefix"
MIB = 1024 * 1024


@pytest.fixture
def bucket(s3):
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def broker(bucket):
    return get_storage_broker(f"s3://{BUCKET}/{PREFIX}")


@pytest.fixture
def root_broker(bucket):
    return get_storage_broker(f"s3://{BUCKET}")


@pytest.fixture
def make_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()

    def _make(name, dest_path, content=None):
        path = src / name
        path.write_bytes(content if content is not None else f"content of {name}".encode())
        return PipelineFile(str(path), dest_path=dest_path, publish_type=PipelineFilePublishType.UPLOAD_ONLY)

    return _make


def _put(s3, keys):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode()), keys))


def _keys(s3, prefix=""):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def _deletion(dest_path):
    return PipelineFile(os.path.basename(dest_path), dest_path=dest_path, is_deletion=True,
                        publish_type=PipelineFilePublishType.DELETE_ONLY)


def test_client_uses_endpoint_and_prefix(broker, moto_endpoint):
    assert broker.s3_client.meta.endpoint_url == moto_endpoint
    assert broker.prefix == PREFIX
    assert S3StorageBroker.retry_kwargs["tries"] == 3


def test_upload_keys_and_content_type(broker, s3, make_file):
    csv = make_file("table.csv", "IMOS/X/table.csv")
    nc = make_file("data.nc", "IMOS/X/sub/data.nc")
    broker.upload(PipelineFileCollection([csv, nc]))
    assert sorted(_keys(s3)) == [f"{PREFIX}/IMOS/X/sub/data.nc", f"{PREFIX}/IMOS/X/table.csv"]
    head = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/IMOS/X/table.csv")
    assert head["ContentType"] == csv.mime_type == "text/csv"
    assert s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/IMOS/X/sub/data.nc")["ContentType"] == nc.mime_type
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/IMOS/X/table.csv")["Body"].read()
    assert body == b"content of table.csv"
    assert csv.is_stored and nc.is_stored


def test_upload_without_prefix(root_broker, s3, make_file):
    root_broker.upload(make_file("a.nc", "IMOS/a.nc"))
    assert _keys(s3) == ["IMOS/a.nc"]


def test_upload_missing_source_is_reported(broker, make_file):
    pf = make_file("a.nc", "IMOS/a.nc")
    files = PipelineFileCollection([pf])  # collections hash (checksum) their members: build it first
    os.remove(pf.src_path)
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.upload(files)
    assert str(excinfo.value).startswith(f"error uploading '{PREFIX}/IMOS/a.nc': ")
    assert not pf.is_stored


def test_etags_of_uploads(broker, s3, make_file):
    small = make_file("small.nc", "small.nc", content=os.urandom(1000))
    big = make_file("big.nc", "big.nc", content=os.urandom(9 * MIB))
    broker.upload(PipelineFileCollection([small, big]))
    small_etag = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/small.nc")["ETag"].strip('"')
    big_etag = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/big.nc")["ETag"].strip('"')
    with open(small.src_path, "rb") as f:
        assert small_etag == hashlib.md5(f.read()).hexdigest() == compute_etag(small.src_path)
    assert big_etag.endswith("-2")
    assert big_etag == compute_etag(big.src_path)


def test_overwrite_detection_needs_exact_key(broker, s3, make_file):
    _put(s3, [f"{PREFIX}/IMOS/a.nc.bak", f"{PREFIX}/IMOS/b.nc"])
    a, b = make_file("a.nc", "IMOS/a.nc"), make_file("b.nc", "IMOS/b.nc")
    broker.set_is_overwrite(PipelineFileCollection([a, b]))
    assert a.is_overwrite is False
    assert b.is_overwrite is True


def test_delete(broker, s3):
    _put(s3, [f"{PREFIX}/D/a.nc", f"{PREFIX}/D/b.nc"])
    deletion = _deletion("D/a.nc")
    broker.delete(deletion)
    assert deletion.is_stored
    assert _keys(s3) == [f"{PREFIX}/D/b.nc"]


def test_query_is_prefix_relative_and_round_trips(broker, s3, tmp_path):
    _put(s3, [f"{PREFIX}/IMOS/x/a.nc", f"{PREFIX}/IMOS/y/b.nc", f"{PREFIX}/OTHER/c.nc", "elsewhere/IMOS/d.nc",
              "some/prefixed/e.nc"])
    everything = broker.query()
    assert everything.keys() == ["IMOS/x/a.nc", "IMOS/y/b.nc", "OTHER/c.nc"]
    imos = broker.query("IMOS/")
    assert imos.keys() == ["IMOS/x/a.nc", "IMOS/y/b.nc"]
    rf = imos.get_pipelinefile_from_dest_path("IMOS/x/a.nc")
    assert rf.name == "a.nc"
    assert rf.size == len(f"{PREFIX}/IMOS/x/a.nc")
    assert isinstance(rf.last_modified, datetime)

    broker.download(imos, str(tmp_path / "dl"))
    for item in imos:
        with open(item.local_path, "rb") as f:
            assert f.read() == f"{PREFIX}/{item.dest_path}".encode()

    broker.delete(PipelineFileCollection.from_remotepipelinefilecollection(imos, are_deletions=True))
    assert sorted(_keys(s3)) == ["elsewhere/IMOS/d.nc", f"{PREFIX}/OTHER/c.nc", "some/prefixed/e.nc"]


def test_query_partial_name_and_no_match(broker, s3):
    _put(s3, [f"{PREFIX}/d/abc1.nc", f"{PREFIX}/d/abc2.nc", f"{PREFIX}/d/xyz.nc"])
    assert broker.query("d/abc").keys() == ["d/abc1.nc", "d/abc2.nc"]
    assert len(broker.query("nothing/")) == 0


def test_query_without_prefix_gives_full_keys(root_broker, s3):
    _put(s3, ["IMOS/a.nc", "X/b.nc"])
    assert root_broker.query().keys() == ["IMOS/a.nc", "X/b.nc"]
    assert root_broker.query("IMOS/").keys() == ["IMOS/a.nc"]


def test_query_pages_past_1000_keys(broker, s3):
    keys = [f"{PREFIX}/many/{i:05d}.nc" for i in range(1005)]
    _put(s3, keys)
    result = broker.query("many/")
    assert len(result) == 1005
    assert result.keys() == [k[len(PREFIX) + 1:] for k in keys]


def test_delete_regexes_use_relative_paths(broker, s3):
    _put(s3, [f"{PREFIX}/A/a1.nc", f"{PREFIX}/A/a2.txt", f"{PREFIX}/B/b.nc"])
    deleted = broker.delete_regexes([r"A/.*\.nc"])
    assert deleted.get_attribute_list("dest_path") == ["A/a1.nc"]
    assert sorted(_keys(s3)) == [f"{PREFIX}/A/a2.txt", f"{PREFIX}/B/b.nc"]
    with pytest.raises(ValueError):
        broker.delete_regexes([".*"])


def test_download_single_and_missing(broker, s3, tmp_path):
    _put(s3, [f"{PREFIX}/IMOS/a.nc"])
    rf = RemotePipelineFile("IMOS/a.nc")
    broker.download(rf, str(tmp_path / "dl"))
    assert rf.local_path == str(tmp_path / "dl" / "IMOS/a.nc")
    missing = RemotePipelineFile("IMOS/missing.nc")
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.download(missing, str(tmp_path / "dl"))
    assert str(excinfo.value).startswith(f"error downloading 'IMOS/missing.nc' to '{tmp_path / 'dl'}': ")
    assert not (tmp_path / "dl" / "IMOS/missing.nc").exists()  # no partial file left behind


def test_missing_bucket_is_invalid_store_url_and_not_retried(s3, make_file, monkeypatch):
    broker = get_storage_broker("s3://no-such-bucket/x")
    calls = []
    original = broker.s3_client.head_bucket

    def counting(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(broker.s3_client, "head_bucket", counting)
    pf = make_file("a.nc", "a.nc")
    with pytest.raises(InvalidStoreUrlError) as excinfo:
        broker.upload(pf)
    assert str(excinfo.value).startswith("unable to access S3 bucket 'no-such-bucket': ClientError: ")
    assert calls == [{"Bucket": "no-such-bucket"}]
    assert not pf.is_stored


def test_query_error_is_wrapped(s3):
    broker = get_storage_broker("s3://no-such-bucket")
    with pytest.raises(StorageBrokerError) as excinfo:
        broker.query()
    assert str(excinfo.value).startswith("error querying storage: NoSuchBucket: ")


def test_connection_errors_are_retried(s3, make_file, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # only our own retries
    broker = get_storage_broker("s3://any-bucket")
    monkeypatch.setattr(broker, "retry_kwargs", dict(S3StorageBroker.retry_kwargs, delay=0, tries=2))
    calls = []
    original = broker.s3_client.head_bucket

    def counting(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(broker.s3_client, "head_bucket", counting)
    with pytest.raises(InvalidStoreUrlError) as excinfo:
        broker.upload(make_file("a.nc", "a.nc"))
    assert "EndpointConnectionError" in str(excinfo.value)
    assert len(calls) == 2


def test_credentials_never_in_messages(moto_endpoint, s3, make_file, monkeypatch, tmp_path):
    secrets = {"AWS_ACCESS_KEY_ID": "AKIDNEVERSHOWN", "AWS_SECRET_ACCESS_KEY": "secret-never-shown",
               "AWS_SESSION_TOKEN": "token-never-shown"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    s3.create_bucket(Bucket=BUCKET)
    messages = []
    for url, action in [
        ("s3://no-such-bucket/p", lambda b: b.upload(make_file("a.nc", "a.nc"))),
        ("s3://no-such-bucket/p", lambda b: b.query()),
        (f"s3://{BUCKET}/p", lambda b: b.download(RemotePipelineFile("none.nc"), str(tmp_path / "dl"))),
    ]:
        with pytest.raises((InvalidStoreUrlError, StorageBrokerError)) as excinfo:
            action(get_storage_broker(url))
        messages.append(str(excinfo.value))
    for message in messages:
        for secret in secrets.values():
            assert secret not in message
