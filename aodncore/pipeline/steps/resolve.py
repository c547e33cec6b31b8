"""Resolve step: turn one input file (a single file, an archive or a manifest) into a ``PipelineFileCollection``.

Single files and archives are copied or extracted into ``output_dir`` here; manifests are resolved by the runners of
:mod:`aodncore.pipeline.steps.manifests` (re-exported here under the classic names). Archives and manifests are
untrusted input: extraction goes through the hardened :mod:`aodncore.util.archives` with the decompression caps of
:mod:`aodncore.limits`, and manifest entries must lie under the allowed roots. Every error names the input file (its
landing location when known) and the reason.
"""

from __future__ import annotations

import abc
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aodncore.limits import archive_limits
from aodncore.pipeline.common import FileType
from aodncore.pipeline.exceptions import InvalidFileFormatError, InvalidInputFileError
from aodncore.pipeline.files import PipelineFileCollection
from aodncore.pipeline.steps.manifestpaths import LandingContext
from aodncore.pipeline.steps.manifests import (
    BaseCsvManifestResolveRunner,
    BaseManifestResolveRunner,
    DeleteManifestResolveRunner,
    DirManifestResolveRunner,
    JsonManifestResolveRunner,
    MapManifestResolveRunner,
    RsyncLineType,
    RsyncManifestLine,
    RsyncManifestResolveRunner,
    SimpleManifestResolveRunner,
    TableRowErrorDetails,
)
from aodncore.pipeline.steps.resolvebase import BaseResolveRunner
from aodncore.util.fileops import (
    _is_s3_url,
    extract_gzip,
    extract_zip,
    is_gzip_file,
    is_zip_file,
    safe_copy_file,
    safe_move_file,
)

__all__ = [
    "get_resolve_runner",
    "BaseCsvManifestResolveRunner",
    "BaseManifestResolveRunner",
    "BaseResolveRunner",
    "DeleteManifestResolveRunner",
    "DirManifestResolveRunner",
    "GzipFileResolveRunner",
    "JsonManifestResolveRunner",
    "LandingContext",
    "MapManifestResolveRunner",
    "RsyncLineType",
    "RsyncManifestLine",
    "RsyncManifestResolveRunner",
    "SimpleManifestResolveRunner",
    "SingleFileResolveRunner",
    "TableRowErrorDetails",
    "ZipFileResolveRunner",
]


def get_resolve_runner(input_file: str, output_dir: str, config: Any, logger: Any,
                       resolve_params: dict | None = None, landing: LandingContext | None = None
                       ) -> BaseResolveRunner:
    """Return the resolve runner suited to ``input_file``, chosen from its extension.

    ``landing`` says where the input was landed (set by the ingest runner; None for a plain path): manifests use
    it for their allowed roots and relative entries (see :mod:`aodncore.pipeline.steps.manifestpaths`).
    """
    kind = FileType.get_type_from_name(input_file)
    if kind is FileType.DELETE_MANIFEST and not (resolve_params or {}).get("allow_delete_manifests"):
        raise InvalidFileFormatError("delete_manifests are not enabled for this pipeline")

    # manifests take the resolve parameters (relative_path_root...), the other runners do not
    manifest_runners = {
        FileType.SIMPLE_MANIFEST: SimpleManifestResolveRunner,
        FileType.JSON_MANIFEST: JsonManifestResolveRunner,
        FileType.MAP_MANIFEST: MapManifestResolveRunner,
        FileType.RSYNC_MANIFEST: RsyncManifestResolveRunner,
        FileType.DIR_MANIFEST: DirManifestResolveRunner,
        FileType.DELETE_MANIFEST: DeleteManifestResolveRunner,
    }
    if kind in manifest_runners:
        return manifest_runners[kind](input_file, output_dir, config, logger, resolve_params, landing=landing)
    archive_runners = {FileType.ZIP: ZipFileResolveRunner, FileType.GZIP: GzipFileResolveRunner}
    if kind in archive_runners:
        return archive_runners[kind](input_file, output_dir, config, logger, landing=landing)
    return SingleFileResolveRunner(input_file, output_dir, config=config, logger=logger)


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------

def _input_basename(input_file: str) -> str:
    """File name of a local path or of an ``s3://`` object key (``#`` and ``?`` are part of the key)."""
    if not _is_s3_url(input_file):
        return os.path.basename(input_file)
    from aodncore.util.s3_util import get_s3_key  # local import: boto3 is only needed for S3 inputs

    return os.path.basename(get_s3_key(input_file))


@contextmanager
def _local_copy(input_file: str, output_dir: str) -> Iterator[str]:
    """Yield a local path for ``input_file``.

    Local paths are yielded unchanged. An ``s3://`` object is *downloaded* (the landing object is left in place)
    into a private temporary directory beside ``output_dir`` — never a shared ``/tmp/<name>`` — which is removed
    afterwards whatever happens.
    """
    if not _is_s3_url(input_file):
        yield input_file
        return

    from aodncore.util import s3_util  # local import: boto3 is only needed for S3 inputs

    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    temp_dir = tempfile.mkdtemp(prefix=".resolve-download-", dir=parent)
    try:
        local_path = os.path.join(temp_dir, _input_basename(input_file) or "input")
        try:
            s3_util.download_object(s3_util.get_s3_bucket(input_file), s3_util.get_s3_key(input_file), local_path)
        except Exception as e:  # botocore errors carry no stable base class worth importing here
            code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchKey", "NoSuchBucket", "403", "AccessDenied"}:
                raise InvalidInputFileError(f"input file '{input_file}' could not be downloaded: "
                                            f"{type(e).__name__}: {e}") from e
            raise
        yield local_path
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------------
# base classes
# ----------------------------------------------------------------------------------------------------------------

