"""Tests of the resolve step (aodncore.pipeline.steps.resolve) on real IMOS files, real archives and manifests."""

from __future__ import annotations

import filecmp
import gzip
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from aodncore.pipeline.common import PipelineFilePublishType
from aodncore.pipeline.exceptions import (
    DuplicatePipelineFileError,
    InvalidFileFormatError,
    InvalidInputFileError,
    MissingFileError,
)
from aodncore.pipeline.files import PipelineFileCollection
from aodncore.pipeline.steps.resolve import (
    DeleteManifestResolveRunner,
    DirManifestResolveRunner,
    GzipFileResolveRunner,
    JsonManifestResolveRunner,
    MapManifestResolveRunner,
    RsyncLineType,
    RsyncManifestLine,
    RsyncManifestResolveRunner,
    SimpleManifestResolveRunner,
    SingleFileResolveRunner,
    TableRowErrorDetails,
    ZipFileResolveRunner,
    get_resolve_runner,
)

GOOD_NC = "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV01_Profile-SBE-19plus_C-20160524T003914Z.nc"
BAD_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc"
REALTIME_NC = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc"


@pytest.fixture
def output_dir(tmp_path) -> Path:
    path = tmp_path / "work" / "collection"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def root(tmp_path, imos_dir) -> Path:
    """A relative_path_root holding real files under the names the spec's manifest examples use."""
    path = tmp_path / "root"
    path.mkdir()
    for name in ("test_manifest.nc", "good.nc", "bad.nc"):
        shutil.copyfile(imos_dir / GOOD_NC, path / name)
    return path


@pytest.fixture
def config(root):
    return SimpleNamespace(pipeline_config={"global": {"wip_dir": str(root)}})


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# ----------------------------------------------------------------------------------------------------------------
# factory
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("x.zip", ZipFileResolveRunner),
    ("s3://landing/a/x.ZIP", ZipFileResolveRunner),
    ("x.nc.gz", GzipFileResolveRunner),
    ("x.manifest", SimpleManifestResolveRunner),
    ("x.json_manifest", JsonManifestResolveRunner),
    ("x.map_manifest", MapManifestResolveRunner),
    ("x.rsync_manifest", RsyncManifestResolveRunner),
    ("x.nc", SingleFileResolveRunner),
    ("x.csv", SingleFileResolveRunner),
    ("x", SingleFileResolveRunner),
])
def test_factory_dispatches_on_extension(name, expected, output_dir, root):
    params = {"relative_path_root": str(root)}
    runner = get_resolve_runner(name, str(output_dir), None, None, params)
    assert type(runner) is expected
    assert runner.input_file == name
    assert runner.output_dir == str(output_dir)


def test_factory_dir_manifest_is_deprecated(output_dir, root):
    with pytest.warns(DeprecationWarning):
        runner = get_resolve_runner("x.dir_manifest", str(output_dir), None, None,
                                    {"relative_path_root": str(root)})
    assert isinstance(runner, DirManifestResolveRunner)


def test_factory_refuses_delete_manifest_unless_enabled(output_dir, root):
    with pytest.raises(InvalidFileFormatError, match="delete_manifests are not enabled for this pipeline"):
        get_resolve_runner("x.delete_manifest", str(output_dir), None, None)
    with pytest.raises(InvalidFileFormatError):
        get_resolve_runner("x.delete_manifest", str(output_dir), None, None, {"allow_delete_manifests": False})
    runner = get_resolve_runner("x.delete_manifest", str(output_dir), None, None,
                                {"allow_delete_manifests": True, "relative_path_root": str(root)})
    assert isinstance(runner, DeleteManifestResolveRunner)


def test_manifest_root_defaults_to_wip_dir(config, root, output_dir):
    runner = SimpleManifestResolveRunner("x.manifest", str(output_dir), config, None)
    assert runner.relative_path_root == str(root)
    assert runner.get_abs_path("a/b.nc") == os.path.join(str(root), "a/b.nc")
    assert runner.get_abs_path("/abs/b.nc") == "/abs/b.nc"
    # config is not needed when the parameter is given
    runner = SimpleManifestResolveRunner("x.manifest", str(output_dir), None, None, {"relative_path_root": "/r"})
    assert runner.relative_path_root == "/r"


