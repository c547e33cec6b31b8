"""Resolve step: turn one input file (a single file, an archive or a manifest) into a ``PipelineFileCollection``.

Single files and archives are copied or extracted into ``output_dir``; manifests are read and the files they list
are referenced where they are (nothing is copied). Archives and manifests are treated as untrusted input: archive
extraction goes through the hardened :func:`aodncore.util.fileops.extract_zip` / ``extract_gzip``, and manifest
destination paths must be relative and free of ``..`` components. Every error names the input file and the reason.
"""

from __future__ import annotations

import abc
import json
import os
import re
import shutil
import tempfile
import warnings
import zipfile
import zlib
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

from aodncore.limits import archive_limits
from aodncore.pipeline.common import FileType
from aodncore.pipeline.exceptions import (
    DuplicateManifestEntryError,
    DuplicatePipelineFileError,
    InvalidFileFormatError,
    InvalidInputFileError,
    ManifestEntryMissingError,
    MissingFileError,
    UnsafeManifestEntryError,
)
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection, RemotePipelineFile
from aodncore.pipeline.steps.basestep import BaseStepRunner
from aodncore.pipeline.steps.manifestpaths import LandingContext, ManifestPaths
from aodncore.util.fileops import (
    _is_s3_url,
    extract_gzip,
    extract_zip,
    is_gzip_file,
    is_zip_file,
    list_regular_files,
    safe_copy_file,
    safe_move_file,
)

__all__ = [
    "get_resolve_runner",
    "DeleteManifestResolveRunner",
    "DirManifestResolveRunner",
    "GzipFileResolveRunner",
    "JsonManifestResolveRunner",
    "LandingContext",
    "MapManifestResolveRunner",
    "RsyncManifestResolveRunner",
    "SimpleManifestResolveRunner",
    "SingleFileResolveRunner",
    "ZipFileResolveRunner",
]

#: one collected CSV row error (map and delete manifests)
TableRowErrorDetails = namedtuple("TableRowErrorDetails", ["exc", "row_number", "row_data", "error_data"])


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
    return SingleFileResolveRunner(input_file, output_dir, config, logger)


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------

def _has_parent_reference(path: str) -> bool:
    """True if any component of ``path`` (split on ``/`` and ``\\``) is ``..``."""
    return ".." in re.split(r"[/\\]", path)


def _describe_unsafe_path(path: str) -> str | None:
    """Return why ``path`` cannot be used as a destination path, or None when it is acceptable."""
    if os.path.isabs(path) or path.startswith("\\"):
        return "must be a relative path"
    if _has_parent_reference(path):
        return "must not contain '..' components"
    return None


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

class BaseResolveRunner(BaseStepRunner, abc.ABC):
    """Base of all resolve runners: knows the input file and the directory files are placed in."""

    def __init__(self, input_file: str, output_dir: str, config: Any, logger: Any) -> None:
        super().__init__(config, logger)
        self.input_file = input_file
        self.output_dir = output_dir
        self._collection: PipelineFileCollection = PipelineFileCollection()

    @abc.abstractmethod
    def run(self) -> PipelineFileCollection:
        """Resolve the input file and return the resulting collection."""

    def _add_directory_contents(self, directory: str, recursive: bool) -> None:
        for path in list_regular_files(directory, recursive=recursive):
            self._collection.add(path)


