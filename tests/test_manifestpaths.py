"""``aodncore.pipeline.steps.manifestpaths``: which files a manifest may name, and how they are taken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aodncore.pipeline.defaultconfig import default_config
from aodncore.pipeline.exceptions import (
    DuplicateManifestEntryError,
    ManifestEntryMissingError,
    MissingFileError,
    PipelineProcessingError,
    UnsafeManifestEntryError,
)
from aodncore.pipeline.steps.manifestpaths import LandingContext, ManifestPaths, _is_under


def describe(location):
    return f"manifest 'm' {location}"


@pytest.fixture
def tree(tmp_path):
    landing = tmp_path / "landing"
    (landing / "sub").mkdir(parents=True)
    (landing / "sub" / "a.nc").write_bytes(b"a")
    (landing / "b.nc").write_bytes(b"b")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    work = tmp_path / "work"
    work.mkdir()
    return landing, outside, work


def landed(landing, work, config=None, params=None, area=None):
    manifest = landing / "sub" / "m.manifest"
    context = LandingContext(area=str(area or landing), location=str(manifest))
    return ManifestPaths(str(work / "m.manifest"), config, params, context, str(work / "out"), describe)


def test_is_under_respects_component_boundaries():
    assert _is_under("/data/landing/x", "/data/landing")
    assert _is_under("/data/landing", "/data/landing")
    assert not _is_under("/data/landing2/x", "/data/landing")
    assert _is_under("s3://b/incoming/x", "s3://b/incoming/")
    assert not _is_under("s3://b/incoming2/x", "s3://b/incoming")
    assert not _is_under("s3://b/incoming/x", "/b/incoming")


def test_landing_mode_resolves_relative_entries_in_the_manifest_folder_and_copies(tree):
    landing, _, work = tree
    paths = landed(landing, work)
    copied = paths.file("line 1", "a.nc")
    assert copied == str(work / "out" / "a.nc") and Path(copied).read_bytes() == b"a"
    # '..' may move within the landing area
    assert Path(paths.file("line 2", "../b.nc")).read_bytes() == b"b"
    assert paths.relative_root == str(landing / "sub")


def test_landing_mode_keeps_names_of_different_files_with_one_name(tree):
    landing, _, work = tree
    (landing / "a.nc").write_bytes(b"other a")
    paths = landed(landing, work)
    first, second = paths.file("line 1", "a.nc"), paths.file("line 2", "../a.nc")
    assert os.path.basename(first) == os.path.basename(second) == "a.nc" and first != second
    assert Path(second).read_bytes() == b"other a"


@pytest.mark.parametrize("entry", ["../../outside/secret", "{outside}/secret", "file-in-etc"])
def test_entries_outside_every_root_are_refused(tree, entry):
    landing, outside, work = tree
    paths = landed(landing, work)
    entry = "/etc/passwd" if entry == "file-in-etc" else entry.format(outside=outside)
    with pytest.raises(UnsafeManifestEntryError, match="outside the allowed manifest roots") as caught:
        paths.file("line 3", entry)
    assert "manifest 'm' line 3" in str(caught.value)
    assert isinstance(caught.value, PipelineProcessingError)
    assert not (work / "out").exists() or not os.listdir(work / "out")


def test_symlinks_out_of_the_roots_are_refused_and_inside_allowed(tree):
    landing, outside, work = tree
    (landing / "sub" / "out.nc").symlink_to(outside / "secret")
    (landing / "sub" / "in.nc").symlink_to(landing / "b.nc")
    (landing / "sub" / "outdir").symlink_to(outside)
    paths = landed(landing, work)
    with pytest.raises(UnsafeManifestEntryError, match="is a symbolic link to"):
        paths.file("line 1", "out.nc")
    with pytest.raises(UnsafeManifestEntryError, match="is a symbolic link to"):
        paths.file("line 2", "outdir/secret")
    assert Path(paths.file("line 3", "in.nc")).read_bytes() == b"b"


def test_a_file_swapped_for_a_symlink_after_the_check_is_refused_when_copied(tree):
    landing, outside, work = tree
    paths = landed(landing, work)
    target = landing / "sub" / "swap.nc"
    target.symlink_to(outside / "secret")  # what the copy finds instead of the file that was checked
    with pytest.raises(UnsafeManifestEntryError, match="cannot be read"):
        paths._copy("line 1", "swap.nc", str(target))
    # a parent folder swapped for a link is caught by what the descriptor really points at
    (landing / "moved").symlink_to(outside)
    with pytest.raises(UnsafeManifestEntryError, match="was replaced by"):
        paths._copy("line 2", "moved/secret", str(landing / "moved" / "secret"))


def test_missing_and_duplicate_entries_are_data_errors_keeping_the_classic_classes(tree):
    landing, _, work = tree
    paths = landed(landing, work)
    with pytest.raises(ManifestEntryMissingError, match="doesn't exist") as missing:
        paths.file("line 1", "nothing.nc")
    assert isinstance(missing.value, MissingFileError) and isinstance(missing.value, PipelineProcessingError)
    paths.file("line 2", "a.nc")
    with pytest.raises(DuplicateManifestEntryError, match="same file as line 2"):
        paths.file("line 3", "./a.nc")


def test_configured_roots_replace_the_default(tree, tmp_path):
    landing, outside, work = tree
    config = default_config(tmp_path / "base", {"global": {"manifest_roots": [outside.as_uri()]}})
    paths = landed(landing, work, config=config)
    assert Path(paths.file("line 1", str(outside / "secret"))).read_bytes() == b"secret"
    with pytest.raises(UnsafeManifestEntryError, match="outside the allowed manifest roots"):
        paths.file("line 2", "a.nc")


def test_an_explicit_relative_path_root_is_used_and_allowed(tree):
    landing, outside, work = tree
    paths = landed(landing, work, params={"relative_path_root": str(outside)})
    assert Path(paths.file("line 1", "secret")).read_bytes() == b"secret"


def test_plain_path_mode_keeps_the_classic_relative_root_and_uses_files_in_place(tree, tmp_path):
    landing, outside, work = tree
    config = default_config(tmp_path / "base", {"global": {"wip_dir": str(landing / "sub")}})
    manifest = outside / "m.manifest"  # beside it: the manifest's own folder is a root as well
    paths = ManifestPaths(str(manifest), config, None, None, str(work / "out"), describe)
    assert paths.file("line 1", "a.nc") == str(landing / "sub" / "a.nc")  # in place, relative to wip_dir
    assert paths.file("line 2", str(outside / "secret")) == str(outside / "secret")
    with pytest.raises(UnsafeManifestEntryError):
        paths.file("line 3", str(landing / "b.nc"))


def test_deletion_paths_must_not_leave_the_roots(tree):
    landing, _, work = tree
    paths = landed(landing, work)
    assert paths.deletion_path("line 1", "gone/x.nc") == str(landing / "sub" / "gone" / "x.nc")
    with pytest.raises(UnsafeManifestEntryError):
        paths.deletion_path("line 2", "/etc/x.nc")


def test_s3_landing_entries_are_checked_lexically(tree):
    landing, _, work = tree
    context = LandingContext(area="s3://bucket/incoming/", location="s3://bucket/incoming/sub/m.manifest")
    paths = ManifestPaths(str(work / "m.manifest"), None, None, context, str(work / "out"), describe)
    assert paths.absolute("a.nc") == "s3://bucket/incoming/sub/a.nc"
    assert paths.absolute("../b.nc") == "s3://bucket/incoming/b.nc"
    for entry in ("../../elsewhere/x.nc", "s3://other/incoming/x.nc", "/etc/passwd"):
        with pytest.raises(UnsafeManifestEntryError, match="outside the allowed manifest roots"):
            paths.file("line 1", entry)