# ----------------------------------------------------------------------------------------------------------------
# single file
# ----------------------------------------------------------------------------------------------------------------

def test_single_file_is_copied(imos_file, output_dir, tmp_path):
    source = imos_file(GOOD_NC, tmp_path / "incoming")
    collection = SingleFileResolveRunner(str(source), str(output_dir), None, None).run()

    assert isinstance(collection, PipelineFileCollection)
    assert len(collection) == 1
    resolved = collection[0]
    assert resolved.src_path == str(output_dir / GOOD_NC)
    assert resolved.name == GOOD_NC
    assert resolved.publish_type is PipelineFilePublishType.UNSET
    assert source.exists()
    assert filecmp.cmp(source, resolved.src_path, shallow=False)


def test_single_file_move(imos_file, output_dir, tmp_path):
    source = imos_file(GOOD_NC, tmp_path / "incoming")
    collection = SingleFileResolveRunner(str(source), str(output_dir), None, None).run(move=True)
    assert [f.src_path for f in collection] == [str(output_dir / GOOD_NC)]
    assert not source.exists()


def test_single_file_missing_source(output_dir, tmp_path):
    with pytest.raises(OSError):
        SingleFileResolveRunner(str(tmp_path / "nope.nc"), str(output_dir), None, None).run()


# ----------------------------------------------------------------------------------------------------------------
# zip
# ----------------------------------------------------------------------------------------------------------------

def test_local_zip_is_extracted(imos_dir, output_dir):
    collection = ZipFileResolveRunner(str(imos_dir / "good_and_bad.zip"), str(output_dir), None, None).run()
    assert [f.name for f in collection] == [BAD_NC, REALTIME_NC]
    with zipfile.ZipFile(imos_dir / "good_and_bad.zip") as archive:
        for pipeline_file in collection:
            assert Path(pipeline_file.src_path).read_bytes() == archive.read(pipeline_file.name)


def test_zip_files_of_a_directory_come_before_its_subdirectories(imos_dir, output_dir):
    collection = ZipFileResolveRunner(str(imos_dir / "images_and_nc.zip"), str(output_dir), None, None).run()
    assert [os.path.relpath(f.src_path, output_dir) for f in collection] == [
        "IMOS_ANMN-NRS_CDEKOSTUZ_20140703T021045Z_NRSMAI_FV00_Profile-BAD_C-20160524T003914Z.nc",
        "SAZ15_2012_47_1050_IRS/saz_2012_47_1050_IRS_01.jpg",
    ]


def test_invalid_zip(imos_file, output_dir, tmp_path):
    fake = tmp_path / "fake.zip"
    shutil.copyfile(imos_file("not_a_netcdf_file.nc"), fake)
    with pytest.raises(InvalidFileFormatError, match="input_file must be a valid ZIP file") as info:
        ZipFileResolveRunner(str(fake), str(output_dir), None, None).run()
    assert "fake.zip" in str(info.value)


def _hostile_zip(path: Path, member: zipfile.ZipInfo | str, data: bytes, symlink: bool = False) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("harmless.nc", b"ok")
        if symlink:
            info = zipfile.ZipInfo(member)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
        else:
            archive.writestr(member, data)
    return str(path)


@pytest.mark.parametrize(("member", "symlink"), [
    ("../escape.nc", False),
    ("sub/../../escape.nc", False),
    ("/tmp/aodncore-abs-member-test.nc", False),
    ("link.nc", True),
])
def test_hostile_zip_is_refused(tmp_path, output_dir, member, symlink):
    archive = _hostile_zip(tmp_path / "hostile.zip", member, b"/etc/passwd" if symlink else b"evil", symlink)
    with pytest.raises(InvalidFileFormatError) as info:
        ZipFileResolveRunner(archive, str(output_dir), None, None).run()
    assert "hostile.zip" in str(info.value)
    assert not (tmp_path / "work" / "escape.nc").exists()
    assert not (tmp_path / "escape.nc").exists()
    assert not Path("/tmp/aodncore-abs-member-test.nc").exists()
    assert not any(p.is_symlink() for p in output_dir.rglob("*"))