class BaseManifestResolveRunner(BaseResolveRunner):
    """Base of manifest runners: every path a manifest names goes through :class:`ManifestPaths` (allowed roots,
    relative entries, symlinks, missing files)."""

    #: human-readable kind used in error messages
    manifest_kind = "manifest"

    def __init__(self, input_file: str, output_dir: str, config: Any, logger: Any,
                 resolve_params: dict | None = None, landing: LandingContext | None = None) -> None:
        super().__init__(input_file, output_dir, config=config, logger=logger)
        params = resolve_params or {}
        self.landing = landing
        self.allow_deletions = bool(params.get("allow_delete_manifests"))
        self.paths = ManifestPaths(input_file, config, params, landing, output_dir, self._where)
        self.relative_path_root = self.paths.relative_root

    def get_abs_path(self, path: str) -> str:
        """Return ``path`` unchanged if absolute, otherwise joined to ``relative_path_root``."""
        if os.path.isabs(path):
            return path
        return os.path.join(self.relative_path_root, path)

    @property
    def _manifest_name(self) -> str:
        """The manifest as the uploader knows it: its landing location when known, else the input path."""
        return self.landing.location if self.landing is not None else self.input_file

    def _where(self, location: str) -> str:
        return f"{self.manifest_kind} '{self._manifest_name}' {location}"

    def _check_dest_path(self, dest_path: str, location: str) -> None:
        reason = _describe_unsafe_path(dest_path)
        if reason is not None:
            raise InvalidFileFormatError(f"{self._where(location)}: dest_path '{dest_path}' {reason}")

    def _add(self, location: str, path: str | PipelineFile, **kwargs: Any) -> None:
        """Add one entry, re-raising collection errors with the manifest name and location attached."""
        try:
            self._collection.add(path, **kwargs)
        except DuplicatePipelineFileError as e:
            raise DuplicateManifestEntryError(f"{self._where(location)}: {e}") from e
        except MissingFileError as e:
            raise type(e)(f"{self._where(location)}: {e}") from e

    def _add_entry(self, location: str, entry: str, dest_path: str | None = None) -> None:
        """Add the file a manifest entry names (checked against the roots), with an optional preset dest_path."""
        local_path = self.paths.file(location, entry)
        self._add(location, PipelineFile(local_path, dest_path=dest_path))

    def _add_deletion(self, location: str, entry: str) -> None:
        """Add a deletion named by a manifest line; refused unless deletions are enabled for the pipeline."""
        if not self.allow_deletions:
            raise InvalidFileFormatError(
                f"{self._where(location)}: deletion of '{entry}' refused: deletions by manifest are not enabled "
                f"for this pipeline (resolve_params 'allow_delete_manifests')")
        self._add(location, self.paths.deletion_path(location, entry), is_deletion=True)

    def _read_lines(self) -> list[str]:
        """Lines of a text manifest with only the trailing line separator removed (blank lines are kept)."""
        try:
            with open(self.input_file) as f:
                return [line.rstrip(os.linesep) for line in f]
        except UnicodeDecodeError as e:
            raise InvalidFileFormatError(f"{self.manifest_kind} '{self._manifest_name}' is not a text file: "
                                         f"{e}") from e


class BaseCsvManifestResolveRunner(BaseManifestResolveRunner):
    """Base of the header-less CSV manifests (map, delete), parsed with tableschema.

    Every row error is collected (so the uploader sees all of them at once); once an error occurred no more
    files are added. Errors raise ``InvalidFileFormatError`` whose single argument is the list of messages.
    """

    #: column names of the CSV (the file itself has no header row)
    headers: tuple[str, ...] = ()

    def __init__(self, input_file: str, output_dir: str, config: Any, logger: Any,
                 resolve_params: dict | None = None, landing: LandingContext | None = None) -> None:
        super().__init__(input_file, output_dir, config, logger, resolve_params, landing=landing)
        self.errors: list[TableRowErrorDetails] = []

    @property
    def schema(self):
        """The strict ``tableschema.Schema`` the rows must satisfy: every column of :attr:`headers` is a
        required, unique string."""
        return self._make_schema(self.headers)

    @abc.abstractmethod
    def _row_handler(self, row: dict, row_number: int | None = None) -> None:
        """Turn one valid row into collection entries."""

    @staticmethod
    def _make_schema(field_names: tuple[str, ...]):
        import tableschema

        descriptor = {
            "fields": [
                {"name": name, "type": "string", "constraints": {"required": True, "unique": True}}
                for name in field_names
            ]
        }
        return tableschema.Schema(descriptor, strict=True)

    def _exc_handler(self, exc: Exception, row_number: int | None = None, row_data: Any = None,
                     error_data: Any = None) -> None:
        details = TableRowErrorDetails(exc=exc, row_number=row_number, row_data=row_data, error_data=error_data)
        self.errors.append(details)

    @staticmethod
    def _format_error(details: TableRowErrorDetails) -> str:
        exc = details.exc
        message = ",".join(str(a) for a in exc.args)
        sub_errors = ",".join(str(e) for e in (getattr(exc, "errors", None) or []))
        return f"{message}: {sub_errors}"

    def run(self) -> PipelineFileCollection:
        import tableschema
        import tabulator

        self.errors = []
        table = tableschema.Table(self.input_file, headers=list(self.headers), schema=self.schema, format="csv")
        try:
            for row_number, _headers, values in table.iter(extended=True, exc_handler=self._exc_handler):
                if self.errors:
                    continue
                self._row_handler(dict(zip(self.headers, values)), row_number)
        except (tableschema.exceptions.TableSchemaException, tabulator.exceptions.TabulatorException,
                UnicodeDecodeError) as e:
            raise InvalidFileFormatError(f"{self.manifest_kind} '{self._manifest_name}' could not be read as CSV: "
                                         f"{type(e).__name__}: {e}") from e

        if self.errors:
            messages = [self._format_error(d) for d in self.errors]
            self._get_logger().error("%s '%s' is invalid: %s", self.manifest_kind, self._manifest_name,
                                     "; ".join(messages))
            error = InvalidFileFormatError(messages)
            error.add_note(f"{self.manifest_kind}: {self._manifest_name}")
            raise error
        return self._collection


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
        super().__init__(input_file, output_dir, config, logger)
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


