"""``aodncore.pipeline.steps.archiveversions``: the archive step keeps every version of an archive path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aodncore.pipeline import PipelineFile, PipelineFileCollection, PipelineFilePublishType
from aodncore.pipeline.steps.archiveversions import preserve_previous_versions, versioned_path
from aodncore.pipeline.steps.store import StoreRunner
from aodncore.pipeline.storage import get_storage_broker
from aodncore.testlib import NullStorageBroker

WHEN = datetime(2025, 12, 1, 9, 30, tzinfo=UTC)


def _archive(runner: StoreRunner, local, archive_path: str) -> PipelineFile:
    pipeline_file = PipelineFile(str(local), archive_path=archive_path)
    pipeline_file.publish_type = PipelineFilePublishType.ARCHIVE_ONLY
    runner.run(PipelineFileCollection([pipeline_file]))
    assert pipeline_file.is_archived
    return pipeline_file


def test_versioned_path_keeps_folder_and_extension():
    assert versioned_path("A/B/x_FV01.nc", "3fa9c1e2b7d4aa", WHEN) == "A/B/x_FV01.v20251201T093000Z-3fa9c1e2b7d4.nc"
    assert versioned_path("x.nc.gz", "abcdef0123456789", WHEN) == "x.nc.v20251201T093000Z-abcdef012345.gz"
    assert versioned_path("README", "abcdef0123456789", WHEN) == "README.v20251201T093000Z-abcdef012345"
    assert versioned_path(".hidden", "abcdef0123456789", WHEN) == ".hidden.v20251201T093000Z-abcdef012345"


def test_local_archive_keeps_the_previous_version(tmp_path):
    archive = tmp_path / "archive"
    runner = StoreRunner(get_storage_broker(archive.as_uri()), None, None, archive_mode=True)
    v1, v2 = tmp_path / "v1.nc", tmp_path / "v2.nc"
    v1.write_bytes(b"version one")
    v2.write_bytes(b"version two")

    _archive(runner, v1, "P/x.nc")
    _archive(runner, v1, "P/x.nc")  # identical content: nothing kept
    assert sorted(p.name for p in (archive / "P").iterdir()) == ["x.nc"]
    _archive(runner, v2, "P/x.nc")

    current, kept = sorted(p.name for p in (archive / "P").iterdir())
    assert current == "x.nc" and kept.startswith("x.v") and kept.endswith(".nc")
    assert (archive / "P" / "x.nc").read_bytes() == b"version two"
    assert (archive / "P" / kept).read_bytes() == b"version one"


def test_publish_store_is_not_versioned(tmp_path):
    store = tmp_path / "published"
    runner = StoreRunner(get_storage_broker(store.as_uri()), None, None)
    for content in (b"one", b"two"):
        local = tmp_path / "x.nc"
        local.write_bytes(content)
        pipeline_file = PipelineFile(str(local), dest_path="P/x.nc")
        pipeline_file.publish_type = PipelineFilePublishType.UPLOAD_ONLY
        runner.run(PipelineFileCollection([pipeline_file]))
    assert [p.name for p in (store / "P").iterdir()] == ["x.nc"]


def test_null_broker_stores_nothing_and_keeps_nothing(tmp_path):
    local = tmp_path / "x.nc"
    local.write_bytes(b"content")
    files = PipelineFileCollection([PipelineFile(str(local), archive_path="P/x.nc")])
    assert preserve_previous_versions(NullStorageBroker("/"), files) == []


@pytest.mark.parametrize("bucket_versioning", [False, True])
def test_s3_archive(tmp_path, s3, bucket_versioning):
    s3.create_bucket(Bucket="archive")
    if bucket_versioning:
        s3.put_bucket_versioning(Bucket="archive", VersioningConfiguration={"Status": "Enabled"})
    runner = StoreRunner(get_storage_broker("s3://archive/prefix"), None, None, archive_mode=True)
    v1, v2 = tmp_path / "v1.nc", tmp_path / "v2.nc"
    v1.write_bytes(b"version one")
    v2.write_bytes(b"version two")

    _archive(runner, v1, "P/x.nc")
    _archive(runner, v2, "P/x.nc")

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="archive")["Contents"])
    assert s3.get_object(Bucket="archive", Key="prefix/P/x.nc")["Body"].read() == b"version two"
    if bucket_versioning:  # the bucket keeps the versions: no extra object
        assert keys == ["prefix/P/x.nc"]
        versions = s3.list_object_versions(Bucket="archive", Prefix="prefix/P/x.nc")["Versions"]
        assert len(versions) == 2
    else:
        current, kept = keys
        assert current == "prefix/P/x.nc" and kept.startswith("prefix/P/x.v") and kept.endswith(".nc")
        assert s3.get_object(Bucket="archive", Key=kept)["Body"].read() == b"version one"
