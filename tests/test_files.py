"""Tests for aodncore.pipeline.files: PipelineFile, RemotePipelineFile and their collections (spec §4)."""

from __future__ import annotations

import os
import re
import warnings
from collections import OrderedDict
from unittest import mock

import pytest

from aodncore.pipeline.common import CheckResult, FileType, PipelineFileCheckType, PipelineFilePublishType
from aodncore.pipeline.exceptions import AttributeValidationError, DuplicatePipelineFileError, MissingFileError
from aodncore.pipeline.files import (
    PipelineFile,
    PipelineFileCollection,
    RemotePipelineFile,
    RemotePipelineFileCollection,
    ensure_pipelinefilecollection,
    ensure_remotepipelinefilecollection,
    validate_pipelinefile_or_pipelinefilecollection,
    validate_pipelinefile_or_string,
    validate_pipelinefilecollection,
    validate_remotepipelinefile_or_string,
)
from aodncore.util.fileops import get_file_checksum

PT = PipelineFilePublishType
CT = PipelineFileCheckType

NC1 = "IMOS_ACORN_V_20101201T050000Z_BONC_FV00_sea-state.nc"
NC2 = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-realtime.nc"
NC3 = "IMOS_SOOP-XBT_T_20160106T110100Z_PX02_FV01_ID-150739.nc"
CSV = "bgc_trip.csv"

PIPELINEFILE_KEYS = {
    "archive_path", "check_log", "check_passed", "check_result", "check_type", "dest_path", "extension",
    "file_checksum", "file_update_callback", "is_archived", "is_checked", "is_deleted", "is_deletion",
    "is_harvest_undone", "is_harvested", "is_overwrite", "is_stored", "is_upload_undone", "is_uploaded",
    "late_deletion", "local_path", "mime_type", "name", "pending_archive", "pending_harvest",
    "pending_harvest_addition", "pending_harvest_deletion", "pending_harvest_early_deletion",
    "pending_harvest_late_deletion", "pending_harvest_undo", "pending_store", "pending_store_addition",
    "pending_store_deletion", "pending_store_undo", "pending_undo", "publish_type", "published", "should_archive",
    "should_harvest", "should_store", "should_undo", "src_path",
}


@pytest.fixture
def files(imos_file):
    """Paths (str) of four real files copied into a temp dir."""
    return [str(imos_file(name)) for name in (NC1, NC2, NC3, CSV)]


@pytest.fixture
def collection(files):
    return PipelineFileCollection(files)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# PipelineFile
# ---------------------------------------------------------------------------------------------------------------------

def test_pipelinefile_basic_properties(files):
    pf = PipelineFile(files[0])
    assert pf.name == NC1
    assert pf.local_path == pf.src_path == files[0]
    assert pf.extension == ".nc"
    assert pf.file_type is FileType.NETCDF
    assert pf.mime_type == "application/octet-stream"
    assert pf.file_checksum == get_file_checksum(files[0])
    assert pf.dest_path is None and pf.archive_path is None
    assert pf.check_type is CT.UNSET and pf.publish_type is PT.UNSET
    assert pf.is_overwrite is None and pf.check_result is None
    assert not any([pf.should_archive, pf.should_store, pf.should_harvest, pf.should_undo, pf.is_checked,
                    pf.is_archived, pf.is_harvested, pf.is_stored, pf.is_deletion, pf.late_deletion])
    assert pf.check_log == "" and pf.check_passed == "N/A" and pf.published == "No"


def test_pipelinefile_constructor_arguments(files):
    callback = Recorder()
    pf = PipelineFile(files[0], name="other.nc", archive_path="/abs/not/validated", dest_path="IMOS/x.nc",
                      file_update_callback=callback, check_type=CT.NO_ACTION, publish_type=PT.HARVEST_UPLOAD)
    assert pf.name == "other.nc"
    assert pf.archive_path == "/abs/not/validated"
    assert pf.dest_path == "IMOS/x.nc"
    assert pf.file_update_callback is callback
    assert pf.check_type is CT.NO_ACTION
    assert pf.publish_type is PT.HARVEST_UPLOAD and pf.should_store and pf.should_harvest
    with pytest.raises(TypeError):
        PipelineFile(files[0], file_update_callback="not callable")
    with pytest.raises(ValueError):
        PipelineFile(files[0], check_type=CT.UNSET)


def test_pipelinefile_dict_keys_and_str(files):
    pf = PipelineFile(files[0])
    as_dict = dict(pf)
    assert set(as_dict) == PIPELINEFILE_KEYS
    assert "file_type" not in as_dict
    assert as_dict["name"] == NC1
    assert str(pf).startswith("PipelineFile({") and str(pf).endswith("})")


def test_pipelinefile_slots_reject_unknown_attributes(files):
    pf = PipelineFile(files[0])
    with pytest.raises(AttributeError):
        pf.random_name = 1
    pf.file_type = FileType.CSV  # the one public writable slot
    assert pf.file_type is FileType.CSV


