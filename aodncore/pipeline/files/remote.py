"""Files in a store: `RemotePipelineFile` and `RemotePipelineFileCollection` (results of store queries)."""

from __future__ import annotations

import os
import warnings
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aodncore.pipeline.files.base import PipelineFileBase
from aodncore.pipeline.files.collectionbase import PipelineFileCollectionBase, _as_collection
from aodncore.util.fileops import rm_f
from aodncore.util.misc import Validator, validate_type

if TYPE_CHECKING:
    from aodncore.pipeline.files.collection import PipelineFileCollection
    from aodncore.pipeline.files.pipelinefile import PipelineFile


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


validate_remotepipelinefilecollection: Validator = validate_type(RemotePipelineFileCollection)
validate_remotepipelinefile_or_string: Validator = validate_type((RemotePipelineFile, str))
validate_remotepipelinefile_or_remotepipelinefilecollection: Validator = validate_type(
    (RemotePipelineFile, RemotePipelineFileCollection))


def ensure_remotepipelinefilecollection(o: RemotePipelineFile | RemotePipelineFileCollection
                                        ) -> RemotePipelineFileCollection:
    """Return ``o`` if it is a remote collection, else a one-element collection holding it."""
    return _as_collection(o, RemotePipelineFileCollection, validate_remotepipelinefile_or_remotepipelinefilecollection)