# ----------------------------------------------------------------------------------------------------------------
# manifests
# ----------------------------------------------------------------------------------------------------------------

class SimpleManifestResolveRunner(BaseManifestResolveRunner):
    """``*.manifest``: one local path per line; every line is used, so a blank line is an error."""

    manifest_kind = "manifest"

    def run(self) -> PipelineFileCollection:
        for number, path in enumerate(self._read_lines(), start=1):
            location = f"line {number}"
            if not path:
                raise ManifestEntryMissingError(f"{self._where(location)}: empty line does not name a file")
            self._add_entry(location, path)
        return self._collection


class DirManifestResolveRunner(BaseManifestResolveRunner):
    """``*.dir_manifest`` (deprecated): one path per line; a directory adds every regular file beneath it."""

    manifest_kind = "dir_manifest"

    def __init__(self, input_file: str, output_dir: str, config: Any, logger: Any,
                 resolve_params: dict | None = None, landing: LandingContext | None = None) -> None:
        warnings.warn("dir_manifest files are deprecated; use a manifest or json_manifest instead",
                      DeprecationWarning, stacklevel=2)
        super().__init__(input_file, output_dir, config, logger, resolve_params, landing=landing)

    def run(self) -> PipelineFileCollection:
        for number, path in enumerate(self._read_lines(), start=1):
            location = f"line {number}"
            if not path:
                # joined to the root this would name the whole root directory: refuse instead of expanding it
                raise ManifestEntryMissingError(f"{self._where(location)}: empty line does not name a file or "
                                                f"directory")
            if self.paths.is_directory(path):
                for file_path in self.paths.files_below(location, path):
                    self._add(location, file_path)
            else:
                self._add_entry(location, path)
        return self._collection


class JsonManifestResolveRunner(BaseManifestResolveRunner):
    """``*.json_manifest``: ``{"files": [{"local_path": ..., "dest_path": ...}, ...]}``."""

    manifest_kind = "json_manifest"

    def run(self) -> PipelineFileCollection:
        from jsonschema.exceptions import ValidationError

        from aodncore.pipeline.schema import validate_json_manifest

        try:
            with open(self.input_file) as f:
                manifest = json.load(f)
        except ValueError as e:
            raise InvalidFileFormatError(f"input_file must be a valid JSON file: '{self.input_file}': {e}") from e

        try:
            validate_json_manifest(manifest)
        except ValidationError as e:
            raise InvalidFileFormatError(f"input_file failed to validate against the JSON manifest schema: "
                                         f"'{self.input_file}': {e.message}") from e

        for index, entry in enumerate(manifest.get("files", [])):
            location = f"files[{index}]"
            dest_path = entry.get("dest_path") or None
            if dest_path is not None:
                self._check_dest_path(dest_path, location)
            self._add_entry(location, entry["local_path"], dest_path)
        return self._collection


class MapManifestResolveRunner(BaseCsvManifestResolveRunner):
    """``*.map_manifest``: header-less CSV ``local_path,dest_path`` (both required and unique)."""

    manifest_kind = "map_manifest"
    headers = ("local_path", "dest_path")

    def _row_handler(self, row: dict, row_number: int | None = None) -> None:
        location = f"line {row_number}"
        self._check_dest_path(row["dest_path"], location)
        self._add_entry(location, row["local_path"], row["dest_path"])