def test_missing_file_checksum(tmp_path):
    missing = str(tmp_path / "missing.nc")
    pf = PipelineFile(missing)
    with pytest.raises(MissingFileError, match=rf"^failed to determine checksum for RemoteFile '{missing}'\."):
        _ = pf.file_checksum
    with pytest.raises(MissingFileError):
        PipelineFileCollection().add(pf)


def test_equality_and_hash(files):
    a, b = PipelineFile(files[0]), PipelineFile(files[0])
    assert a == b and hash(a) == hash(b)
    assert a != PipelineFile(files[0], name="renamed.nc")
    assert a != PipelineFile(files[1])
    assert a != RemotePipelineFile(files[0])
    assert a != files[0]


def test_deletion_file(tmp_path):
    pf = PipelineFile("does/not/exist.nc", is_deletion=True, late_deletion=True)
    assert pf.file_checksum is None
    assert pf.is_deletion and pf.late_deletion
    with pytest.raises(ValueError):
        pf.check_type = CT.FORMAT_CHECK
    with pytest.raises(ValueError):
        pf.should_undo = True
    with pytest.raises(ValueError):
        pf.publish_type = PT.HARVEST_UPLOAD
    pf.publish_type = PT.DELETE_UNHARVEST
    assert pf.should_store and pf.should_harvest and not pf.should_archive
    assert hash(pf) == hash(PipelineFile("does/not/exist.nc", is_deletion=True))
    # QUIRK (§17.38): path-less deletions with equal names are equal
    assert PipelineFile("x.nc", is_deletion=True) == PipelineFile("x.nc", is_deletion=True)
    pf.is_stored = True
    assert pf.is_deleted and not pf.is_uploaded


def test_publish_type_setter_validation(files):
    pf = PipelineFile(files[0])
    with pytest.raises(TypeError):
        pf.publish_type = "invalid"
    with pytest.raises(ValueError):
        pf.publish_type = PT.UNSET
    with pytest.raises(ValueError):
        pf.publish_type = PT.DELETE_ONLY
    pf.publish_type = PT.NO_ACTION
    assert pf.publish_type is PT.NO_ACTION
    deletion = PipelineFile("gone.nc", is_deletion=True)
    deletion.publish_type = PT.NO_ACTION
    assert deletion.publish_type is PT.NO_ACTION


def test_check_type_setter_validation(files):
    pf = PipelineFile(files[0])
    with pytest.raises(ValueError):
        pf.check_type = "invalid"
    with pytest.raises(ValueError):
        pf.check_type = CT.UNSET
    pf.check_type = CT.NC_COMPLIANCE_CHECK
    assert pf.check_type is CT.NC_COMPLIANCE_CHECK


@pytest.mark.parametrize(
    "publish_type, is_deletion, late, expected",
    [
        (PT.NO_ACTION, False, False, set()),
        (PT.ARCHIVE_ONLY, False, False, {"pending_archive"}),
        (PT.UPLOAD_ONLY, False, False, {"pending_store", "pending_store_addition"}),
        (PT.HARVEST_ONLY, False, False, {"pending_harvest", "pending_harvest_addition"}),
        (PT.HARVEST_ARCHIVE, False, False, {"pending_archive", "pending_harvest", "pending_harvest_addition"}),
        (PT.HARVEST_UPLOAD, False, False,
         {"pending_harvest", "pending_harvest_addition", "pending_store", "pending_store_addition"}),
        (PT.HARVEST_ARCHIVE_UPLOAD, False, False,
         {"pending_archive", "pending_harvest", "pending_harvest_addition", "pending_store",
          "pending_store_addition"}),
        (PT.UNHARVEST_ONLY, True, False,
         {"pending_harvest", "pending_harvest_deletion", "pending_harvest_early_deletion"}),
        (PT.UNHARVEST_ONLY, True, True,
         {"pending_harvest", "pending_harvest_deletion", "pending_harvest_late_deletion"}),
        (PT.DELETE_ONLY, True, False, {"pending_store", "pending_store_deletion"}),
        (PT.DELETE_UNHARVEST, True, False,
         {"pending_harvest", "pending_harvest_deletion", "pending_harvest_early_deletion", "pending_store",
          "pending_store_deletion"}),
    ],
)
def test_publish_type_to_pending_flags(files, publish_type, is_deletion, late, expected):
    path = "deleted.nc" if is_deletion else files[0]
    pf = PipelineFile(path, is_deletion=is_deletion, late_deletion=late)
    pf.publish_type = publish_type
    pending = {key for key, value in dict(pf).items() if key.startswith("pending_") and value}
    assert pending == expected


def test_pending_flags_progress_and_undo(files):
    pf = PipelineFile(files[0], publish_type=PT.HARVEST_ARCHIVE_UPLOAD)
    pf.is_archived = True
    pf.is_harvested = True
    assert not pf.pending_archive and not pf.pending_harvest and pf.pending_store
    assert pf.published == "No"
    pf.should_undo = True
    assert not pf.pending_store
    assert pf.pending_harvest_undo and pf.pending_store_undo and pf.pending_undo
    pf.is_harvest_undone = True
    pf.is_upload_undone = True
    assert not pf.pending_undo


