"""The file model: one file moving through the pipeline, a file in a store, and ordered collections of them.

Patch points (kept as module globals resolved at call time): :func:`get_file_checksum` and ``os.path.isfile``.
"""

from __future__ import annotations

import abc
import mimetypes
import os
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableSet
from datetime import datetime
from typing import Any

from aodncore.pipeline.common import (
    CheckResult,
    FileType,
    PipelineFileCheckType,
    PipelineFilePublishType,
    validate_checkresult,
    validate_publishtype,
    validate_settable_checktype,
)
from aodncore.pipeline.exceptions import (
    AttributeValidationError,
    DuplicatePipelineFileError,
    MissingFileError,
)
from aodncore.util.external import IndexedSet
from aodncore.util.fileops import get_file_checksum, rm_f
from aodncore.util.misc import (
    Validator,
    ensure_regex_list,
    format_exception,
    iter_public_attributes,
    matches_regexes,
    validate_bool,
    validate_callable,
    validate_int,
    validate_nonstring_iterable,
    validate_regexes,
    validate_relative_path_attr,
    validate_string,
    validate_type,
)

__all__ = [
    "PipelineFileCollection",
    "PipelineFile",
    "RemotePipelineFile",
    "RemotePipelineFileCollection",
    "ensure_pipelinefilecollection",
    "ensure_remotepipelinefilecollection",
    "validate_pipelinefilecollection",
    "validate_pipelinefile_or_pipelinefilecollection",
    "validate_pipelinefile_or_string",
]


# ---------------------------------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------------------------------