class DeleteManifestResolveRunner(BaseCsvManifestResolveRunner):
    """``*.delete_manifest``: header-less CSV with one column, the ``dest_path`` of each object to delete."""

    manifest_kind = "delete_manifest"
    headers = ("dest_path",)

    def _row_handler(self, row: dict, row_number: int | None = None) -> None:
        location = f"line {row_number}"
        dest_path = row["dest_path"]
        self._check_dest_path(dest_path, location)
        remote = RemotePipelineFile(dest_path)
        self._add(location, PipelineFile.from_remotepipelinefile(remote, is_deletion=True))


class RsyncLineType(Enum):
    """Classification of one line of ``rsync --itemize-changes`` output."""

    INVALID = 0
    HEADER = 1
    FILE_ADD = 2
    FILE_DELETE = 3
    DIRECTORY_ADD = 4
    DIRECTORY_DELETE = 5


class RsyncManifestLine:
    """One classified rsync line: ``path`` (None for headers and unrecognised lines) and ``type``."""

    __slots__ = ("path", "type")

    def __init__(self, path: str | None, type_: RsyncLineType) -> None:
        self.path = path
        self.type = type_

    def __repr__(self) -> str:
        return f"RsyncManifestLine(path={self.path!r}, type={self.type.name})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RsyncManifestLine):
            return NotImplemented
        return (self.path, self.type) == (other.path, other.type)

    def __hash__(self) -> int:
        return hash((self.path, self.type))


class RsyncManifestResolveRunner(BaseManifestResolveRunner):
    """``*.rsync_manifest``: the output of ``rsync --itemize-changes``.

    File additions (``>f.........``) are added, file deletions (``*deleting`` of a path not ending in ``/``) are
    added as deletions -- only when deletions by manifest are enabled (``resolve_params['allow_delete_manifests']``,
    as for ``.delete_manifest``), otherwise the manifest is refused; directory lines, the header and anything
    unrecognised are ignored. Paths containing ``..`` components are refused (rsync never prints them, and deletion
    paths feed the destination path).
    """

    manifest_kind = "rsync_manifest"

    HEADER_LINE = "receiving incremental file list"
    RECORD_PATTERN = re.compile(r"^(?P<operation>\*deleting|[>.][df].{9})\s{1,3}(?P<path>.*)$")
    FILE_ADD_PATTERN = re.compile(r"^>f.{9}$")
    DIR_ADD_PATTERN = re.compile(r"^\.d.{9}$")
    DELETE_PATTERN = re.compile(r"^\*deleting$")

    @classmethod
    def classify_line(cls, line: str) -> RsyncManifestLine:
        """Classify one line of rsync output."""
        if line == cls.HEADER_LINE:
            return RsyncManifestLine(path=None, type_=RsyncLineType.HEADER)
        record = cls.RECORD_PATTERN.match(line)
        if record is None:
            return RsyncManifestLine(path=None, type_=RsyncLineType.INVALID)
        operation, path = record.group("operation", "path")
        if cls.DELETE_PATTERN.match(operation):
            # rsync marks deleted directories with a trailing slash
            deleted = RsyncLineType.DIRECTORY_DELETE if path.endswith("/") else RsyncLineType.FILE_DELETE
            return RsyncManifestLine(path, deleted)
        additions = ((cls.FILE_ADD_PATTERN, RsyncLineType.FILE_ADD), (cls.DIR_ADD_PATTERN, RsyncLineType.DIRECTORY_ADD))
        added = next((kind for pattern, kind in additions if pattern.match(operation)), RsyncLineType.INVALID)
        return RsyncManifestLine(path, added)

    def run(self) -> PipelineFileCollection:
        for number, raw_line in enumerate(self._read_lines(), start=1):
            record = self.classify_line(raw_line)
            if record.type not in (RsyncLineType.FILE_ADD, RsyncLineType.FILE_DELETE):
                continue
            location = f"line {number}"
            if _has_parent_reference(record.path):
                raise UnsafeManifestEntryError(f"{self._where(location)}: path '{record.path}' must not contain "
                                               f"'..' components")
            if record.type is RsyncLineType.FILE_DELETE:
                self._add_deletion(location, record.path)
            else:
                self._add_entry(location, record.path)
        return self._collection