@pytest.mark.parametrize(
    "publish_type, stored, harvested, expected",
    [
        (PT.HARVEST_UPLOAD, True, True, "Yes"),
        (PT.HARVEST_UPLOAD, True, False, "No"),
        (PT.HARVEST_UPLOAD, False, True, "No"),
        (PT.UPLOAD_ONLY, True, False, "Yes"),
        (PT.HARVEST_ONLY, False, True, "Yes"),
        (PT.ARCHIVE_ONLY, False, False, "No"),
    ],
)
def test_published(files, publish_type, stored, harvested, expected):
    pf = PipelineFile(files[0], publish_type=publish_type)
    pf.is_stored = stored
    pf.is_harvested = harvested
    assert pf.published == expected


def test_published_respects_undo(files):
    pf = PipelineFile(files[0], publish_type=PT.UPLOAD_ONLY)
    pf.is_stored = True
    pf.is_upload_undone = True
    assert pf.published == "No"


def test_path_setters(files):
    pf = PipelineFile(files[0])
    pf.dest_path = "IMOS/a/b.nc"
    pf.archive_path = "IMOS/archive/b.nc"
    assert pf.dest_path == "IMOS/a/b.nc" and pf.archive_path == "IMOS/archive/b.nc"
    with pytest.raises(ValueError, match=r"^error validating 'dest_path': path '/abs' must be a relative path$"):
        pf.dest_path = "/abs"
    with pytest.raises(ValueError, match=r"^error validating 'archive_path'"):
        pf.archive_path = "/abs"
    with pytest.raises(TypeError):
        pf.dest_path = None


def test_check_result_and_derived(files):
    pf = PipelineFile(files[0])
    with pytest.raises(TypeError):
        pf.check_result = "passed"
    pf.check_result = CheckResult(False, ["line one", "line two"])
    assert pf.is_checked
    assert pf.check_passed == "False"
    assert pf.check_log == os.linesep.join(["line one", "line two"])
    pf.check_result = CheckResult(True, ())
    assert pf.check_passed == "True" and pf.check_log == ""


@pytest.mark.parametrize("flag", ["is_archived", "is_harvested", "is_stored", "is_overwrite", "is_harvest_undone",
                                  "is_upload_undone", "should_undo"])
def test_bool_flags_validated(files, flag):
    pf = PipelineFile(files[0])
    with pytest.raises(TypeError):
        setattr(pf, flag, 1)
    setattr(pf, flag, True)
    assert getattr(pf, flag) is True


@pytest.mark.parametrize("flag", ["is_checked", "is_deletion", "late_deletion", "is_deleted", "is_uploaded",
                                  "should_store", "pending_store", "published", "src_path", "file_checksum"])
def test_read_only_properties(files, flag):
    pf = PipelineFile(files[0])
    with pytest.raises(AttributeError):
        setattr(pf, flag, True)


def test_mime_type(files, tmp_path):
    assert PipelineFile(files[3]).mime_type == "text/csv"
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    assert PipelineFile(str(txt)).mime_type == "text/plain"
    odd = tmp_path / "weird.zzqq"
    odd.write_text("x")
    pf = PipelineFile(str(odd))
    assert pf.mime_type == "application/octet-stream"
    pf.mime_type = "application/x-custom"
    assert pf.mime_type == "application/x-custom"
    with pytest.raises(TypeError):
        pf.mime_type = 5


def test_update_callback_protocol(files):
    recorder = Recorder()
    pf = PipelineFile(files[0], file_update_callback=recorder)
    pf.publish_type = PT.HARVEST_UPLOAD
    pf.check_type = CT.FORMAT_CHECK
    pf.dest_path = "IMOS/x.nc"
    pf.archive_path = "IMOS/y.nc"
    pf.check_result = CheckResult(True, [])
    pf.is_stored = True
    pf.mime_type = "text/plain"
    pf.should_undo = False
    assert all(set(call) == {"name", "is_deletion", "message"} for call in recorder.calls)
    assert all(call["name"] == NC1 and call["is_deletion"] is False for call in recorder.calls)
    assert [call["message"] for call in recorder.calls] == [
        str({"publish_type": "HARVEST_UPLOAD"}),
        str({"check_type": "FORMAT_CHECK"}),
        str({"dest_path": "IMOS/x.nc"}),
        str({"archive_path": "IMOS/y.nc"}),
        str({"is_checked": True}),
        str({"is_stored": True}),
        str({"mime_type": "text/plain"}),
        str({"should_undo": False}),
    ]


def test_update_callback_must_accept_keywords_only(files):
    def positional_only(a, b, c, /):
        pass

    pf = PipelineFile(files[0], file_update_callback=positional_only)
    with pytest.raises(TypeError):
        pf.is_stored = True


