"""aodncore.util.s3_util against a real HTTP S3 endpoint (moto server)."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import botocore.config
import botocore.exceptions
import pytest

from aodncore.util import s3_util

BUCKET = "test-bucket"
OTHER_BUCKET = "other-bucket"
MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _default_s3_config():
    """Every test starts and ends with the default (environment-driven) configuration."""
    s3_util.set_s3()
    yield
    s3_util.set_s3()


@pytest.fixture
def bucket(s3):
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# ---- URL helpers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    ("s3://bucket/some/key.nc", True),
    ("s3://bucket", True),
    ("file:///tmp/x", False),
    ("/tmp/x", False),
    ("sftp://host/x", False),
])
def test_is_s3(url, expected):
    assert s3_util.is_s3(url) is expected


def test_bucket_and_key_from_url():
    assert s3_util.get_s3_bucket("s3://imos-data/IMOS/ANMN/file.nc") == "imos-data"
    assert s3_util.get_s3_key("s3://imos-data/IMOS/ANMN/file.nc") == "IMOS/ANMN/file.nc"
    assert s3_util.get_s3_key("s3://imos-data/IMOS/ANMN/") == "IMOS/ANMN"
    assert s3_util.get_s3_key("s3://imos-data") == ""


# ---- ETags ---------------------------------------------------------------------------------------------------

def test_compute_etag_empty_file(tmp_path):
    path = _write(tmp_path / "empty", b"")
    assert s3_util.compute_etag(path) == hashlib.md5(b"").hexdigest()


def test_compute_etag_single_part_is_md5(tmp_path):
    data = os.urandom(1000)
    path = _write(tmp_path / "small", data)
    assert s3_util.compute_etag(path) == hashlib.md5(data).hexdigest()
    # exactly one full part is still single-part
    assert s3_util.compute_etag(path, part_size=1000) == hashlib.md5(data).hexdigest()


def test_compute_etag_multipart(tmp_path):
    data = os.urandom(2500)
    path = _write(tmp_path / "multi", data)
    parts = [data[0:1000], data[1000:2000], data[2000:]]
    expected = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    assert s3_util.compute_etag(path, part_size=1000) == expected


def test_compute_etag_rejects_bad_part_size(tmp_path):
    path = _write(tmp_path / "f", b"abc")
    with pytest.raises(ValueError):
        s3_util.compute_etag(path, part_size=0)


def test_etag_matches_s3_single_part(bucket, tmp_path):
    path = _write(tmp_path / "a.nc", os.urandom(4096))
    s3_util.upload_file(path, bucket, "dir/a.nc")
    etag = s3_util.get_etag(bucket, "dir/a.nc")
    assert "-" not in etag and not etag.startswith('"')
    assert etag == s3_util.compute_etag(path)
    assert s3_util.file_matches_etag(path, etag)
    other = _write(tmp_path / "b.nc", b"different")
    assert not s3_util.file_matches_etag(other, etag)


def test_etag_matches_s3_multipart(bucket, tmp_path):
    path = _write(tmp_path / "big.bin", os.urandom(9 * MIB))  # > 8 MiB threshold: two parts
    s3_util.upload_file(path, bucket, "big.bin")
    etag = s3_util.get_etag(bucket, "big.bin")
    assert etag.endswith("-2")
    assert s3_util.compute_etag(path) == etag
    assert s3_util.file_matches_etag(path, etag, bucket=bucket, key="big.bin")
    assert s3_util.compute_etag(path, part_size=5 * MIB) != etag


# ---- object operations -----------------------------------------------------------------------------------------

def test_upload_sets_content_type_and_head_object(bucket, tmp_path):
    path = _write(tmp_path / "x.nc", b"netcdf-ish")
    s3_util.upload_file(path, bucket, "x.nc", content_type="application/x-netcdf")
    head = s3_util.head_object(bucket, "x.nc")
    assert head["ContentType"] == "application/x-netcdf"
    assert head["ContentLength"] == len(b"netcdf-ish")


def test_download_object_creates_parents(bucket, s3, tmp_path):
    s3.put_object(Bucket=bucket, Key="a/b/c.txt", Body=b"payload")
    dest = tmp_path / "deep" / "er" / "c.txt"
    s3_util.download_object(bucket, "a/b/c.txt", dest)
    assert dest.read_bytes() == b"payload"


def test_download_missing_object_raises_client_error(bucket, tmp_path):
    with pytest.raises(botocore.exceptions.ClientError):
        s3_util.download_object(bucket, "missing.txt", tmp_path / "missing.txt")


def test_delete_object(bucket, s3):
    s3.put_object(Bucket=bucket, Key="gone.txt", Body=b"x")
    s3_util.delete_object(bucket, "gone.txt")
    assert s3_util.list_1000_objects(bucket, "gone") is None
    s3_util.delete_object(bucket, "never-existed.txt")  # not an error in S3


def test_copy_and_move_object(bucket, s3):
    s3.create_bucket(Bucket=OTHER_BUCKET)
    s3.put_object(Bucket=bucket, Key="in/file.nc", Body=b"data", ContentType="application/x-netcdf")
    s3_util.copy_object("in/file.nc", bucket, OTHER_BUCKET, "copied/file.nc")
    assert s3.get_object(Bucket=OTHER_BUCKET, Key="copied/file.nc")["Body"].read() == b"data"
    assert s3.head_object(Bucket=bucket, Key="in/file.nc")  # source kept by copy

    assert s3_util.move_object("in/file.nc", bucket, OTHER_BUCKET) is True
    assert s3.get_object(Bucket=OTHER_BUCKET, Key="in/file.nc")["Body"].read() == b"data"
    assert s3_util.list_1000_objects(bucket, "in/") is None


def test_move_object_missing_source_keeps_nothing_and_raises(bucket, s3):
    s3.create_bucket(Bucket=OTHER_BUCKET)
    with pytest.raises(botocore.exceptions.ClientError):
        s3_util.move_object("nope.nc", bucket, OTHER_BUCKET)
    assert s3_util.list_1000_objects(OTHER_BUCKET, "") is None


def test_listing_pages_past_1000_keys(bucket, s3):
    keys = [f"many/{i:05d}.txt" for i in range(1005)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))
    s3.put_object(Bucket=bucket, Key="other/zzz.txt", Body=b"x")

    listed = [obj["Key"] for obj in s3_util.list_objects(bucket, "many/")]
    assert listed == keys
    first_page = s3_util.list_1000_objects(bucket, "many/")
    assert len(first_page) == 1000
    assert first_page[0]["Key"] == keys[0]
    assert list(s3_util.list_objects(bucket, "nothing-here/")) == []
    assert s3_util.list_1000_objects(bucket, "nothing-here/") is None


def test_thread_pool_use(bucket, tmp_path):
    """The module may be used from many threads at once (shared client, per-thread resources)."""
    paths = [_write(tmp_path / f"f{i}.txt", f"content {i}".encode()) for i in range(16)]
    resource_ids = set()
    lock = threading.Lock()

    def work(path):
        s3_util.upload_file(path, bucket, f"threads/{path.name}")
        resource = s3_util.get_s3_resource()
        with lock:
            resource_ids.add((threading.get_ident(), id(resource)))
        return s3_util.get_etag(bucket, f"threads/{path.name}") == s3_util.compute_etag(path)

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, paths))
    assert len(list(s3_util.list_objects(bucket, "threads/"))) == 16
    # one resource per thread: no two threads share one
    assert len({rid for _tid, rid in resource_ids}) == len({tid for tid, _rid in resource_ids})


def test_legacy_s3_resource_attribute(bucket, s3):
    s3.put_object(Bucket=bucket, Key="r.txt", Body=b"x")
    assert [o.key for o in s3_util.s3.Bucket(bucket).objects.all()] == ["r.txt"]


# ---- configuration -------------------------------------------------------------------------------------------

def test_default_client_uses_aws_endpoint_url(moto_endpoint):
    assert s3_util.get_s3_client().meta.endpoint_url == moto_endpoint


def test_default_client_follows_environment_changes(moto_endpoint, monkeypatch):
    first = s3_util.get_s3_client()
    assert s3_util.get_s3_client() is first
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert s3_util.get_s3_client().meta.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    assert s3_util.get_s3_client().meta.endpoint_url == moto_endpoint


def test_set_s3_explicit_endpoint(bucket, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    client = s3_util.set_s3(endpoint_url=moto_endpoint)
    assert client.meta.endpoint_url == moto_endpoint
    assert s3_util.get_s3_client() is client
    assert s3_util.list_1000_objects(bucket, "") is None  # really talks to moto


def test_set_s3_passes_sts_credentials_whole(bucket):
    sts = {"AccessKeyId": "AKIDEXAMPLE", "SecretAccessKey": "secret-value", "SessionToken": "token-value",
           "Expiration": "2030-01-01T00:00:00Z"}
    client = s3_util.set_s3(sts)
    creds = client._request_signer._credentials
    assert (creds.access_key, creds.secret_key, creds.token) == ("AKIDEXAMPLE", "secret-value", "token-value")
    assert s3_util.list_1000_objects(bucket, "") is None


def test_set_s3_accepts_boto_style_credentials():
    client = s3_util.set_s3({"aws_access_key_id": "AKID2", "aws_secret_access_key": "s2"})
    creds = client._request_signer._credentials
    assert (creds.access_key, creds.secret_key) == ("AKID2", "s2")


def test_partial_credentials_rejected_without_leaking_secrets():
    with pytest.raises(ValueError) as excinfo:
        s3_util.set_s3({"SecretAccessKey": "super-secret-value"})
    assert "super-secret-value" not in str(excinfo.value)
    with pytest.raises(ValueError) as excinfo:
        s3_util.set_s3({"unrelated": "super-secret-value"})
    assert "super-secret-value" not in str(excinfo.value)


def test_errors_do_not_contain_credentials(moto_endpoint, tmp_path):
    s3_util.set_s3({"AccessKeyId": "AKIDLEAKCHECK", "SecretAccessKey": "secret-leak-check",
                    "SessionToken": "token-leak-check"}, endpoint_url=moto_endpoint)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        s3_util.head_object("no-such-bucket", "key")
    message = str(excinfo.value)
    for secret in ("AKIDLEAKCHECK", "secret-leak-check", "token-leak-check"):
        assert secret not in message


# ---- retries -------------------------------------------------------------------------------------------------

def _client_error(code, status):
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


def test_transient_error_classification():
    assert s3_util.is_transient_error(_client_error("SlowDown", 503))
    assert s3_util.is_transient_error(_client_error("InternalError", 500))
    assert s3_util.is_transient_error(botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"))
    assert not s3_util.is_transient_error(_client_error("NoSuchKey", 404))
    assert not s3_util.is_transient_error(_client_error("AccessDenied", 403))
    assert not s3_util.is_transient_error(ValueError("x"))


def test_transient_errors_are_retried(monkeypatch):
    calls = []

    @s3_util.s3_retry
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise _client_error("SlowDown", 503)
        return "ok"

    monkeypatch.setattr(flaky.retry, "sleep", lambda _s: None)
    assert flaky() == "ok"
    assert len(calls) == 3


def test_permanent_errors_are_not_retried(monkeypatch):
    calls = []

    @s3_util.s3_retry
    def missing():
        calls.append(1)
        raise _client_error("NoSuchKey", 404)

    monkeypatch.setattr(missing.retry, "sleep", lambda _s: None)
    with pytest.raises(botocore.exceptions.ClientError):
        missing()
    assert len(calls) == 1


def test_unreachable_endpoint_is_retried_then_raised(monkeypatch):
    monkeypatch.setattr(s3_util.head_object.retry, "sleep", lambda _s: None)
    no_boto_retries = botocore.config.Config(retries={"max_attempts": 0, "mode": "standard"})
    client = s3_util.set_s3({"aws_access_key_id": "a", "aws_secret_access_key": "b"},
                            endpoint_url="http://127.0.0.1:9", config=no_boto_retries)
    calls = []
    original = client.head_object

    def counting(**kwargs):
        calls.append(1)
        return original(**kwargs)

    monkeypatch.setattr(client, "head_object", counting)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        s3_util.head_object("b", "k")
    assert len(calls) == s3_util.RETRY_ATTEMPTS