def test_zip_from_s3_is_downloaded_privately_and_cleaned_up(s3, imos_dir, tmp_path):
    s3.create_bucket(Bucket="landing")
    s3.upload_file(str(imos_dir / "good_and_bad.zip"), "landing", "incoming/good_and_bad.zip")
    work = tmp_path / "work"
    output_dir = work / "collection"
    output_dir.mkdir(parents=True)

    collection = ZipFileResolveRunner("s3://landing/incoming/good_and_bad.zip", str(output_dir), None, None).run()

    assert [f.name for f in collection] == [BAD_NC, REALTIME_NC]
    assert all(Path(f.src_path).parent == output_dir for f in collection)
    # the temporary download is gone and never went to a shared /tmp/<name>
    assert sorted(p.name for p in work.iterdir()) == ["collection"]
    assert not Path("/tmp/good_and_bad.zip").exists()
    # the landing object is left in place (deleted only once published, by the driver)
    assert s3.head_object(Bucket="landing", Key="incoming/good_and_bad.zip")["ContentLength"] > 0


def test_invalid_zip_from_s3_is_cleaned_up(s3, imos_dir, tmp_path):
    s3.create_bucket(Bucket="landing")
    s3.upload_file(str(imos_dir / "not_a_netcdf_file.nc"), "landing", "fake.zip")
    work = tmp_path / "work"
    (work / "collection").mkdir(parents=True)
    with pytest.raises(InvalidFileFormatError, match="s3://landing/fake.zip"):
        ZipFileResolveRunner("s3://landing/fake.zip", str(work / "collection"), None, None).run()
    assert sorted(p.name for p in work.iterdir()) == ["collection"]
    assert s3.head_object(Bucket="landing", Key="fake.zip")


def test_missing_s3_zip(s3, tmp_path):
    s3.create_bucket(Bucket="landing")
    work = tmp_path / "work"
    (work / "collection").mkdir(parents=True)
    with pytest.raises(InvalidInputFileError, match="s3://landing/missing.zip"):
        ZipFileResolveRunner("s3://landing/missing.zip", str(work / "collection"), None, None).run()
    assert sorted(p.name for p in work.iterdir()) == ["collection"]


# ----------------------------------------------------------------------------------------------------------------
# gzip
# ----------------------------------------------------------------------------------------------------------------

def test_gzip_of_real_netcdf(imos_dir, tmp_path, output_dir):
    gz_path = tmp_path / f"{GOOD_NC}.gz"
    with open(imos_dir / GOOD_NC, "rb") as source, gzip.open(gz_path, "wb") as target:
        shutil.copyfileobj(source, target)

    collection = GzipFileResolveRunner(str(gz_path), str(output_dir), None, None).run()

    assert [f.name for f in collection] == [GOOD_NC]
    assert filecmp.cmp(collection[0].src_path, imos_dir / GOOD_NC, shallow=False)


def test_invalid_gzip(imos_file, tmp_path, output_dir):
    fake = tmp_path / "fake.nc.gz"
    shutil.copyfile(imos_file(GOOD_NC), fake)
    with pytest.raises(InvalidFileFormatError, match="input_file must be a valid GZ file") as info:
        GzipFileResolveRunner(str(fake), str(output_dir), None, None).run()
    assert "fake.nc.gz" in str(info.value)


# ----------------------------------------------------------------------------------------------------------------
# simple and dir manifests
# ----------------------------------------------------------------------------------------------------------------

def test_simple_manifest(tmp_path, root, output_dir):
    manifest = write(tmp_path / "in.manifest", f"test_manifest.nc\n{root / 'good.nc'}\n")
    collection = SimpleManifestResolveRunner(manifest, str(output_dir), None, None,
                                             {"relative_path_root": str(root)}).run()
    assert [f.src_path for f in collection] == [str(root / "test_manifest.nc"), str(root / "good.nc")]
    assert all(f.dest_path is None for f in collection)
    assert list(output_dir.iterdir()) == []  # manifests reference files in place