def test_from_remotepipelinefile(files):
    remote = RemotePipelineFile("IMOS/dir/remote.nc", local_path=files[0])
    pf = PipelineFile.from_remotepipelinefile(remote, publish_type=PT.UPLOAD_ONLY)
    assert pf.local_path == files[0] and pf.dest_path == "IMOS/dir/remote.nc" and pf.name == "remote.nc"
    assert pf.publish_type is PT.UPLOAD_ONLY
    renamed = PipelineFile.from_remotepipelinefile(remote, name="other.nc")
    assert renamed.name == "other.nc"
    deletion = PipelineFile.from_remotepipelinefile(RemotePipelineFile("IMOS/d.nc", local_path="d.nc"),
                                                    is_deletion=True, late_deletion=True)
    assert deletion.is_deletion and deletion.late_deletion and deletion.file_checksum is None


# ---------------------------------------------------------------------------------------------------------------------
# RemotePipelineFile
# ---------------------------------------------------------------------------------------------------------------------

def test_remotepipelinefile_basics():
    rf = RemotePipelineFile("IMOS/ANMN/file.nc", size=10)
    assert rf.name == "file.nc"
    assert rf.size == 10 and rf.last_modified is None
    assert rf.local_path is None and rf.file_checksum is None
    assert rf.extension is None and rf.file_type is FileType.UNKNOWN
    assert dict(rf) == {"dest_path": "IMOS/ANMN/file.nc", "extension": None, "file_checksum": None,
                        "last_modified": None, "local_path": None, "name": "file.nc", "size": 10}
    with pytest.raises(AttributeError):
        rf.random_name = 1


def test_remotepipelinefile_string_delegation():
    rf = RemotePipelineFile("IMOS/ANMN/file.nc")
    assert rf.startswith("IMOS/")
    assert rf.endswith(".nc")
    assert rf.split("/") == ["IMOS", "ANMN", "file.nc"]
    assert rf[0] == "I" and rf[-3:] == ".nc"
    with pytest.raises(AttributeError):
        _ = rf.definitely_not_a_str_method
    with pytest.raises(AttributeError):
        _ = rf._private_thing


def test_remotepipelinefile_equality_ignores_local_path_and_size():
    a = RemotePipelineFile("IMOS/x.nc", local_path="/tmp/a", size=1)
    b = RemotePipelineFile("IMOS/x.nc", local_path="/tmp/b", size=2)
    assert a == b and hash(a) == hash(b)
    assert a != RemotePipelineFile("IMOS/y.nc")
    assert a != RemotePipelineFile("IMOS/x.nc", name="other")


def test_remotepipelinefile_local_path_setter_and_remove_local(files):
    rf = RemotePipelineFile("IMOS/x.nc")
    rf.local_path = files[3]
    assert rf.extension == ".csv" and rf.file_type is FileType.CSV
    assert rf.file_checksum == get_file_checksum(files[3])
    rf.local_path = files[0]
    assert rf.file_type is FileType.NETCDF
    assert rf.file_checksum == get_file_checksum(files[0])
    rf.remove_local()
    assert rf.local_path is None and rf.file_checksum is None
    assert not os.path.exists(files[0])
    rf.local_path = files[0]  # no longer exists
    rf.remove_local()  # missing file ignored


def test_remotepipelinefile_from_pipelinefile(files):
    pf = PipelineFile(files[0], dest_path="IMOS/y.nc")
    rf = RemotePipelineFile.from_pipelinefile(pf)
    assert rf.dest_path == "IMOS/y.nc" and rf.name == NC1 and rf.local_path is None


# ---------------------------------------------------------------------------------------------------------------------
# PipelineFileCollection: construction and container protocol
# ---------------------------------------------------------------------------------------------------------------------

def test_collection_construction_variants(files):
    assert len(PipelineFileCollection()) == 0 and not PipelineFileCollection()
    assert len(PipelineFileCollection(files[0])) == 1
    assert len(PipelineFileCollection(PipelineFile(files[0]))) == 1
    assert len(PipelineFileCollection(f for f in files)) == 4
    collection = PipelineFileCollection(files)
    assert [f.src_path for f in collection] == files  # insertion order
    with pytest.raises(TypeError):
        PipelineFileCollection([1])


def test_collection_contains_index_slice(collection, files):
    assert files[0] in collection
    assert "/not/in/collection" not in collection
    assert PipelineFile(files[1]) in collection
    assert collection[1].src_path == files[1]
    assert collection[-1].name == CSV
    sliced = collection[1:3]
    assert isinstance(sliced, PipelineFileCollection)
    assert [f.src_path for f in sliced] == files[1:3]
    assert sliced[0] is collection[1]


def test_repr_survives_vanished_file(files):
    pf = PipelineFile(files[0])
    os.remove(files[0])
    assert NC1 in repr(pf)
    with pytest.raises(MissingFileError):
        str(pf)