class PipelineFileBase(abc.ABC):
    """Common behaviour of :class:`PipelineFile` and :class:`RemotePipelineFile`.

    Instances use ``__slots__`` and so reject unknown attributes. Equality and hashing use the subclass's
    :meth:`_key`; iterating yields ``(name, value)`` pairs of the public properties (so ``dict(f)`` works).
    """

    __slots__ = ("_file_checksum", "_dest_path", "_local_path", "_extension", "_name", "file_type")

    def __init__(self, local_path: str | None, dest_path: str | None = None) -> None:
        self._file_checksum: str | None = None
        self._dest_path = dest_path
        self._local_path = local_path
        self._name: str | None = None
        self._set_type_from_local_path()

    def _set_type_from_local_path(self) -> None:
        suffix = os.path.splitext(self._local_path)[1] if self._local_path else None
        self._extension: str | None = suffix
        self.file_type = FileType.UNKNOWN if suffix is None else FileType.get_type_from_extension(suffix)

    @abc.abstractmethod
    def _key(self) -> tuple:
        """The identity tuple used for equality and hashing."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter_public_attributes(self)

    def __str__(self) -> str:
        return f"{type(self).__name__}({dict(self)})"

    def __repr__(self) -> str:
        try:
            return str(self)
        except Exception:  # a property failed (e.g. the file vanished): fall back to something cheap
            return f"{type(self).__name__}(name={self._name!r}, local_path={self._local_path!r})"

    @property
    def extension(self) -> str | None:
        return self._extension

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def local_path(self) -> str | None:
        return self._local_path

    @property
    def dest_path(self) -> str | None:
        return self._dest_path

    @property
    def file_checksum(self) -> str | None:
        """SHA-256 hex digest of the local file, computed on first access and cached."""
        if self._file_checksum is not None:
            return self._file_checksum
        try:
            digest = get_file_checksum(self._local_path)
        except OSError as e:
            raise MissingFileError(f"failed to determine checksum for RemoteFile '{self._local_path}'. "
                                   f"{format_exception(e)}") from e
        self._file_checksum = digest
        return digest


class RemotePipelineFile(PipelineFileBase):
    """A file in a store, identified by ``dest_path`` (and optionally downloaded to ``local_path``).

    For backwards compatibility with code that treated store query results as plain ``dest_path`` strings, unknown
    attribute reads and indexing are delegated to the ``dest_path`` string (``rf.startswith('IMOS/')``, ``rf[0]``).
    """

    __slots__ = ("_last_modified", "_size")

    def __init__(self, dest_path: str, local_path: str | None = None, name: str | None = None,
                 last_modified: datetime | None = None, size: int | None = None) -> None:
        super().__init__(local_path, dest_path)
        self._name = os.path.basename(dest_path) if name is None else name
        self._last_modified = last_modified
        self._size = size

    def __getattr__(self, item: str) -> Any:
        # only reached for names not found normally; private names are never delegated (avoids recursion while
        # slots are still unset, and keeps copy/pickle protocol lookups honest)
        if item.startswith("_"):
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{item}'")
        return getattr(self.dest_path, item)

    def __getitem__(self, index: Any) -> Any:
        return self.dest_path[index]

    def _key(self) -> tuple:
        return self._name, self._dest_path

    @classmethod
    def from_pipelinefile(cls, pipeline_file: PipelineFile) -> RemotePipelineFile:
        """Remote counterpart of a :class:`PipelineFile` (same dest_path and name; no local path)."""
        return cls(dest_path=pipeline_file.dest_path, name=pipeline_file.name, local_path=None)

    @property
    def local_path(self) -> str | None:
        return self._local_path

    @local_path.setter
    def local_path(self, value: str | None) -> None:
        self._local_path = value
        self._file_checksum = None
        self._set_type_from_local_path()

    @property
    def file_checksum(self) -> str | None:
        if self._local_path is None:
            return None
        return super().file_checksum

    @property
    def last_modified(self) -> datetime | None:
        return self._last_modified

    @property
    def size(self) -> int | None:
        return self._size

    def remove_local(self) -> None:
        """Forget the local copy and delete it from disk (a missing file is ignored)."""
        previous = self._local_path
        self.local_path = None
        if previous:
            rm_f(previous)


class PipelineFile(PipelineFileBase):
    """A file being processed by the pipeline: its paths, check and publish settings and progress flags.

    See the API specification §4.3 for the meaning of every property. Every setter notifies the optional
    ``file_update_callback`` with ``name=``, ``is_deletion=`` and ``message=`` keyword arguments.
    """

    __slots__ = (
        "_archive_path",
        "_check_result",
        "_check_type",
        "_file_update_callback",
        "_is_archived",
        "_is_checked",
        "_is_deletion",
        "_is_harvest_undone",
        "_is_harvested",
        "_is_overwrite",
        "_is_stored",
        "_is_upload_undone",
        "_late_deletion",
        "_mime_type",
        "_publish_type",
        "_should_archive",
        "_should_harvest",
        "_should_store",
        "_should_undo",
    )

    def __init__(self, local_path: str, name: str | None = None, archive_path: str | None = None,
                 dest_path: str | None = None, is_deletion: bool = False, late_deletion: bool = False,
                 file_update_callback: Callable[..., Any] | None = None,
                 check_type: PipelineFileCheckType | None = None,
                 publish_type: PipelineFilePublishType | None = None) -> None:
        super().__init__(local_path, dest_path)
        validate_bool(is_deletion)
        validate_bool(late_deletion)
        self._name = os.path.basename(local_path) if name is None else name
        self._archive_path = archive_path
        self._is_deletion = is_deletion
        self._late_deletion = late_deletion

        self._file_update_callback: Callable[..., Any] | None = None
        self._check_result: CheckResult | None = None
        self._check_type: PipelineFileCheckType = PipelineFileCheckType.UNSET
        self._publish_type: PipelineFilePublishType = PipelineFilePublishType.UNSET
        self._mime_type: str | None = None

        self._is_archived = False
        self._is_checked = False
        self._is_harvested = False
        self._is_stored = False
        self._is_harvest_undone = False
        self._is_upload_undone = False
        self._is_overwrite: bool | None = None

        self._should_archive = False
        self._should_harvest = False
        self._should_store = False
        self._should_undo = False

        # optional settings go through their validating setters
        optional = {"file_update_callback": file_update_callback, "check_type": check_type,
                    "publish_type": publish_type}
        for attribute, value in optional.items():
            if value is not None:
                setattr(self, attribute, value)

    def _key(self) -> tuple:
        return self._name, self._local_path, self.file_checksum

    @classmethod
    def from_remotepipelinefile(cls, remote_pipeline_file: RemotePipelineFile, name: str | None = None,
                                is_deletion: bool = False, late_deletion: bool = False,
                                file_update_callback: Callable[..., Any] | None = None,
                                check_type: PipelineFileCheckType | None = None,
                                publish_type: PipelineFilePublishType | None = None) -> PipelineFile:
        """Build a :class:`PipelineFile` from a :class:`RemotePipelineFile` (its local path and dest path)."""
        return cls(remote_pipeline_file.local_path,
                   name=name or remote_pipeline_file.name,
                   dest_path=remote_pipeline_file.dest_path,
                   is_deletion=is_deletion,
                   late_deletion=late_deletion,
                   file_update_callback=file_update_callback,
                   check_type=check_type,
                   publish_type=publish_type)

    def _post_property_update(self, properties: dict[str, Any]) -> None:
        callback = self._file_update_callback
        if callback is not None:
            callback(name=self._name, is_deletion=self._is_deletion, message=str(properties))

    def _set_bool(self, attribute: str, value: bool) -> None:
        validate_bool(value)
        setattr(self, f"_{attribute}", value)
        self._post_property_update({attribute: value})

    # -- identity and paths ------------------------------------------------------------------------------------------

    @property
    def src_path(self) -> str:
        return self._local_path

    @property
    def file_checksum(self) -> str | None:
        if self._is_deletion:
            return None
        return super().file_checksum

    @property
    def archive_path(self) -> str | None:
        return self._archive_path

    @archive_path.setter
    def archive_path(self, value: str) -> None:
        validate_relative_path_attr(value, "archive_path")
        self._archive_path = value
        self._post_property_update({"archive_path": value})

    @property
    def dest_path(self) -> str | None:
        return self._dest_path

    @dest_path.setter
    def dest_path(self, value: str) -> None:
        validate_relative_path_attr(value, "dest_path")
        self._dest_path = value
        self._post_property_update({"dest_path": value})

    # -- checks ------------------------------------------------------------------------------------------------------

    @property
    def check_result(self) -> CheckResult | None:
        return self._check_result

    @check_result.setter
    def check_result(self, value: CheckResult) -> None:
        validate_checkresult(value)
        self._check_result = value
        self._is_checked = True
        self._post_property_update({"is_checked": True})

    @property
    def check_log(self) -> str:
        if self._check_result is None:
            return ""
        return os.linesep.join(self._check_result.log)

    @property
    def check_passed(self) -> str:
        if self._check_result is None:
            return "N/A"
        return str(bool(self._check_result.compliant))

    @property
    def check_type(self) -> PipelineFileCheckType:
        return self._check_type

    @check_type.setter
    def check_type(self, value: PipelineFileCheckType) -> None:
        if self._is_deletion:
            raise ValueError(f"check type cannot be set for deletion '{self._name}'")
        validate_settable_checktype(value)
        self._check_type = value
        self._post_property_update({"check_type": value.name})

    @property
    def is_checked(self) -> bool:
        return self._is_checked

    # -- callback ----------------------------------------------------------------------------------------------------

    @property
    def file_update_callback(self) -> Callable[..., Any] | None:
        return self._file_update_callback

    @file_update_callback.setter
    def file_update_callback(self, value: Callable[..., Any]) -> None:
        validate_callable(value)
        self._file_update_callback = value

    # -- status flags ------------------------------------------------------------------------------------------------

    @property
    def is_archived(self) -> bool:
        return self._is_archived

    @is_archived.setter
    def is_archived(self, value: bool) -> None:
        self._set_bool("is_archived", value)

    @property
    def is_harvested(self) -> bool:
        return self._is_harvested

    @is_harvested.setter
    def is_harvested(self, value: bool) -> None:
        self._set_bool("is_harvested", value)

    @property
    def is_stored(self) -> bool:
        return self._is_stored

    @is_stored.setter
    def is_stored(self, value: bool) -> None:
        self._set_bool("is_stored", value)

    @property
    def is_overwrite(self) -> bool | None:
        return self._is_overwrite

    @is_overwrite.setter
    def is_overwrite(self, value: bool) -> None:
        self._set_bool("is_overwrite", value)

    @property
    def is_harvest_undone(self) -> bool:
        return self._is_harvest_undone

    @is_harvest_undone.setter
    def is_harvest_undone(self, value: bool) -> None:
        self._set_bool("is_harvest_undone", value)

    @property
    def is_upload_undone(self) -> bool:
        return self._is_upload_undone

    @is_upload_undone.setter
    def is_upload_undone(self, value: bool) -> None:
        self._set_bool("is_upload_undone", value)

    @property
    def is_deletion(self) -> bool:
        return self._is_deletion

    @property
    def late_deletion(self) -> bool:
        return self._late_deletion

    @property
    def is_deleted(self) -> bool:
        return self._is_deletion and self._is_stored

    @property
    def is_uploaded(self) -> bool:
        return not self._is_deletion and self._is_stored

    # -- type information --------------------------------------------------------------------------------------------

    @property
    def mime_type(self) -> str:
        if self._mime_type is None:
            self._mime_type = self.file_type.mime_type or mimetypes.types_map.get(self._extension,
                                                                                  "application/octet-stream")
        return self._mime_type

    @mime_type.setter
    def mime_type(self, value: str) -> None:
        validate_string(value)
        self._mime_type = value
        self._post_property_update({"mime_type": value})

    # -- publishing --------------------------------------------------------------------------------------------------

    @property
    def publish_type(self) -> PipelineFilePublishType:
        return self._publish_type

    @publish_type.setter
    def publish_type(self, value: PipelineFilePublishType) -> None:
        validate_publishtype(value)
        allowed = (PipelineFilePublishType.all_deletion_types if self._is_deletion
                   else PipelineFilePublishType.all_addition_types)
        if value not in allowed:
            kind = "deletion" if self._is_deletion else "addition"
            raise ValueError(f"publish type '{value.name}' is not valid for {kind} '{self._name}'")
        self._should_archive = bool(value.is_archive_type)
        self._should_harvest = bool(value.is_harvest_type)
        self._should_store = bool(value.is_store_type)
        self._publish_type = value
        self._post_property_update({"publish_type": value.name})

    @property
    def published(self) -> str:
        stored = self._is_stored and not self._is_upload_undone
        harvested = self._is_harvested and not self._is_harvest_undone
        if self._should_store and self._should_harvest:
            done = stored and harvested
        else:
            done = stored or harvested
        return "Yes" if done else "No"

    @property
    def should_archive(self) -> bool:
        return self._should_archive

    @property
    def should_harvest(self) -> bool:
        return self._should_harvest

    @property
    def should_store(self) -> bool:
        return self._should_store

    @property
    def should_undo(self) -> bool:
        return self._should_undo

    @should_undo.setter
    def should_undo(self, value: bool) -> None:
        if self._is_deletion:
            raise ValueError(f"should_undo cannot be set for deletion '{self._name}'")
        self._set_bool("should_undo", value)

    @property
    def pending_archive(self) -> bool:
        return self._should_archive and not self._is_archived

    @property
    def pending_harvest(self) -> bool:
        return self._should_harvest and not self._is_harvested and not self._should_undo

    @property
    def pending_harvest_addition(self) -> bool:
        return self.pending_harvest and not self._is_deletion

    @property
    def pending_harvest_deletion(self) -> bool:
        return self.pending_harvest and self._is_deletion

    @property
    def pending_harvest_early_deletion(self) -> bool:
        return self.pending_harvest_deletion and not self._late_deletion

    @property
    def pending_harvest_late_deletion(self) -> bool:
        return self.pending_harvest_deletion and self._late_deletion

    @property
    def pending_harvest_undo(self) -> bool:
        return self._should_undo and self._should_harvest and not self._is_harvest_undone

    @property
    def pending_store(self) -> bool:
        return self._should_store and not self._is_stored and not self._should_undo

    @property
    def pending_store_addition(self) -> bool:
        return self.pending_store and not self._is_deletion

    @property
    def pending_store_deletion(self) -> bool:
        return self.pending_store and self._is_deletion

    @property
    def pending_store_undo(self) -> bool:
        return self._should_undo and self._should_store and not self._is_upload_undone

    @property
    def pending_undo(self) -> bool:
        return self.pending_store_undo or self.pending_harvest_undo


# ---------------------------------------------------------------------------------------------------------------------
# collections
# ---------------------------------------------------------------------------------------------------------------------

def _attribute_names(names: str | Iterable[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _already_used_error(attribute: str, value: Any, owner_name: str | None) -> AttributeValidationError:
    return AttributeValidationError(f"{attribute} '{value}' is already used by '{owner_name}' in the collection")


class PipelineFileCollectionBase(MutableSet, abc.ABC):
    """An insertion-ordered set of files with filtering, bulk-setting and validation helpers.

    Subclasses provide :attr:`member_class`, :attr:`member_validator`, :attr:`member_from_string_method` and
    :attr:`unique_attributes`.
    """

    def __init__(self, data: Any = None, validate_unique: bool = True) -> None:
        self._s: IndexedSet = IndexedSet()
        if data is None:
            return
        elements = [data] if isinstance(data, (self.member_class, str)) else data
        for element in elements:
            self.add(element, validate_unique=validate_unique)

    # -- subclass hooks ----------------------------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def member_class(self) -> type:
        """The class of the members."""

    @property
    @abc.abstractmethod
    def member_validator(self) -> Callable[[Any], None]:
        """Validator accepting a member or a string."""

    @property
    @abc.abstractmethod
    def member_from_string_method(self) -> Callable[[str], Any]:
        """Bound method finding a member from a string (path)."""

    @property
    @abc.abstractmethod
    def unique_attributes(self) -> tuple[str, ...]:
        """Attributes whose non-None values must be unique within the collection."""

    def _member_from_string(self, value: str, **kwargs: Any) -> Any:
        return self.member_class(value, **kwargs)

    # -- container protocol ------------------------------------------------------------------------------------------

    def __contains__(self, element: object) -> bool:
        if isinstance(element, str):
            element = self.member_from_string_method(element)
            if element is None:
                return False
        return element in self._s

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)(self._s[index])
        return self._s[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._s)

    def __len__(self) -> int:
        return len(self._s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._s)!r})"

    __hash__ = None  # mutable collection

    @classmethod
    def _from_iterable(cls, iterable: Iterable[Any]) -> PipelineFileCollectionBase:
        # used by the Set mixins (``&``, ``|``, ``-``, ``^``): equal elements are set-merged, not duplicates
        collection = cls()
        for element in iterable:
            if element not in collection._s:
                collection.add(element)
        return collection

    def __ior__(self, other: Iterable[Any]) -> PipelineFileCollectionBase:
        for element in other:
            if element not in self._s:
                self.add(element)
        return self

    # -- mutation ----------------------------------------------------------------------------------------------------

    def add(self, pipeline_file: Any, overwrite: bool = False, validate_unique: bool = True, **kwargs: Any) -> bool:
        """Add a member (or a string converted with the member class).

        :raises DuplicatePipelineFileError: an equal member exists and ``overwrite`` is False
        :raises AttributeValidationError: a unique attribute value clashes (when ``validate_unique``)
        :return: True
        """
        self.member_validator(pipeline_file)
        validate_bool(overwrite)
        if isinstance(pipeline_file, str):
            pipeline_file = self._member_from_string(pipeline_file, **kwargs)

        if pipeline_file in self._s:
            if not overwrite:
                raise DuplicatePipelineFileError(f"{pipeline_file.name} already in collection")
            self._s.remove(pipeline_file)

        if validate_unique:
            candidate_values = {name: getattr(pipeline_file, name) for name in self.unique_attributes}
            for name, value in candidate_values.items():
                if value is not None:
                    self.validate_unique_attribute_value(name, value)

        self._s.add(pipeline_file)
        return True

    def append(self, pipeline_file: Any, *args: Any, **kwargs: Any) -> bool:
        """Alias of :meth:`add`."""
        return self.add(pipeline_file, *args, **kwargs)

    def discard(self, pipeline_file: Any) -> bool:
        """Remove a member (or the member matching a path string); return whether it was present."""
        self.member_validator(pipeline_file)
        if isinstance(pipeline_file, str):
            pipeline_file = self.member_from_string_method(pipeline_file)
            if pipeline_file is None:
                return False
        if pipeline_file in self._s:
            self._s.remove(pipeline_file)
            return True
        return False

    def update(self, sequence: Iterable[Any], overwrite: bool = False, validate_unique: bool = True) -> bool:
        """Add every element of ``sequence``; return True if anything was added."""
        validate_nonstring_iterable(sequence)
        results = [self.add(element, overwrite=overwrite, validate_unique=validate_unique) for element in sequence]
        return any(results)

    # -- set operations ----------------------------------------------------------------------------------------------

    def difference(self, sequence: Iterable[Any]) -> PipelineFileCollectionBase:
        """New collection of the members not in ``sequence``."""
        sequence = sequence if isinstance(sequence, PipelineFileCollectionBase) else list(sequence)
        return type(self)(element for element in self._s if element not in sequence)

    def issubset(self, sequence: Iterable[Any]) -> bool:
        sequence = sequence if isinstance(sequence, PipelineFileCollectionBase) else list(sequence)
        return all(element in sequence for element in self._s)

    def issuperset(self, sequence: Iterable[Any]) -> bool:
        return all(element in self for element in sequence)

    def union(self, sequence: Iterable[Any]) -> PipelineFileCollectionBase:
        """New collection of the members of both (``sequence`` must hold member instances only)."""
        sequence = list(sequence)
        for element in sequence:
            if not isinstance(element, self.member_class):
                raise TypeError(f"object '{element}' must be of type '{self.member_class}'")
        result = type(self)(self._s)
        for element in sequence:
            if element not in result:
                result.add(element)
        return result

    # -- look-ups ----------------------------------------------------------------------------------------------------

    def get_pipelinefile_from_dest_path(self, dest_path: str) -> Any:
        """First member whose ``dest_path`` equals ``dest_path``, else None."""
        return next((element for element in self._s if element.dest_path == dest_path), None)

    def get_pipelinefile_from_src_path(self, src_path: str) -> Any:
        """First member whose ``local_path`` equals ``src_path``, else None."""
        return next((element for element in self._s if element.local_path == src_path), None)

    def get_slices(self, slice_size: int) -> list[PipelineFileCollectionBase]:
        """Consecutive sub-collections of at most ``slice_size`` members."""
        validate_int(slice_size)
        if slice_size < 1:
            raise ValueError("slice_size must be a positive integer")
        return [self[i:i + slice_size] for i in range(0, len(self._s), slice_size)]

    def get_attribute_list(self, attribute: str) -> list[Any]:
        """Values of ``attribute`` for every member, in order."""
        return [getattr(element, attribute) for element in self._s]

    def get_table_data(self) -> tuple[list[str], list[OrderedDict]]:
        """``(columns, rows)`` with one :class:`OrderedDict` per member (used for notification tables)."""
        rows = [OrderedDict(dict(element)) for element in self._s]
        columns = list(rows[0].keys()) if rows else []
        return columns, rows

    # -- filters -----------------------------------------------------------------------------------------------------

    def _filtered(self, predicate: Callable[[Any], bool]) -> PipelineFileCollectionBase:
        return type(self)((element for element in self._s if predicate(element)), validate_unique=False)

    def filter_by_attribute_id(self, attribute: str, value: Any) -> PipelineFileCollectionBase:
        """Members whose attribute *is* ``value`` (identity; for enums, None and bools)."""
        return self._filtered(lambda element: getattr(element, attribute) is value)

    def filter_by_attribute_id_not(self, attribute: str, value: Any) -> PipelineFileCollectionBase:
        """Members whose attribute is not ``value`` (identity)."""
        return self._filtered(lambda element: getattr(element, attribute) is not value)

    def filter_by_attribute_value(self, attribute: str, value: Any) -> PipelineFileCollectionBase:
        """Members whose attribute equals ``value``."""
        return self._filtered(lambda element: getattr(element, attribute) == value)

    def filter_by_attribute_regexes(self, attribute: str, regexes: Any) -> PipelineFileCollectionBase:
        """Members whose attribute value matches (``re.match``) any of ``regexes``."""
        patterns = ensure_regex_list(regexes)
        return self._filtered(lambda element: any(p.match(getattr(element, attribute)) for p in patterns))

    filter_by_attribute_regex = filter_by_attribute_regexes

    def filter_by_bool_attribute(self, attribute: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: bool(getattr(element, attribute)))

    def filter_by_bool_attribute_not(self, attribute: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: not getattr(element, attribute))

    def filter_by_bool_attributes_and(self, *attributes: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: all(getattr(element, a) for a in attributes))

    def filter_by_bool_attributes_and_not(self, true_attributes: str | Iterable[str],
                                          false_attributes: str | Iterable[str]) -> PipelineFileCollectionBase:
        """Members with all of ``true_attributes`` truthy and none of ``false_attributes`` truthy."""
        trues = _attribute_names(true_attributes)
        falses = _attribute_names(false_attributes)
        return self._filtered(lambda element: all(getattr(element, a) for a in trues)
                              and not any(getattr(element, a) for a in falses))

    def filter_by_bool_attributes_not(self, *attributes: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: not any(getattr(element, a) for a in attributes))

    def filter_by_bool_attributes_or(self, *attributes: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: any(getattr(element, a) for a in attributes))

    # -- validation --------------------------------------------------------------------------------------------------

    def validate_unique_attribute_value(self, attribute: str, value: Any) -> None:
        """Raise :class:`AttributeValidationError` if any member already has ``attribute == value``."""
        for element in self._s:
            if getattr(element, attribute) == value:
                raise _already_used_error(attribute, value, element.name)

    def validate_attribute_value_matches_regexes(self, attribute: str, include_regexes: Iterable[Any]) -> None:
        """Raise :class:`AttributeValidationError` listing members whose attribute matches none of the regexes."""
        validate_regexes(include_regexes)
        patterns = ensure_regex_list(include_regexes)
        mismatches = {}
        for element in self._s:
            value = getattr(element, attribute)
            if not isinstance(value, str) or not matches_regexes(value, patterns):
                mismatches[element.name] = value
        if mismatches:
            raise AttributeValidationError(
                f"invalid '{attribute}' values (must match one of {list(include_regexes)}): {mismatches}")

    def validate_attribute_uniqueness(self, attribute: str) -> None:
        """Raise :class:`AttributeValidationError` if a non-None value of ``attribute`` is shared by members."""
        counts = Counter(value for value in self.get_attribute_list(attribute) if value is not None)
        duplicates = [value for value, count in counts.items() if count > 1]
        if duplicates:
            raise AttributeValidationError(f"duplicate '{attribute}' values found: {duplicates}")


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


class RemotePipelineFileCollection(PipelineFileCollectionBase):
    """Ordered set of :class:`RemotePipelineFile` objects; strings are looked up by ``dest_path``."""

    member_class = property(lambda self: RemotePipelineFile)
    member_validator = property(lambda self: validate_remotepipelinefile_or_string)
    member_from_string_method = property(lambda self: self.get_pipelinefile_from_dest_path)
    unique_attributes = property(lambda self: ("local_path", "dest_path"))

    def _member_from_string(self, value: str, **kwargs: Any) -> RemotePipelineFile:
        return RemotePipelineFile(dest_path=value, **kwargs)

    @classmethod
    def from_pipelinefilecollection(cls, pipeline_file_collection: PipelineFileCollection
                                    ) -> RemotePipelineFileCollection:
        return cls(RemotePipelineFile.from_pipelinefile(f) for f in pipeline_file_collection)

    def download(self, broker: Any, local_path: str) -> None:
        """Deprecated: use ``broker.download(collection, local_path)``."""
        warnings.warn("RemotePipelineFileCollection.download is deprecated; call broker.download(collection, path)",
                      DeprecationWarning, stacklevel=2)
        broker.download(self, local_path)

    def keys(self) -> list[str]:
        """The members' ``dest_path`` values (compatibility with code treating query results as a dict)."""
        return self.get_attribute_list("dest_path")