def test_simple_manifest_crlf(tmp_path, root, output_dir):
    manifest = tmp_path / "in.manifest"
    manifest.write_bytes(b"test_manifest.nc\r\ngood.nc\r\n")
    collection = SimpleManifestResolveRunner(str(manifest), str(output_dir), None, None,
                                             {"relative_path_root": str(root)}).run()
    assert [f.name for f in collection] == ["test_manifest.nc", "good.nc"]


def test_simple_manifest_errors_name_manifest_and_line(tmp_path, root, output_dir):
    params = {"relative_path_root": str(root)}
    manifest = write(tmp_path / "missing.manifest", "good.nc\nnot_there.nc\n")
    with pytest.raises(MissingFileError, match=r"missing\.manifest' line 2: .*not_there\.nc"):
        SimpleManifestResolveRunner(manifest, str(output_dir), None, None, params).run()

    manifest = write(tmp_path / "blank.manifest", "good.nc\n\n")
    with pytest.raises(MissingFileError, match=r"blank\.manifest' line 2"):
        SimpleManifestResolveRunner(manifest, str(output_dir), None, None, params).run()

    manifest = write(tmp_path / "dup.manifest", "good.nc\ngood.nc\n")
    with pytest.raises(DuplicatePipelineFileError, match=r"dup\.manifest' line 2"):
        SimpleManifestResolveRunner(manifest, str(output_dir), None, None, params).run()


def test_dir_manifest_expands_directories(tmp_path, root, output_dir, imos_dir):
    sub = root / "dir"
    (sub / "nested").mkdir(parents=True)
    shutil.copyfile(imos_dir / BAD_NC, sub / "b.nc")
    shutil.copyfile(imos_dir / BAD_NC, sub / "A.nc")
    shutil.copyfile(imos_dir / REALTIME_NC, sub / "nested" / "c.nc")
    manifest = write(tmp_path / "in.dir_manifest", "dir\ngood.nc\n")
    with pytest.warns(DeprecationWarning):
        runner = DirManifestResolveRunner(manifest, str(output_dir), None, None, {"relative_path_root": str(root)})
    collection = runner.run()
    assert [os.path.relpath(f.src_path, root) for f in collection] == ["dir/A.nc", "dir/b.nc", "dir/nested/c.nc",
                                                                       "good.nc"]


def test_dir_manifest_blank_line_does_not_expand_the_root(tmp_path, root, output_dir):
    manifest = write(tmp_path / "in.dir_manifest", "good.nc\n\n")
    with pytest.warns(DeprecationWarning):
        runner = DirManifestResolveRunner(manifest, str(output_dir), None, None, {"relative_path_root": str(root)})
    with pytest.raises(MissingFileError, match="line 2"):
        runner.run()


# ----------------------------------------------------------------------------------------------------------------
# JSON manifest
# ----------------------------------------------------------------------------------------------------------------

def run_json(tmp_path, root, output_dir, content, name="in.json_manifest"):
    text = content if isinstance(content, str) else json.dumps(content)
    manifest = write(tmp_path / name, text)
    return JsonManifestResolveRunner(manifest, str(output_dir), None, None, {"relative_path_root": str(root)}).run()


def test_json_manifest_example(tmp_path, root, output_dir):
    content = {"files": [{"local_path": "good.nc"},
                         {"local_path": "bad.nc", "dest_path": "UNITTEST/NOT/A/REAL/PATH"}],
               "other": "allowed"}
    collection = run_json(tmp_path, root, output_dir, content)
    assert [(f.src_path, f.dest_path) for f in collection] == [
        (str(root / "good.nc"), None),
        (str(root / "bad.nc"), "UNITTEST/NOT/A/REAL/PATH"),
    ]


def test_json_manifest_invalid_json(tmp_path, root, output_dir):
    with pytest.raises(InvalidFileFormatError, match=r"input_file must be a valid JSON file.*broken\.json_manifest"):
        run_json(tmp_path, root, output_dir, '{"files": [', name="broken.json_manifest")


