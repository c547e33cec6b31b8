"""Classic public names, patch targets and messages client code relies on (compat addendum §1, §2, §5, §7, §11)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from unittest import mock

import pytest

from aodncore.pipeline import HandlerBase, PipelineFile, PipelineFileCollection, PipelineFilePublishType
from aodncore.pipeline.exceptions import AttributeNotSetError, StorageBrokerError
from aodncore.pipeline.files import RemotePipelineFile, RemotePipelineFileCollection
from aodncore.testlib import DummyHandler, NullStorageBroker, get_test_config
from aodncore.util.fileops import safe_copy_file, safe_move_file

# -- §1 dir_exists -------------------------------------------------------------------------------------------------


def test_dir_exists_is_isdir(tmp_path):
    from aodncore.util import dir_exists, fileops

    assert dir_exists is fileops.dir_exists and "dir_exists" in fileops.__all__
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    os.symlink(tmp_path / "d", tmp_path / "link_to_d")
    os.symlink(tmp_path / "gone", tmp_path / "broken")
    assert dir_exists(str(tmp_path / "d")) and dir_exists(tmp_path / "link_to_d") and dir_exists(bytes(tmp_path))
    for path in ("f", "missing", "broken"):
        assert not dir_exists(str(tmp_path / path))
    assert not dir_exists("") and not dir_exists("a\0b")
    with pytest.raises(TypeError):
        dir_exists(None)


# -- §2 aodncore.table ---------------------------------------------------------------------------------------------


def test_table_package():
    import aodncore.table
    import aodncore.table.ff
    from aodncore.table import get_field_type, get_tableschema_descriptor

    assert aodncore.table.__all__ == aodncore.table.ff.__all__ == ["get_field_type", "get_tableschema_descriptor"]
    assert [get_field_type(t) for t in ("integer", "string", "any", "number", "datetime", "date", "boolean")] == [
        "int", "varchar", "varchar", "numeric", "timestamp", "date", "boolean"]
    descriptor = get_tableschema_descriptor({"schema": {"fields": [{"name": "a"}]}}, "schema")
    assert descriptor["fields"] == [{"name": "a", "type": "string", "format": "default"}]
    assert descriptor["missingValues"] == [""]


# -- §11 modules and names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("module", "names"), [
    ("aodncore.util.external.astropy.decorators", ["classproperty", "lazyproperty"]),
    ("aodncore.util.external.boltons.setutils", ["IndexedSet"]),
    ("aodncore.util.external.retry", ["retry", "retry_call"]),
    ("aodncore.util.external.retry.api", ["retry", "retry_call"]),
    ("aodncore.util.external.retry.compat", ["NullHandler"]),
])
def test_external_subpackages(module, names):
    loaded = importlib.import_module(module)
    assert all(callable(getattr(loaded, name)) for name in names)


def test_external_retry_really_retries():
    from aodncore.util.external.retry import retry

    attempts = []

    @retry(ValueError, tries=3, logger=None)
    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("not yet")
        return "done"

    assert flaky() == "done" and len(attempts) == 3


def test_aodn_base_error_from_pipeline_exceptions():
    from aodncore.common.exceptions import AodnBaseError as Root
    from aodncore.pipeline.exceptions import AodnBaseError, ComplianceCheckFailedError

    assert AodnBaseError is Root and issubclass(ComplianceCheckFailedError, AodnBaseError)


def test_upload_to_s3(s3, tmp_path, capsys, monkeypatch):
    from aodncore.util.aws import upload_to_s3

    s3.create_bucket(Bucket="landing")
    local = tmp_path / "IMOS_file.nc"
    local.write_bytes(b"payload")
    upload_to_s3(str(local), "landing", bucket_prefix="incoming/")
    assert capsys.readouterr().out == f"Upload Successful: {local} to landing/incoming/IMOS_file.nc\n"
    assert s3.get_object(Bucket="landing", Key="incoming/IMOS_file.nc")["Body"].read() == b"payload"
    upload_to_s3(str(local), "landing", key="explicit/key.nc")
    assert s3.get_object(Bucket="landing", Key="explicit/key.nc")["ContentLength"] == 7
    capsys.readouterr()

    upload_to_s3(str(tmp_path / "missing.nc"), "landing")
    assert capsys.readouterr().out == f"The file {tmp_path / 'missing.nc'} was not found\n"

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    upload_to_s3(str(local), "landing")
    assert capsys.readouterr().out == "Credentials not available\n"


def test_upload_to_s3_script(s3, tmp_path, capsys, monkeypatch):
    from aodncore.bin.upload_to_s3 import main

    s3.create_bucket(Bucket="dataflow")
    monkeypatch.chdir(tmp_path)
    Path("sub").mkdir()
    Path("sub/f.nc").write_bytes(b"abc")
    assert main(["sub/f.nc", "-b", "dataflow"]) == 0
    assert s3.get_object(Bucket="dataflow", Key="sub/f.nc")["Body"].read() == b"abc"
    assert main(["sub/f.nc", "--bucket", "dataflow", "--s3-key", "other/name.nc"]) == 0
    assert "Upload Successful: sub/f.nc to dataflow/other/name.nc" in capsys.readouterr().out


def test_sftp_patch_targets_are_used_at_call_time():
    import paramiko

    from aodncore.pipeline import storage

    assert storage.SSHClient is paramiko.SSHClient and storage.AutoAddPolicy is paramiko.AutoAddPolicy
    with mock.patch("aodncore.pipeline.storage.SSHClient") as client_class, \
            mock.patch("aodncore.pipeline.storage.AutoAddPolicy") as policy_class:
        broker = storage.SftpStorageBroker("sftp.example", "/data", accept_unknown_hosts=True)
        broker._connect()
    client = client_class.return_value
    client.set_missing_host_key_policy.assert_called_once_with(policy_class.return_value)
    assert client.connect.call_args.args == ("sftp.example",)
    assert broker.sftp_client is client.open_sftp.return_value


def test_storage_patch_targets_survive_the_package_split(tmp_path):
    """``aodncore.pipeline.storage`` is a package now; the classic patch targets still reach the brokers."""
    from aodncore.pipeline import storage
    from aodncore.pipeline.files import PipelineFile, RemotePipelineFile

    with mock.patch("aodncore.pipeline.storage.boto3") as boto3:
        broker = storage.S3StorageBroker("bucket", "prefix")
    assert broker.s3_client is boto3.client.return_value
    boto3.client.assert_called_once_with("s3")

    stored = tmp_path / "store" / "x.nc"
    stored.parent.mkdir()
    stored.write_bytes(b"stored")
    local = storage.LocalFileStorageBroker(str(tmp_path / "store"))
    with mock.patch("aodncore.pipeline.storage.mkdir_p", wraps=storage.mkdir_p) as mkdir_p:
        local.download(RemotePipelineFile("x.nc"), str(tmp_path / "down"))
    mkdir_p.assert_called_once_with(str(tmp_path / "down"))

    source = tmp_path / "up.nc"
    source.write_bytes(b"real bytes")
    with mock.patch("aodncore.pipeline.storage.open", mock.mock_open(read_data=b"patched"), create=True) as opened, \
            mock.patch("aodncore.pipeline.storage.boto3"):
        s3_broker = storage.S3StorageBroker("bucket", "")
        s3_broker.upload(PipelineFile(str(source), dest_path="up.nc"))
    opened.assert_called_once_with(str(source), "rb")
    assert storage.BaseStorageBroker.__module__ == "aodncore.pipeline.storage"


def test_handler_input_file_copied_to_landing(tmp_path):
    config = get_test_config(str(tmp_path))
    path = str(tmp_path / "x.nc")
    harvest_only = {"harvest_only": True}
    handler = HandlerBase(path, config=config, custom_params=harvest_only, input_file_copied_to_landing=True)
    assert handler.input_file_copied_to_landing is True
    assert handler.default_addition_publish_type is PipelineFilePublishType.HARVEST_ONLY
    assert dict(handler)["default_addition_publish_type"] is PipelineFilePublishType.HARVEST_ONLY
    assert "default_deletion_publish_type" not in dict(handler)
    for kwargs in ({"custom_params": harvest_only}, {"input_file_copied_to_landing": True},
                   {"custom_params": {"harvest_only": False}, "input_file_copied_to_landing": True}):
        other = HandlerBase(path, config=config, **kwargs)
        assert other.default_addition_publish_type is PipelineFilePublishType.HARVEST_UPLOAD
    # a subclass setting its own type after super().__init__ wins
    dummy = DummyHandler(path, config=config, custom_params=harvest_only, input_file_copied_to_landing=True)
    assert dummy.default_addition_publish_type is PipelineFilePublishType.HARVEST_ARCHIVE_UPLOAD


def test_path_function_resolver_classic_attribute_names(tmp_path):
    from aodncore.pipeline.destpath import PathFunctionResolver

    def my_dest(path):
        return path

    handler = HandlerBase("x.nc", config=get_test_config(str(tmp_path)), dest_path_function=my_dest)
    resolver = PathFunctionResolver(handler, "pipeline.path_functions")
    assert (resolver.handler_instance, resolver.attribute_name, resolver.param_name, resolver.function_param) == (
        handler, "dest_path", "dest_path_function", my_dest)
    archive = PathFunctionResolver(handler, "pipeline.path_functions", archive_mode=True)
    assert (archive.attribute_name, archive.param_name, archive.function_param) == (
        "archive_path", "archive_path_function", None)


def test_testlib_pipeline_conf_has_the_classic_keys(tmp_path):
    config = get_test_config(str(tmp_path))
    assert config.pipeline_config["global"]["landing_bucket"] == "probably-doesnt-exist-landing-bucket"


# -- §5 NullStorageBroker -------------------------------------------------------------------------------------------


def _files(tmp_path, count=2, dest=True):
    collection = PipelineFileCollection()
    for index in range(count):
        path = tmp_path / f"null_{index}.nc"
        path.write_bytes(b"x")
        collection.add(PipelineFile(str(path), dest_path=f"dest/null_{index}.nc" if dest else None,
                                    publish_type=PipelineFilePublishType.UPLOAD_ONLY))
    return collection


def test_null_broker_failures_are_storage_broker_errors_per_file(tmp_path):
    broker = NullStorageBroker("/prefix", fail=True)
    files = _files(tmp_path)
    with pytest.raises(StorageBrokerError) as raised:
        broker.upload(files)
    assert str(raised.value) == "error uploading 'dest/null_0.nc': Exception: deliberate failure requested"
    assert not any(f.is_stored for f in files)
    with pytest.raises(StorageBrokerError, match=r"^error deleting 'dest/null_0.nc': Exception: deliberate"):
        broker.delete(files)
    remote = RemotePipelineFileCollection([RemotePipelineFile("dest/r.nc")])
    downloads = tmp_path / "dl"
    with pytest.raises(StorageBrokerError) as raised:
        broker.download(remote, str(downloads))
    assert str(raised.value) == (f"error downloading 'dest/r.nc' to '{downloads}': "
                                 "Exception: deliberate failure requested")
    assert remote[0].local_path == str(downloads / "dest/r.nc") and (downloads / "dest").is_dir()
    with pytest.raises(StorageBrokerError, match=r"^error querying storage: Exception: deliberate failure requested$"):
        broker.query()
    # the hooks never fail: empty collections pass; failed calls were counted
    broker.upload(PipelineFileCollection())
    broker.delete(PipelineFileCollection())
    assert (broker.upload_call_count, broker.delete_call_count, broker.download_call_count,
            broker.query_call_count) == (2, 2, 1, 1)


def test_null_broker_without_dest_path(tmp_path):
    files = _files(tmp_path, dest=False)
    broker = NullStorageBroker("/prefix")
    broker.upload(files)  # stores nothing, so needs no destination
    assert all(f.is_stored for f in files)
    with pytest.raises(AttributeNotSetError):
        broker.set_is_overwrite(files)


def test_null_broker_assertion_messages(tmp_path):
    broker = NullStorageBroker("/prefix")
    broker.upload(_files(tmp_path))
    with pytest.raises(AssertionError, match="^upload method call count: 1$"):
        broker.assert_upload_call_count(5)
    with pytest.raises(AssertionError, match="^delete method not called$"):
        broker.assert_delete_called()
    with pytest.raises(AssertionError, match="^upload method call count: 1$"):
        broker.assert_upload_not_called()
    broker.query()
    with pytest.raises(AssertionError, match="^query method call count: 1$"):
        broker.assert_query_call_count(2)


# -- §7.3 safe_copy_file / safe_move_file messages -------------------------------------------------------------------


def test_safe_copy_and_move_messages_have_no_errno(tmp_path):
    source = tmp_path / "src.nc"
    source.write_text("x")
    existing = tmp_path / "dst.nc"
    existing.write_text("y")
    missing = str(tmp_path / "missing.nc")
    for function in (safe_copy_file, safe_move_file):
        with pytest.raises(FileNotFoundError) as raised:
            function(missing, str(existing))
        assert str(raised.value) == f"source file '{missing}' does not exist"
        with pytest.raises(OSError) as raised:
            function(str(source), str(source))
        assert str(raised.value) == "source file and destination file can't refer to the same file"
        with pytest.raises(FileExistsError) as raised:
            function(str(source), str(existing))
        assert str(raised.value) == f"destination file '{existing}' already exists"
    assert Path(existing).read_text() == "y" and source.exists()
