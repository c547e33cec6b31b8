"""Manifest resolve runners: text, JSON, CSV (map, delete), rsync and dir manifests.

Manifests are read and the files they list are referenced where they are, or, under the ingest runner, copied into
the working folder as they are checked; every path they name goes through
:class:`~aodncore.pipeline.steps.manifestpaths.ManifestPaths` (allowed roots, relative entries, symlinks, missing
files). Destination paths must be relative and free of ``..``; deletions need ``allow_delete_manifests``. Every
error names the manifest (its landing location when known) and the line or entry. Exported by
:mod:`aodncore.pipeline.steps.resolve` under the classic names.
"""

from __future__ import annotations

import abc
import json
import os
import re
import warnings
from collections import namedtuple
from enum import Enum
from typing import Any

from aodncore.pipeline.exceptions import (
    DuplicateManifestEntryError,
    DuplicatePipelineFileError,
    InvalidFileFormatError,
    ManifestEntryMissingError,
    MissingFileError,
    UnsafeManifestEntryError,
)
from aodncore.pipeline.files import PipelineFile, PipelineFileCollection, RemotePipelineFile
from aodncore.pipeline.steps.manifestpaths import LandingContext, ManifestPaths
from aodncore.pipeline.steps.resolvebase import BaseResolveRunner, describe_unsafe_path, has_parent_reference

__all__ = [
    "BaseCsvManifestResolveRunner",
    "BaseManifestResolveRunner",
    "DeleteManifestResolveRunner",
    "DirManifestResolveRunner",
    "JsonManifestResolveRunner",
    "MapManifestResolveRunner",
    "RsyncLineType",
    "RsyncManifestLine",
    "RsyncManifestResolveRunner",
    "SimpleManifestResolveRunner",
    "TableRowErrorDetails",
]

#: one collected CSV row error (map and delete manifests)
TableRowErrorDetails = namedtuple("TableRowErrorDetails", ["exc", "row_number", "row_data", "error_data"])


# ----------------------------------------------------------------------------------------------------------------
# base classes
# ----------------------------------------------------------------------------------------------------------------

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
        reason = describe_unsafe_path(dest_path)
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
# the manifest formats
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
            if has_parent_reference(record.path):
                raise UnsafeManifestEntryError(f"{self._where(location)}: path '{record.path}' must not contain "
                                               f"'..' components")
            if record.type is RsyncLineType.FILE_DELETE:
                self._add_deletion(location, record.path)
            else:
                self._add_entry(location, record.path)
        return self._collection