@pytest.mark.parametrize("content", [
    {"files": [{"local_path": "good.nc", "unexpected": 1}]},
    {"files": [{"dest_path": "A/B"}]},
    {"files": "good.nc"},
    [],
])
def test_json_manifest_schema_violation(tmp_path, root, output_dir, content):
    with pytest.raises(InvalidFileFormatError, match="input_file failed to validate against the JSON manifest schema"):
        run_json(tmp_path, root, output_dir, content)


@pytest.mark.parametrize("dest_path", ["../escape/good.nc", "A/../../good.nc", "/abs/good.nc", "A\\..\\..\\x"])
def test_json_manifest_refuses_unsafe_dest_path(tmp_path, root, output_dir, dest_path):
    content = {"files": [{"local_path": "good.nc"}, {"local_path": "bad.nc", "dest_path": dest_path}]}
    with pytest.raises(InvalidFileFormatError) as info:
        run_json(tmp_path, root, output_dir, content, name="evil.json_manifest")
    message = str(info.value)
    assert "evil.json_manifest" in message
    assert "files[1]" in message
    assert dest_path in message


def test_json_manifest_missing_file(tmp_path, root, output_dir):
    with pytest.raises(MissingFileError, match=r"files\[0\].*nope\.nc"):
        run_json(tmp_path, root, output_dir, {"files": [{"local_path": "nope.nc"}]})


# ----------------------------------------------------------------------------------------------------------------
# map manifest
# ----------------------------------------------------------------------------------------------------------------

def run_map(tmp_path, root, output_dir, text, name="in.map_manifest"):
    manifest = write(tmp_path / name, text)
    return MapManifestResolveRunner(manifest, str(output_dir), None, None, {"relative_path_root": str(root)}).run()


def test_map_manifest_example(tmp_path, root, output_dir):
    collection = run_map(tmp_path, root, output_dir,
                         f"test_manifest.nc,UNITTEST/NOT/A/REAL/PATH\n{root / 'good.nc'},UNITTEST/OTHER/good.nc\n")
    assert [(f.src_path, f.dest_path) for f in collection] == [
        (str(root / "test_manifest.nc"), "UNITTEST/NOT/A/REAL/PATH"),
        (str(root / "good.nc"), "UNITTEST/OTHER/good.nc"),
    ]


def test_map_manifest_missing_dest_path_message(tmp_path, root, output_dir):
    with pytest.raises(InvalidFileFormatError) as info:
        run_map(tmp_path, root, output_dir, "test_manifest.nc,UNITTEST/NOT/A/REAL/PATH\ngood.nc,\n")
    assert info.value.args[0] == [
        'There are 1 cast errors (see exception.errors) for row "2": '
        'Field "dest_path" has constraint "required" which is not satisfied for value "None"'
    ]


def test_map_manifest_collects_every_error(tmp_path, root, output_dir):
    text = ("test_manifest.nc,UNITTEST/NOT/A/REAL/PATH\n"
            "good.nc,UNITTEST/NOT/A/REAL/PATH\n"
            "bad.nc,\n")
    manifest = write(tmp_path / "in.map_manifest", text)
    runner = MapManifestResolveRunner(manifest, str(output_dir), None, None, {"relative_path_root": str(root)})
    with pytest.raises(InvalidFileFormatError) as info:
        runner.run()
    assert info.value.args[0] == [
        "Field(s) \"dest_path\" duplicates in row \"2\" for values ('UNITTEST/NOT/A/REAL/PATH',): ",
        'There are 1 cast errors (see exception.errors) for row "3": '
        'Field "dest_path" has constraint "required" which is not satisfied for value "None"',
    ]
    assert [e.row_number for e in runner.errors] == [2, 3]
    assert all(isinstance(e, TableRowErrorDetails) for e in runner.errors)
    assert any("in.map_manifest" in note for note in info.value.__notes__)