def test_collection_repr_and_unhashable(collection):
    assert repr(collection).startswith("PipelineFileCollection([PipelineFile(")
    with pytest.raises(TypeError):
        hash(collection)


def test_collection_add_strings(files, tmp_path):
    collection = PipelineFileCollection()
    assert collection.add(files[0], dest_path="IMOS/a.nc", publish_type=PT.UPLOAD_ONLY, check_type=CT.NO_ACTION)
    added = collection[0]
    assert added.dest_path == "IMOS/a.nc" and added.publish_type is PT.UPLOAD_ONLY and added.check_type is CT.NO_ACTION
    with pytest.raises(MissingFileError, match=r"^file '.*nope\.nc' doesn't exist$"):
        collection.add(str(tmp_path / "nope.nc"))
    assert collection.add("gone/nope.nc", is_deletion=True, late_deletion=True)
    assert collection[1].is_deletion and collection[1].late_deletion
    with pytest.raises(TypeError):
        collection.add(1)
    with pytest.raises(TypeError):
        collection.add(files[1], is_deletion="yes")
    with pytest.raises(TypeError):
        collection.add(files[1], overwrite="yes")
    assert collection.append(files[1])
    assert len(collection) == 3


def test_collection_add_object_ignores_kwargs(files):
    collection = PipelineFileCollection()
    pf = PipelineFile(files[0])
    collection.add(pf, dest_path="IMOS/ignored.nc")
    assert collection[0] is pf and pf.dest_path is None


def test_collection_duplicates_and_overwrite(files):
    collection = PipelineFileCollection(files[:2])
    with pytest.raises(DuplicatePipelineFileError, match=rf"^{NC1} already in collection$"):
        collection.add(files[0])
    replacement = PipelineFile(files[0], dest_path="IMOS/new.nc")
    assert collection.add(replacement, overwrite=True)
    assert len(collection) == 2
    assert replacement in collection
    assert collection.get_pipelinefile_from_src_path(files[0]) is replacement


def test_collection_unique_attributes(files):
    collection = PipelineFileCollection()
    collection.add(PipelineFile(files[0], dest_path="IMOS/same.nc"))
    with pytest.raises(AttributeValidationError):
        collection.add(PipelineFile(files[1], dest_path="IMOS/same.nc"))
    with pytest.raises(AttributeValidationError):
        PipelineFileCollection([PipelineFile(files[0], archive_path="a/x.nc"),
                                PipelineFile(files[1], archive_path="a/x.nc")])
    # None values are not compared
    collection.add(files[1])
    collection.add(files[2])
    # uniqueness validation can be switched off
    relaxed = PipelineFileCollection([PipelineFile(files[0], dest_path="IMOS/same.nc"),
                                      PipelineFile(files[1], dest_path="IMOS/same.nc")], validate_unique=False)
    assert len(relaxed) == 2
    with pytest.raises(AttributeValidationError):
        relaxed.validate_attribute_uniqueness("dest_path")


def test_collection_patch_targets(files, tmp_path):
    fake_path = str(tmp_path / "not_really_there.nc")
    with mock.patch("os.path.isfile", return_value=True), \
            mock.patch("aodncore.pipeline.files.get_file_checksum", return_value="fakechecksum") as checksum:
        collection = PipelineFileCollection()
        collection.add(fake_path)
        assert collection[0].file_checksum == "fakechecksum"
        checksum.assert_called_with(fake_path)


def test_collection_set_semantics(files):
    a = PipelineFileCollection(files[:3])
    b = PipelineFileCollection(files[1:])
    assert [f.src_path for f in (a & b)] == files[1:3]
    assert len(a | b) == 4
    assert [f.src_path for f in (a - b)] == [files[0]]
    assert PipelineFileCollection(files[:2]) == PipelineFileCollection(list(reversed(files[:2])))
    assert PipelineFileCollection(files[:2]) <= a
    assert [f.src_path for f in (a ^ b)] == [files[0], files[3]]
    a -= b
    assert [f.src_path for f in a] == [files[0]]
    c = PipelineFileCollection(files[:1])
    c |= b
    assert len(c) == 4


def test_collection_remove_discard_pop_clear(files):
    collection = PipelineFileCollection(files)
    assert collection.discard(files[0]) is True
    assert collection.discard(files[0]) is False
    assert collection.discard("/never/there") is False
    assert collection.discard(PipelineFile(files[1])) is True
    with pytest.raises(TypeError):
        collection.discard(1)
    with pytest.raises(KeyError):
        collection.remove(PipelineFile(files[0]))
    collection.remove(collection[0])
    popped = collection.pop()
    assert popped.name == CSV and len(collection) == 0
    collection.update(files)
    collection.clear()
    assert len(collection) == 0


