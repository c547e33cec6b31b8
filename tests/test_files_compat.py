"""``aodncore.pipeline.files`` as client code sees it: import paths, patch targets, pickling, Prefect tasks.

The file model lives in sub-modules of the ``aodncore.pipeline.files`` package; these tests pin what must not
change with that layout (API §1.6, §16.1, §16.2).
"""

from __future__ import annotations

import importlib
import pickle
from unittest import mock

import pytest

import aodncore.pipeline
import aodncore.pipeline.files as files_module
from aodncore.pipeline.common import CheckResult, PipelineFileCheckType, PipelineFilePublishType
from aodncore.pipeline.exceptions import MissingFileError
from aodncore.pipeline.files import (
    PipelineFile,
    PipelineFileCollection,
    RemotePipelineFile,
    RemotePipelineFileCollection,
)

# every name ``from aodncore.pipeline.files import X`` resolved before the module became a package
NAMES_IMPORTABLE_BEFORE = (
    "Any", "AttributeValidationError", "Callable", "CheckResult", "Counter", "DuplicatePipelineFileError",
    "FileType", "IndexedSet", "Iterable", "Iterator", "MissingFileError", "MutableSet", "OrderedDict",
    "PipelineFile", "PipelineFileBase", "PipelineFileCheckType", "PipelineFileCollection",
    "PipelineFileCollectionBase", "PipelineFilePublishType", "RemotePipelineFile", "RemotePipelineFileCollection",
    "Validator", "abc", "datetime", "ensure_pipelinefilecollection", "ensure_regex_list",
    "ensure_remotepipelinefilecollection", "format_exception", "get_file_checksum", "iter_public_attributes",
    "matches_regexes", "mimetypes", "os", "rm_f", "validate_bool", "validate_callable", "validate_checkresult",
    "validate_int", "validate_nonstring_iterable", "validate_pipelinefile_or_pipelinefilecollection",
    "validate_pipelinefile_or_string", "validate_pipelinefilecollection", "validate_publishtype",
    "validate_regexes", "validate_relative_path_attr",
    "validate_remotepipelinefile_or_remotepipelinefilecollection", "validate_remotepipelinefile_or_string",
    "validate_remotepipelinefilecollection", "validate_settable_checktype", "validate_string", "validate_type",
    "warnings",
)

PUBLIC_CLASSES_AND_FUNCTIONS = (
    "PipelineFileBase", "PipelineFile", "RemotePipelineFile", "PipelineFileCollectionBase", "PipelineFileCollection",
    "RemotePipelineFileCollection", "ensure_pipelinefilecollection", "ensure_remotepipelinefilecollection",
)


@pytest.fixture
def nc_path(imos_file):
    return str(imos_file("IMOS_ACORN_V_20101201T050000Z_BONC_FV00_sea-state.nc"))


@pytest.fixture
def csv_path(imos_file):
    return str(imos_file("bgc_trip.csv"))


# -- import paths ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES_IMPORTABLE_BEFORE)
def test_every_name_importable_before_still_imports(name):
    module = importlib.import_module("aodncore.pipeline.files")
    assert hasattr(module, name), f"from aodncore.pipeline.files import {name} no longer works"


def test_star_import_exports_the_same_names():
    assert sorted(files_module.__all__) == sorted([
        "PipelineFileCollection", "PipelineFile", "RemotePipelineFile", "RemotePipelineFileCollection",
        "ensure_pipelinefilecollection", "ensure_remotepipelinefilecollection", "validate_pipelinefilecollection",
        "validate_pipelinefile_or_pipelinefilecollection", "validate_pipelinefile_or_string",
    ])


@pytest.mark.parametrize("name", ["PipelineFile", "PipelineFileCollection", "RemotePipelineFile",
                                  "RemotePipelineFileCollection", "validate_pipelinefilecollection",
                                  "validate_pipelinefile_or_string"])
def test_pipeline_package_re_exports_the_same_objects(name):
    assert getattr(aodncore.pipeline, name) is getattr(files_module, name)


@pytest.mark.parametrize("name", PUBLIC_CLASSES_AND_FUNCTIONS)
def test_public_objects_name_the_public_module(name):
    # reprs, pickles and TypeError messages ("must be of type '<class ...>'") keep naming aodncore.pipeline.files
    assert getattr(files_module, name).__module__ == "aodncore.pipeline.files"


def test_type_error_messages_name_the_public_module():
    with pytest.raises(TypeError, match=r"<class 'aodncore\.pipeline\.files\.PipelineFile'>"):
        PipelineFileCollection().add(42)


# -- patch targets (API §1.6: module globals resolved at call time) ----------------------------------------------------

def test_patched_get_file_checksum_is_used_by_pipeline_files(nc_path):
    with mock.patch("aodncore.pipeline.files.get_file_checksum", return_value="patched") as checksum:
        pipeline_file = PipelineFile(nc_path)
        assert pipeline_file.file_checksum == "patched"
        checksum.assert_called_once_with(nc_path)


def test_patched_get_file_checksum_is_used_by_remote_files(nc_path):
    remote = RemotePipelineFile("IMOS/x.nc", local_path=nc_path)
    with mock.patch("aodncore.pipeline.files.get_file_checksum", return_value="patched-remote") as checksum:
        assert remote.file_checksum == "patched-remote"
        checksum.assert_called_once_with(nc_path)