@pytest.mark.parametrize("dest_path", ["../../etc/x.nc", "/abs/x.nc", "A/../../x.nc"])
def test_map_manifest_refuses_unsafe_dest_path(tmp_path, root, output_dir, dest_path):
    with pytest.raises(InvalidFileFormatError) as info:
        run_map(tmp_path, root, output_dir, f"good.nc,A/good.nc\nbad.nc,{dest_path}\n", name="evil.map_manifest")
    message = str(info.value)
    assert "evil.map_manifest" in message and "line 2" in message and dest_path in message


def test_map_manifest_missing_local_file(tmp_path, root, output_dir):
    with pytest.raises(MissingFileError, match=r"line 1: file '.*nope\.nc' doesn't exist"):
        run_map(tmp_path, root, output_dir, "nope.nc,A/nope.nc\n")


# ----------------------------------------------------------------------------------------------------------------
# delete manifest
# ----------------------------------------------------------------------------------------------------------------

def run_delete(tmp_path, output_dir, text, name="in.delete_manifest"):
    manifest = write(tmp_path / name, text)
    runner = get_resolve_runner(manifest, str(output_dir), None, None,
                                {"allow_delete_manifests": True, "relative_path_root": str(tmp_path)})
    return runner.run()


def test_delete_manifest_example(tmp_path, output_dir):
    collection = run_delete(tmp_path, output_dir, "UNITTEST/NOT/A/REAL/PATH\nUNITTEST/NOT/A/REAL/PATH/EITHER\n")
    assert [(f.name, f.dest_path, f.local_path, f.is_deletion) for f in collection] == [
        ("PATH", "UNITTEST/NOT/A/REAL/PATH", None, True),
        ("EITHER", "UNITTEST/NOT/A/REAL/PATH/EITHER", None, True),
    ]
    assert all(f.publish_type is PipelineFilePublishType.UNSET for f in collection)


def test_delete_manifest_extra_column_message(tmp_path, output_dir):
    with pytest.raises(InvalidFileFormatError) as info:
        run_delete(tmp_path, output_dir, "UNITTEST/NOT/A/REAL/PATH\nUNITTEST/NOT/A/REAL/PATH/EITHER,extra\n")
    assert info.value.args[0] == ['Row length 2 doesn\'t match fields count 1 for row "2": ']


def test_delete_manifest_same_basename_is_a_duplicate(tmp_path, output_dir):
    with pytest.raises(DuplicatePipelineFileError, match="line 2"):
        run_delete(tmp_path, output_dir, "A/x.nc\nB/x.nc\n")


@pytest.mark.parametrize("dest_path", ["../x.nc", "/IMOS/x.nc", "IMOS/../../x.nc"])
def test_delete_manifest_refuses_unsafe_dest_path(tmp_path, output_dir, dest_path):
    with pytest.raises(InvalidFileFormatError) as info:
        run_delete(tmp_path, output_dir, f"IMOS/a.nc\n{dest_path}\n", name="evil.delete_manifest")
    message = str(info.value)
    assert "evil.delete_manifest" in message and "line 2" in message and dest_path in message


# ----------------------------------------------------------------------------------------------------------------
# rsync manifest
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "expected"), [
    ("receiving incremental file list", RsyncManifestLine(None, RsyncLineType.HEADER)),
    ("*deleting   aoml/1900709/profiles/", RsyncManifestLine("aoml/1900709/profiles/", RsyncLineType.DIRECTORY_DELETE)),
    (".d..t...... aoml/1900709/", RsyncManifestLine("aoml/1900709/", RsyncLineType.DIRECTORY_ADD)),
    (">f.st...... test_manifest.nc", RsyncManifestLine("test_manifest.nc", RsyncLineType.FILE_ADD)),
    (">f+++++++++ a b.nc", RsyncManifestLine("a b.nc", RsyncLineType.FILE_ADD)),
    ("*deleting   aoml/1900728/1900728_Rtraj.nc",
     RsyncManifestLine("aoml/1900728/1900728_Rtraj.nc", RsyncLineType.FILE_DELETE)),
    (".f..t...... touched.nc", RsyncManifestLine("touched.nc", RsyncLineType.INVALID)),
    ("<f.st...... sent.nc", RsyncManifestLine(None, RsyncLineType.INVALID)),
    ("", RsyncManifestLine(None, RsyncLineType.INVALID)),
    ("sent 1,234 bytes  received 56 bytes", RsyncManifestLine(None, RsyncLineType.INVALID)),
])
def test_rsync_classify_line(line, expected):
    result = RsyncManifestResolveRunner.classify_line(line)
    assert (result.path, result.type) == (expected.path, expected.type)


