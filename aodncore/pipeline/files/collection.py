"""`PipelineFileCollection`: the collection of `PipelineFile` objects a handler and the steps work on."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aodncore.pipeline.common import (
    FileType,
    PipelineFileCheckType,
    PipelineFilePublishType,
    validate_publishtype,
    validate_settable_checktype,
)
from aodncore.pipeline.exceptions import MissingFileError
from aodncore.pipeline.files.collectionbase import PipelineFileCollectionBase, _already_used_error, _as_collection
from aodncore.pipeline.files.pipelinefile import PipelineFile
from aodncore.util.misc import (
    Validator,
    ensure_regex_list,
    matches_regexes,
    validate_bool,
    validate_callable,
    validate_regexes,
    validate_string,
    validate_type,
)

if TYPE_CHECKING:
    from aodncore.pipeline.files.remote import RemotePipelineFileCollection


class PipelineFileCollection(PipelineFileCollectionBase):
    """Ordered set of :class:`PipelineFile` objects; path strings are looked up by ``src_path``."""

    member_class = property(lambda self: PipelineFile)
    member_validator = property(lambda self: validate_pipelinefile_or_string)
    member_from_string_method = property(lambda self: self.get_pipelinefile_from_src_path)
    unique_attributes = property(lambda self: ("archive_path", "dest_path"))

    @classmethod
    def from_remotepipelinefilecollection(cls, remote_collection: RemotePipelineFileCollection,
                                          are_deletions: bool = False) -> PipelineFileCollection:
        """Convert every remote file with :meth:`PipelineFile.from_remotepipelinefile`."""
        return cls(PipelineFile.from_remotepipelinefile(f, is_deletion=are_deletions) for f in remote_collection)

    def add(self, pipeline_file: PipelineFile | str, is_deletion: bool = False, overwrite: bool = False,
            validate_unique: bool = True, **kwargs: Any) -> bool:
        """Add a :class:`PipelineFile`, or a path string turned into one with ``is_deletion`` and ``kwargs``.

        :raises MissingFileError: a non-deletion path string does not name an existing file
        """
        validate_pipelinefile_or_string(pipeline_file)
        validate_bool(is_deletion)
        if isinstance(pipeline_file, str):
            if not is_deletion and not os.path.isfile(pipeline_file):
                raise MissingFileError(f"file '{pipeline_file}' doesn't exist")
            pipeline_file = PipelineFile(pipeline_file, is_deletion=is_deletion, **kwargs)
        return super().add(pipeline_file, overwrite=overwrite, validate_unique=validate_unique)

    def _set_paths(self, attribute: str, function: Callable[[str], str],
                   wanted: Callable[[PipelineFile], bool]) -> None:
        validate_callable(function)
        # value -> name of the first member holding it, kept up to date as paths are set, so that each candidate
        # is checked in constant time (the same check as validate_unique_attribute_value, without its full scan)
        owners: dict[Any, str] = {}
        for element in self._s:
            value = getattr(element, attribute)
            if value is not None:
                owners.setdefault(value, element.name)
        for element in self._s:
            if getattr(element, attribute) is None and wanted(element):
                candidate = function(element.src_path)
                if isinstance(candidate, str):
                    if candidate in owners:
                        raise _already_used_error(attribute, candidate, owners[candidate])
                else:  # not a path (the setter will refuse it): keep the exact scan-based error
                    self.validate_unique_attribute_value(attribute, candidate)
                setattr(element, attribute, candidate)
                owners.setdefault(candidate, element.name)

    def set_archive_paths(self, archive_path_function: Callable[[str], str]) -> None:
        """Set ``archive_path`` (from the source path) on members to be archived that have none yet."""
        self._set_paths("archive_path", archive_path_function, lambda element: element.should_archive)

    def set_dest_paths(self, dest_path_function: Callable[[str], str]) -> None:
        """Set ``dest_path`` (from the source path) on members to be stored or harvested that have none yet."""
        self._set_paths("dest_path", dest_path_function,
                        lambda element: element.should_store or element.should_harvest)

    def set_check_types(self, check_type: PipelineFileCheckType) -> None:
        """Set ``check_type`` on every non-deletion member."""
        validate_settable_checktype(check_type)
        for element in self._s:
            if not element.is_deletion:
                element.check_type = check_type

    def set_publish_types(self, publish_type: PipelineFilePublishType) -> None:
        """Set ``publish_type`` on every member (deletion types on additions raise :class:`ValueError`)."""
        validate_publishtype(publish_type)
        for element in self._s:
            element.publish_type = publish_type

    def set_bool_attribute(self, attribute: str, value: bool) -> None:
        validate_bool(value)
        for element in self._s:
            setattr(element, attribute, value)

    def set_string_attribute(self, attribute: str, value: str) -> None:
        validate_string(value)
        for element in self._s:
            setattr(element, attribute, value)

    def set_file_update_callback(self, file_update_callback: Callable[..., Any]) -> None:
        validate_callable(file_update_callback)
        for element in self._s:
            element.file_update_callback = file_update_callback

    def set_default_check_types(self, check_params: dict[str, Any] | None = None) -> None:
        """Give every non-deletion a default check type.

        NetCDF files get ``NC_COMPLIANCE_CHECK`` when ``check_params['checks']`` is non-empty, else
        ``FORMAT_CHECK``; all other files get ``FORMAT_CHECK``.
        """
        if check_params is not None:
            from aodncore.pipeline.schema import validate_check_params

            validate_check_params(check_params)
        else:
            check_params = {}
        checks = check_params.get("checks", ())
        for element in self._s:
            if element.is_deletion:
                continue
            if element.file_type is FileType.NETCDF and checks:
                element.check_type = PipelineFileCheckType.NC_COMPLIANCE_CHECK
            else:
                element.check_type = PipelineFileCheckType.FORMAT_CHECK

    def set_publish_types_from_regexes(self, include_regexes: Iterable[Any], exclude_regexes: Iterable[Any] | None,
                                       addition_type: PipelineFilePublishType,
                                       deletion_type: PipelineFilePublishType) -> None:
        """Set publish types on members whose *name* matches an include regex and no exclude regex."""
        validate_regexes(include_regexes)
        if exclude_regexes:
            validate_regexes(exclude_regexes)
        # compiled once here rather than once per member inside matches_regexes
        include, exclude = ensure_regex_list(include_regexes), ensure_regex_list(exclude_regexes)
        for element in self._s:
            if matches_regexes(element.name, include, exclude):
                element.publish_type = deletion_type if element.is_deletion else addition_type


validate_pipelinefilecollection: Validator = validate_type(PipelineFileCollection)
validate_pipelinefile_or_string: Validator = validate_type((PipelineFile, str))
validate_pipelinefile_or_pipelinefilecollection: Validator = validate_type((PipelineFile, PipelineFileCollection))


def ensure_pipelinefilecollection(o: PipelineFile | PipelineFileCollection) -> PipelineFileCollection:
    """Return ``o`` if it is a collection, else a one-element collection holding it."""
    return _as_collection(o, PipelineFileCollection, validate_pipelinefile_or_pipelinefilecollection)