def test_collection_difference_subset_superset_union(files):
    full = PipelineFileCollection(files)
    part = PipelineFileCollection(files[:2])
    diff = full.difference(part)
    assert isinstance(diff, PipelineFileCollection)
    assert [f.src_path for f in diff] == files[2:]
    assert [f.src_path for f in full.difference([PipelineFile(files[0])])] == files[1:]
    assert part.issubset(full) and not full.issubset(part)
    assert full.issuperset(part) and not part.issuperset(full)
    union = part.union([PipelineFile(files[1]), PipelineFile(files[3])])
    assert [f.src_path for f in union] == [files[0], files[1], files[3]]
    with pytest.raises(TypeError):
        part.union([files[2]])


def test_collection_update(files):
    collection = PipelineFileCollection()
    assert collection.update(files[:2]) is True
    with pytest.raises(TypeError):
        collection.update(files[2])
    with pytest.raises(TypeError):
        collection.update({"a": 1})
    with pytest.raises(DuplicatePipelineFileError):
        collection.update([files[0]])
    assert collection.update([files[0]], overwrite=True)
    assert collection.update([]) is False


def test_collection_get_slices(collection):
    slices = collection.get_slices(3)
    assert [len(s) for s in slices] == [3, 1]
    assert all(isinstance(s, PipelineFileCollection) for s in slices)
    assert slices[1][0] is collection[3]
    assert PipelineFileCollection().get_slices(2) == []
    with pytest.raises(TypeError):
        collection.get_slices("2")


def test_collection_lookups(files):
    collection = PipelineFileCollection([PipelineFile(files[0], dest_path="IMOS/a.nc"), files[1]])
    assert collection.get_pipelinefile_from_dest_path("IMOS/a.nc") is collection[0]
    assert collection.get_pipelinefile_from_dest_path("IMOS/none.nc") is None
    assert collection.get_pipelinefile_from_src_path(files[1]) is collection[1]
    assert collection.get_pipelinefile_from_src_path("/x") is None
    assert collection.get_attribute_list("name") == [NC1, NC2]


# ---------------------------------------------------------------------------------------------------------------------
# filters
# ---------------------------------------------------------------------------------------------------------------------

def test_filters(collection):
    collection[0].publish_type = PT.HARVEST_UPLOAD
    collection[1].publish_type = PT.UPLOAD_ONLY
    collection[0].is_stored = True
    collection[2].is_harvested = True

    unset = collection.filter_by_attribute_id("publish_type", PT.UNSET)
    assert [f.name for f in unset] == [NC3, CSV]
    assert [f.name for f in collection.filter_by_attribute_id_not("publish_type", PT.UNSET)] == [NC1, NC2]
    assert [f.name for f in collection.filter_by_attribute_value("extension", ".csv")] == [CSV]
    assert [f.name for f in collection.filter_by_bool_attribute("should_store")] == [NC1, NC2]
    assert [f.name for f in collection.filter_by_bool_attribute_not("should_store")] == [NC3, CSV]
    assert [f.name for f in collection.filter_by_bool_attributes_and("should_store", "should_harvest")] == [NC1]
    assert [f.name for f in collection.filter_by_bool_attributes_or("is_stored", "is_harvested")] == [NC1, NC3]
    assert [f.name for f in collection.filter_by_bool_attributes_not("is_stored", "is_harvested")] == [NC2, CSV]
    assert [f.name for f in collection.filter_by_bool_attributes_and_not("should_store", "is_stored")] == [NC2]
    assert [f.name for f in collection.filter_by_bool_attributes_and_not(["should_store"],
                                                                         ["is_stored", "should_harvest"])] == [NC2]
    # results are new collections sharing the same member objects
    assert isinstance(unset, PipelineFileCollection) and unset is not collection
    unset[0].is_archived = True
    assert collection[2].is_archived


def test_filter_by_attribute_regexes(collection):
    assert [f.name for f in collection.filter_by_attribute_regexes("name", r"IMOS_ANMN")] == [NC2]
    assert [f.name for f in collection.filter_by_attribute_regex("name", [r"bgc", re.compile(r"IMOS_SOOP")])] == [
        NC3, CSV]
    # anchored at the start only
    assert [f.name for f in collection.filter_by_attribute_regex("name", r"ANMN")] == []
    with pytest.raises(TypeError):
        collection.filter_by_attribute_regexes("dest_path", r".*")


def test_filters_do_not_validate_uniqueness(files):
    collection = PipelineFileCollection([PipelineFile(files[0], dest_path="IMOS/same.nc"),
                                         PipelineFile(files[1], dest_path="IMOS/same.nc")], validate_unique=False)
    assert len(collection.filter_by_attribute_value("dest_path", "IMOS/same.nc")) == 2


def test_get_table_data(collection):
    columns, rows = collection.get_table_data()
    assert len(rows) == 4 and all(isinstance(row, OrderedDict) for row in rows)
    assert set(columns) == PIPELINEFILE_KEYS
    assert [row["name"] for row in rows] == [NC1, NC2, NC3, CSV]
    assert PipelineFileCollection().get_table_data() == ([], [])