def test_patched_get_file_checksum_decides_file_identity(nc_path):
    real = PipelineFile(nc_path)
    assert real.file_checksum != "patched"  # computed (and cached) before the patch
    with mock.patch("aodncore.pipeline.files.get_file_checksum", return_value="patched"):
        patched = PipelineFile(nc_path)
        collection = PipelineFileCollection([patched])
        assert patched != real  # same name and path, but the (patched) checksum is part of the identity
        assert PipelineFile(nc_path) in collection


def test_patched_get_file_checksum_errors_surface_as_missing_file(nc_path):
    with mock.patch("aodncore.pipeline.files.get_file_checksum", side_effect=OSError("disk gone")), \
            pytest.raises(MissingFileError, match="disk gone"):
        _ = PipelineFile(nc_path).file_checksum


def test_patched_os_path_isfile_false_refuses_an_existing_path(nc_path):
    with mock.patch("os.path.isfile", return_value=False) as isfile, \
            pytest.raises(MissingFileError, match="doesn't exist"):
        PipelineFileCollection().add(nc_path)
    isfile.assert_called_with(nc_path)


def test_patched_os_path_isfile_true_admits_a_missing_path(tmp_path):
    missing = str(tmp_path / "not_there.nc")
    with mock.patch("os.path.isfile", return_value=True), \
            mock.patch("aodncore.pipeline.files.get_file_checksum", return_value="fake"):
        collection = PipelineFileCollection()
        collection.add(missing)
    assert collection[0].src_path == missing


def test_os_path_isfile_patched_through_the_files_module_takes_effect(nc_path):
    with mock.patch("aodncore.pipeline.files.os.path.isfile", return_value=False), \
            pytest.raises(MissingFileError):
        PipelineFileCollection().add(nc_path)


# -- pickling ----------------------------------------------------------------------------------------------------------

def _busy_collection(nc_path: str, csv_path: str) -> PipelineFileCollection:
    collection = PipelineFileCollection([nc_path, csv_path])
    collection.set_publish_types(PipelineFilePublishType.HARVEST_UPLOAD)
    collection.set_check_types(PipelineFileCheckType.FORMAT_CHECK)
    collection.set_dest_paths(lambda path: f"IMOS/dest/{path.rsplit('/', 1)[-1]}")
    collection[0].check_result = CheckResult(True, ["fine"])
    collection[1].is_stored = True
    return collection


def _state(pipeline_file: PipelineFile) -> dict:
    """Every public property, with the check result (no value equality of its own) as its fields."""
    state = dict(pipeline_file)
    result = state.pop("check_result")
    state["check_result"] = None if result is None else (result.compliant, list(result.log), result.errors)
    return state


def _assert_same_collection(copy: PipelineFileCollection, original: PipelineFileCollection) -> None:
    assert type(copy) is PipelineFileCollection
    assert copy == original
    assert [_state(f) for f in copy] == [_state(f) for f in original]


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_collection_round_trips_through_pickle(nc_path, csv_path, protocol):
    original = _busy_collection(nc_path, csv_path)
    payload = pickle.dumps(original, protocol=protocol)
    assert b"aodncore.pipeline.files" in payload
    assert b"aodncore.pipeline.files.collection" not in payload  # readable by code that predates the package
    _assert_same_collection(pickle.loads(payload), original)


def test_collection_round_trips_through_cloudpickle(nc_path, csv_path):
    cloudpickle = pytest.importorskip("cloudpickle")
    original = _busy_collection(nc_path, csv_path)
    _assert_same_collection(cloudpickle.loads(cloudpickle.dumps(original)), original)


def test_remote_collection_round_trips_through_pickle(nc_path):
    original = RemotePipelineFileCollection([RemotePipelineFile("IMOS/a.nc", local_path=nc_path, size=3),
                                             RemotePipelineFile("IMOS/b.nc")])
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is RemotePipelineFileCollection
    assert copy.keys() == ["IMOS/a.nc", "IMOS/b.nc"]
    assert [f.local_path for f in copy] == [nc_path, None]
    assert copy[0].size == 3


# -- Prefect task parameters -------------------------------------------------------------------------------------------

def test_collection_passes_through_prefect_task_parameters_and_result_serialisation(prefect_harness, nc_path,
                                                                                     csv_path):
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.results import ResultRecord

    @task(persist_result=True, result_serializer="pickle", cache_policy=NO_CACHE)
    def mark_harvested(collection: PipelineFileCollection) -> PipelineFileCollection:
        assert isinstance(collection, PipelineFileCollection)
        collection.set_bool_attribute("is_harvested", True)
        return collection

    @flow
    def run(nc: str, csv: str):
        return mark_harvested(_busy_collection(nc, csv), return_state=True)

    state = run(nc_path, csv_path)
    returned = state.result()
    assert returned.get_attribute_list("is_harvested") == [True, True]

    # the bytes Prefect writes for a persisted result (cloudpickle through its PickleSerializer) read back the same
    record = state.data
    assert isinstance(record, ResultRecord)
    _assert_same_collection(ResultRecord.deserialize(record.serialize()).result, returned)