def test_rsync_manifest_example(tmp_path, root, output_dir):
    text = ("receiving incremental file list\n"
            "*deleting   aoml/1900709/profiles/\n"
            ".d..t...... aoml/1900709/\n"
            ">f.st...... test_manifest.nc\n"
            "*deleting   aoml/1900728/1900728_Rtraj.nc\n"
            "\n"
            "sent 1,234 bytes  received 56 bytes  2,580.00 bytes/sec\n")
    manifest = write(tmp_path / "in.rsync_manifest", text)
    collection = RsyncManifestResolveRunner(manifest, str(output_dir), None, None,
                                            {"relative_path_root": str(root), "allow_delete_manifests": True}).run()
    assert [(f.src_path, f.is_deletion, f.dest_path) for f in collection] == [
        (str(root / "test_manifest.nc"), False, None),
        (str(root / "aoml/1900728/1900728_Rtraj.nc"), True, None),
    ]
    # deletions need the same opt-in as delete manifests: without it the whole manifest is refused
    with pytest.raises(InvalidFileFormatError, match=r"line 5: deletion of 'aoml/1900728/1900728_Rtraj.nc' refused"):
        RsyncManifestResolveRunner(manifest, str(output_dir), None, None, {"relative_path_root": str(root)}).run()


@pytest.mark.parametrize("line", [">f.st...... ../outside.nc", "*deleting   aoml/../../x.nc"])
def test_rsync_manifest_refuses_parent_references(tmp_path, root, output_dir, line):
    manifest = write(tmp_path / "evil.rsync_manifest", f"receiving incremental file list\n{line}\n")
    with pytest.raises(InvalidFileFormatError, match=r"evil\.rsync_manifest' line 2"):
        RsyncManifestResolveRunner(manifest, str(output_dir), None, None,
                                   {"relative_path_root": str(root), "allow_delete_manifests": True}).run()


def test_rsync_manifest_missing_addition(tmp_path, root, output_dir):
    manifest = write(tmp_path / "in.rsync_manifest", ">f.st...... not_there.nc\n")
    with pytest.raises(MissingFileError, match="line 1"):
        RsyncManifestResolveRunner(manifest, str(output_dir), None, None, {"relative_path_root": str(root)}).run()


# ----------------------------------------------------------------------------------------------------------------
# other S3 inputs
# ----------------------------------------------------------------------------------------------------------------

def test_single_file_from_s3_copy_keeps_landing_object(s3, imos_dir, output_dir):
    s3.create_bucket(Bucket="landing")
    s3.upload_file(str(imos_dir / GOOD_NC), "landing", f"incoming/{GOOD_NC}")
    collection = get_resolve_runner(f"s3://landing/incoming/{GOOD_NC}", str(output_dir), None, None).run()
    assert [f.src_path for f in collection] == [str(output_dir / GOOD_NC)]
    assert filecmp.cmp(collection[0].src_path, imos_dir / GOOD_NC, shallow=False)
    assert s3.head_object(Bucket="landing", Key=f"incoming/{GOOD_NC}")


def test_gzip_from_s3(s3, imos_dir, tmp_path):
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key=f"{GOOD_NC}.gz", Body=gzip.compress((imos_dir / GOOD_NC).read_bytes()))
    work = tmp_path / "work"
    (work / "collection").mkdir(parents=True)
    collection = GzipFileResolveRunner(f"s3://landing/{GOOD_NC}.gz", str(work / "collection"), None, None).run()
    assert [f.name for f in collection] == [GOOD_NC]
    assert sorted(p.name for p in work.iterdir()) == ["collection"]
