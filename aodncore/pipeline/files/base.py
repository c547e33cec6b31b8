"""`PipelineFileBase`: what a pipeline file and a remote file share (paths, type, identity, checksum)."""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from typing import Any

# The checksum is computed through the package's module global, looked up at call time: client test suites
# patch ``aodncore.pipeline.files.get_file_checksum`` (API §1.6).
from aodncore.pipeline import files as _patch_points
from aodncore.pipeline.common import FileType
from aodncore.pipeline.exceptions import MissingFileError
from aodncore.util.misc import format_exception, iter_public_attributes


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
            digest = _patch_points.get_file_checksum(self._local_path)
        except OSError as e:
            raise MissingFileError(f"failed to determine checksum for RemoteFile '{self._local_path}'. "
                                   f"{format_exception(e)}") from e
        self._file_checksum = digest
        return digest