# ----------------------------------------------------------------------------------------------------------------
# single files and archives
# ----------------------------------------------------------------------------------------------------------------

class SingleFileResolveRunner(BaseResolveRunner):
    """Copy (or move) one file into ``output_dir``; ``s3://`` sources are supported by the file operations."""

    def run(self, move: bool = False) -> PipelineFileCollection:
        destination = os.path.join(self.output_dir, _input_basename(self.input_file))
        if move:
            safe_move_file(self.input_file, destination)
        else:
            safe_copy_file(self.input_file, destination)
        self._collection.add(destination)
        return self._collection


class _ArchiveResolveRunner(BaseResolveRunner):
    """Extract an archive into ``output_dir`` and collect the regular files found there.

    An ``s3://`` archive is downloaded into a private temporary directory beside ``output_dir`` (the landing object
    is not deleted) and that copy is removed after extraction. Subclasses describe the archive format.
    """

    #: exceptions of a corrupt archive, reported as ``InvalidFileFormatError``
    format_errors: tuple[type[BaseException], ...] = ()
    #: message parts: ``input_file must be a valid <label> file: '...' is not <not_readable>``
    label = ""
    not_readable = ""
    #: message part: ``<kind> '...' could not be <failed_action>``
    kind = ""
    failed_action = ""
    #: whether files in sub-directories of the extracted tree are collected
    recursive = False

    def __init__(self, input_file: str, output_dir: str, config: Any, logger: Any,
                 landing: LandingContext | None = None) -> None:
        super().__init__(input_file, output_dir, config=config, logger=logger)
        self.landing = landing

    @property
    def _archive_name(self) -> str:
        """The archive as the uploader knows it: its landing location when known, else the input path."""
        return self.landing.location if self.landing is not None else self.input_file

    def run(self) -> PipelineFileCollection:
        with _local_copy(self.input_file, self.output_dir) as local_path:
            if not self._is_archive(local_path):
                raise InvalidFileFormatError(f"input_file must be a valid {self.label} file: '{self._archive_name}' "
                                             f"is not {self.not_readable}")
            os.makedirs(self.output_dir, exist_ok=True)
            try:
                self._extract(local_path)
            except InvalidFileFormatError as e:
                raise _name_archive(e, self._archive_name, (local_path, self.input_file)) from e
            except self.format_errors as e:
                raise InvalidFileFormatError(f"{self.kind} '{self._archive_name}' could not be "
                                             f"{self.failed_action}: {type(e).__name__}: {e}") from e
        self._add_directory_contents(self.output_dir, recursive=self.recursive)
        return self._collection

    @abc.abstractmethod
    def _is_archive(self, local_path: str) -> bool:
        """Whether the local file is a readable archive of this format."""

    @abc.abstractmethod
    def _extract(self, local_path: str) -> None:
        """Extract the local archive into ``output_dir`` with the hardened extraction function."""


class GzipFileResolveRunner(_ArchiveResolveRunner):
    """Decompress a gzip file into ``output_dir`` and collect the files found directly in it."""

    format_errors = (OSError, EOFError, zlib.error)
    label, not_readable = "GZ", "a readable gzip file"
    kind, failed_action = "gzip file", "decompressed"
    recursive = False

    def _is_archive(self, local_path: str) -> bool:
        return is_gzip_file(local_path)

    def _extract(self, local_path: str) -> None:
        extract_gzip(local_path, self.output_dir, limits=archive_limits(self._config))


class ZipFileResolveRunner(_ArchiveResolveRunner):
    """Extract a zip archive into ``output_dir`` and collect every regular file in it, recursively.

    An ``s3://`` zip is downloaded into a private temporary directory beside ``output_dir`` (the landing object
    is not deleted) and that copy is removed after extraction.
    """

    format_errors = (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, EOFError,
                     zlib.error)
    label, not_readable = "ZIP", "a readable zip archive"
    kind, failed_action = "zip file", "extracted"
    recursive = True

    def _is_archive(self, local_path: str) -> bool:
        return is_zip_file(local_path)

    def _extract(self, local_path: str) -> None:
        extract_zip(local_path, self.output_dir, limits=archive_limits(self._config))


def _name_archive(error: InvalidFileFormatError, name: str, local_paths: tuple[str, ...]) -> InvalidFileFormatError:
    """Return an error whose message names the archive as ``name`` (not a working copy or download of it)."""
    message = str(error)
    for local_path in local_paths:
        if local_path != name and local_path in message:
            return InvalidFileFormatError(message.replace(local_path, name))
    if name in message:
        return error
    return InvalidFileFormatError(f"archive '{name}': {message}")


