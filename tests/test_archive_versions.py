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


XBT = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739"
LONG_XBT = f"{XBT}_{'x' * (255 - len(XBT) - 4)}.nc"  # exactly 255 bytes, a valid IMOS name


@pytest.mark.parametrize("name, extension", [
    (LONG_XBT, ".nc"),
    ("é" * 126 + ".nc", ".nc"),  # 255 bytes of two-byte characters: cut on a character boundary
    ("notes." + "b" * 249, ""),  # an "extension" too long to keep
])
def test_versioned_name_of_a_long_name_fits_the_limit_and_is_deterministic(name, extension):
    from aodncore.limits import MAX_NAME_BYTES

    assert len(name.encode()) == MAX_NAME_BYTES
    version = versioned_path(f"A/B/{name}", "abcdef0123456789", WHEN)
    assert version == versioned_path(f"A/B/{name}", "abcdef0123456789", WHEN)
    folder, versioned = version.rsplit("/", 1)
    assert folder == "A/B" and len(versioned.encode()) == MAX_NAME_BYTES
    assert versioned.endswith(f".v20251201T093000Z-abcdef012345{extension}")
    stem = versioned.split("~")[0]
    assert name.startswith(stem) and len(stem.encode()) >= 210
    other = versioned_path(f"A/B/{name[:-5]}Z{name[-4:]}", "abcdef0123456789", WHEN)  # same start, other name
    assert other != version and other.rsplit("/", 1)[1].split("~")[0] == stem


def test_a_255_byte_name_publishes_and_archives_every_version(tmp_path):
    """A 255-byte landing name is published and archived; landing new content under it keeps the old archived
    version under a shortened name on the real local archive (no ENAMETOOLONG)."""
    import shutil

    from ingest_helpers import GOOD_FILES, IMOS_DIR

    from aodncore.ingest import LandingObject
    from aodncore.ingest.configure import build_settings
    from aodncore.ingest.runner import ingest_object

    first, second = IMOS_DIR / f"{XBT}.nc", IMOS_DIR / next(iter(GOOD_FILES))
    landing = tmp_path / "landing"
    landing.mkdir()
    base = tmp_path / "base"
    for source in (first, second):
        path = shutil.copy(source, landing / LONG_XBT)
        settings = build_settings(base_dir=str(base))
        outcome = ingest_object(LandingObject.from_path(path), settings)
        assert outcome.status == "published", outcome

    assert (base / "published" / "IMOS/SOOP/XBT" / LONG_XBT).read_bytes() == second.read_bytes()
    archived = {p.name: p for p in (base / "archive").rglob("*") if p.is_file()}
    assert archived.pop(LONG_XBT).read_bytes() == second.read_bytes()
    (kept_name, kept), = archived.items()
    assert len(kept_name.encode()) == 255 and kept_name.endswith(".nc") and kept_name.startswith(f"{XBT}_xxx")
    assert kept.read_bytes() == first.read_bytes()


def test_scratch_folder_only_when_something_is_replaced(tmp_path, monkeypatch):
    """Archiving new paths makes no scratch folder; replacing one makes one, and removes it afterwards."""
    import tempfile

    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    made = []
    real_mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(real_mkdtemp(*a, **k)) or made[-1])
    archive = tmp_path / "archive"
    runner = StoreRunner(get_storage_broker(archive.as_uri()), None, None, archive_mode=True)
    v1, v2 = tmp_path / "v1.nc", tmp_path / "v2.nc"
    v1.write_bytes(b"version one")
    v2.write_bytes(b"version two")

    _archive(runner, v1, "P/new.nc")
    assert [m for m in made if "aodncore-archive-version-" in m] == []
    _archive(runner, v2, "P/new.nc")
    assert len([m for m in made if "aodncore-archive-version-" in m]) == 1
    assert list(scratch_root.iterdir()) == []
    assert len(list((archive / "P").iterdir())) == 2