# ---------------------------------------------------------------------------------------------------------------------
# validators and helpers
# ---------------------------------------------------------------------------------------------------------------------

validate_pipelinefilecollection: Validator = validate_type(PipelineFileCollection)
validate_pipelinefile_or_string: Validator = validate_type((PipelineFile, str))
validate_pipelinefile_or_pipelinefilecollection: Validator = validate_type((PipelineFile, PipelineFileCollection))
validate_remotepipelinefilecollection: Validator = validate_type(RemotePipelineFileCollection)
validate_remotepipelinefile_or_string: Validator = validate_type((RemotePipelineFile, str))
validate_remotepipelinefile_or_remotepipelinefilecollection: Validator = validate_type(
    (RemotePipelineFile, RemotePipelineFileCollection))


def _as_collection(o: Any, collection_class: type, validator: Validator) -> Any:
    """Validate ``o`` and wrap a single file in a new ``collection_class``; a collection is returned as is."""
    validator(o)
    if isinstance(o, collection_class):
        return o
    return collection_class(o)


def ensure_pipelinefilecollection(o: PipelineFile | PipelineFileCollection) -> PipelineFileCollection:
    """Return ``o`` if it is a collection, else a one-element collection holding it."""
    return _as_collection(o, PipelineFileCollection, validate_pipelinefile_or_pipelinefilecollection)


def ensure_remotepipelinefilecollection(o: RemotePipelineFile | RemotePipelineFileCollection
                                        ) -> RemotePipelineFileCollection:
    """Return ``o`` if it is a remote collection, else a one-element collection holding it."""
    return _as_collection(o, RemotePipelineFileCollection, validate_remotepipelinefile_or_remotepipelinefilecollection)