def test_validate_attribute_value_matches_regexes(collection):
    collection.validate_attribute_value_matches_regexes("name", [r"IMOS_", r"bgc_"])
    with pytest.raises(AttributeValidationError, match="bgc_trip.csv"):
        collection.validate_attribute_value_matches_regexes("name", [r"IMOS_"])
    with pytest.raises(TypeError):
        collection.validate_attribute_value_matches_regexes("name", r"IMOS_")


def test_validate_unique_attribute_value(collection):
    collection.validate_unique_attribute_value("name", "new.nc")
    with pytest.raises(AttributeValidationError):
        collection.validate_unique_attribute_value("name", NC1)


# ---------------------------------------------------------------------------------------------------------------------
# set_* methods
# ---------------------------------------------------------------------------------------------------------------------

def test_set_publish_types(collection):
    with pytest.raises(TypeError):
        collection.set_publish_types("x")
    collection.set_publish_types(PT.HARVEST_ARCHIVE)
    assert collection.get_attribute_list("publish_type") == [PT.HARVEST_ARCHIVE] * 4
    collection.add("deleted.nc", is_deletion=True)
    with pytest.raises(ValueError):
        collection.set_publish_types(PT.HARVEST_ARCHIVE)


def test_set_check_types(collection):
    with pytest.raises(ValueError):
        collection.set_check_types("x")
    collection.add("deleted.nc", is_deletion=True)
    collection.set_check_types(CT.NONEMPTY_CHECK)
    assert collection.get_attribute_list("check_type") == [CT.NONEMPTY_CHECK] * 4 + [CT.UNSET]


def test_set_dest_and_archive_paths(files):
    collection = PipelineFileCollection(files)
    collection[0].publish_type = PT.HARVEST_ARCHIVE_UPLOAD
    collection[1].publish_type = PT.HARVEST_ONLY
    collection[2].publish_type = PT.ARCHIVE_ONLY
    collection[3].publish_type = PT.UPLOAD_ONLY
    collection[3].dest_path = "PRESET/keep.csv"
    collection.add("gone/deleted.nc", is_deletion=True, publish_type=PT.DELETE_ONLY)

    def dest(path):
        return "DEST/" + os.path.basename(path)

    def archive(path):
        return "ARCHIVE/" + os.path.basename(path)

    collection.set_dest_paths(dest)
    collection.set_archive_paths(archive)
    assert collection.get_attribute_list("dest_path") == ["DEST/" + NC1, "DEST/" + NC2, None, "PRESET/keep.csv",
                                                          "DEST/deleted.nc"]
    assert collection.get_attribute_list("archive_path") == ["ARCHIVE/" + NC1, None, "ARCHIVE/" + NC3, None, None]
    with pytest.raises(TypeError):
        collection.set_dest_paths("not callable")


def test_set_dest_paths_detects_clashes_and_absolute_paths(files):
    collection = PipelineFileCollection(files[:2])
    collection.set_publish_types(PT.UPLOAD_ONLY)
    with pytest.raises(AttributeValidationError):
        collection.set_dest_paths(lambda path: "SAME/path.nc")
    other = PipelineFileCollection(files[2:])
    other.set_publish_types(PT.UPLOAD_ONLY)
    with pytest.raises(ValueError, match="error validating 'dest_path'"):
        other.set_dest_paths(lambda path: path)  # absolute


def test_set_bool_string_and_callback(collection):
    collection.set_bool_attribute("is_harvested", True)
    assert all(collection.get_attribute_list("is_harvested"))
    for bad in (1, "x", []):
        with pytest.raises(TypeError):
            collection.set_bool_attribute("is_harvested", bad)
    collection.set_string_attribute("mime_type", "text/x-test")
    assert set(collection.get_attribute_list("mime_type")) == {"text/x-test"}
    with pytest.raises(TypeError):
        collection.set_string_attribute("mime_type", 5)
    recorder = Recorder()
    collection.set_file_update_callback(recorder)
    collection.set_bool_attribute("is_stored", True)
    assert [call["name"] for call in recorder.calls] == [NC1, NC2, NC3, CSV]
    with pytest.raises(TypeError):
        collection.set_file_update_callback("nope")


def test_set_default_check_types(collection):
    collection.add("deleted.nc", is_deletion=True)
    collection.set_default_check_types()
    assert collection.get_attribute_list("check_type") == [CT.FORMAT_CHECK] * 4 + [CT.UNSET]
    collection.set_default_check_types({"checks": ["cf"]})
    assert collection.get_attribute_list("check_type") == [CT.NC_COMPLIANCE_CHECK] * 3 + [CT.FORMAT_CHECK, CT.UNSET]
    collection.set_default_check_types({"checks": []})
    assert collection.get_attribute_list("check_type") == [CT.FORMAT_CHECK] * 4 + [CT.UNSET]


def test_set_default_check_types_validates_params(collection):
    from jsonschema.exceptions import ValidationError

    with pytest.raises(ValidationError):
        collection.set_default_check_types({"checks": "cf"})


def test_set_publish_types_from_regexes(files):
    collection = PipelineFileCollection(files)
    collection.add("IMOS_deleted.nc", is_deletion=True)
    collection.set_publish_types_from_regexes([r"IMOS_"], [r"IMOS_SOOP"], PT.HARVEST_UPLOAD, PT.DELETE_UNHARVEST)
    assert collection.get_attribute_list("publish_type") == [PT.HARVEST_UPLOAD, PT.HARVEST_UPLOAD, PT.UNSET,
                                                             PT.UNSET, PT.DELETE_UNHARVEST]
    with pytest.raises(TypeError):
        collection.set_publish_types_from_regexes(r"IMOS_", None, PT.UPLOAD_ONLY, PT.DELETE_ONLY)
    with pytest.raises(ValueError):
        collection.set_publish_types_from_regexes([r"("], None, PT.UPLOAD_ONLY, PT.DELETE_ONLY)


def test_set_publish_types_from_regexes_matches_basename(files):
    collection = PipelineFileCollection(files)
    directory = os.path.dirname(files[0])
    collection.set_publish_types_from_regexes([re.escape(directory)], None, PT.UPLOAD_ONLY, PT.DELETE_ONLY)
    assert set(collection.get_attribute_list("publish_type")) == {PT.UNSET}


# ---------------------------------------------------------------------------------------------------------------------
# RemotePipelineFileCollection and helpers
# ---------------------------------------------------------------------------------------------------------------------

def test_remote_collection_strings_and_keys():
    collection = RemotePipelineFileCollection(["IMOS/a.nc", "IMOS/b.nc"])
    assert collection.keys() == ["IMOS/a.nc", "IMOS/b.nc"]
    assert "IMOS/a.nc" in collection and "IMOS/zzz.nc" not in collection
    assert collection.add("IMOS/c.nc", local_path="/tmp/c.nc", size=3)
    assert collection[2].size == 3
    with pytest.raises(DuplicatePipelineFileError):
        collection.add("IMOS/a.nc")
    with pytest.raises(AttributeValidationError):
        collection.add(RemotePipelineFile("OTHER/c.nc", local_path="/tmp/c.nc"))
    with pytest.raises(TypeError):
        collection.add(PipelineFile("x.nc", is_deletion=True))
    assert collection.discard("IMOS/b.nc") is True
    assert collection.keys() == ["IMOS/a.nc", "IMOS/c.nc"]
    assert isinstance(collection[0:1], RemotePipelineFileCollection)


def test_remote_collection_download_is_deprecated():
    broker = mock.Mock()
    collection = RemotePipelineFileCollection("IMOS/a.nc")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collection.download(broker, "/tmp/somewhere")
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    broker.download.assert_called_once_with(collection, "/tmp/somewhere")


def test_collection_conversions(files):
    pfc = PipelineFileCollection([PipelineFile(files[0], dest_path="IMOS/a.nc"),
                                  PipelineFile(files[1], dest_path="IMOS/b.nc")])
    remote = RemotePipelineFileCollection.from_pipelinefilecollection(pfc)
    assert remote.keys() == ["IMOS/a.nc", "IMOS/b.nc"]
    assert remote.get_attribute_list("local_path") == [None, None]

    deletions = PipelineFileCollection.from_remotepipelinefilecollection(remote, are_deletions=True)
    assert all(deletions.get_attribute_list("is_deletion"))
    assert deletions.get_attribute_list("dest_path") == ["IMOS/a.nc", "IMOS/b.nc"]

    remote[0].local_path = files[0]
    remote[1].local_path = files[1]
    additions = PipelineFileCollection.from_remotepipelinefilecollection(remote)
    assert additions.get_attribute_list("src_path") == files[:2]
    assert not any(additions.get_attribute_list("is_deletion"))


def test_ensure_helpers(files):
    pf = PipelineFile(files[0])
    wrapped = ensure_pipelinefilecollection(pf)
    assert isinstance(wrapped, PipelineFileCollection) and wrapped[0] is pf
    assert ensure_pipelinefilecollection(wrapped) is wrapped
    with pytest.raises(TypeError):
        ensure_pipelinefilecollection(files[0])
    rf = RemotePipelineFile("IMOS/x.nc")
    remote = ensure_remotepipelinefilecollection(rf)
    assert isinstance(remote, RemotePipelineFileCollection) and remote[0] is rf
    assert ensure_remotepipelinefilecollection(remote) is remote
    with pytest.raises(TypeError):
        ensure_remotepipelinefilecollection(pf)


def test_module_validators(files):
    validate_pipelinefilecollection(PipelineFileCollection())
    with pytest.raises(TypeError):
        validate_pipelinefilecollection(RemotePipelineFileCollection())
    validate_pipelinefile_or_string("x")
    with pytest.raises(TypeError):
        validate_pipelinefile_or_string(RemotePipelineFile("x"))
    validate_remotepipelinefile_or_string(RemotePipelineFile("x"))
    with pytest.raises(TypeError):
        validate_pipelinefile_or_pipelinefilecollection("x")

