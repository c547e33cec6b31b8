"""What every storage broker shares: the batch driver, destination paths, downloads below a local root."""

from __future__ import annotations

import abc
import builtins
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aodncore.pipeline.exceptions import AttributeNotSetError, StorageBrokerError
from aodncore.pipeline.files import (
    PipelineFileCollection,
    RemotePipelineFile,
    RemotePipelineFileCollection,
    ensure_pipelinefilecollection,
    ensure_remotepipelinefilecollection,
)
from aodncore.util.misc import ensure_regex_list, format_exception

if TYPE_CHECKING:
    from aodncore.pipeline.files import PipelineFile

__all__ = ["DISALLOWED_DELETE_REGEXES", "BaseStorageBroker", "open_file", "patch_points", "removed_on_error"]

LOGGER = logging.getLogger("aodncore.pipeline.storage")

#: regex patterns that would match every object and are refused by ``delete_regexes`` unless explicitly allowed
DISALLOWED_DELETE_REGEXES = {"", ".*", ".+"}


def patch_points() -> Any:
    """The ``aodncore.pipeline.storage`` package, whose globals are the brokers' patch points."""
    from aodncore.pipeline import storage

    return storage


def open_file(*args: Any, **kwargs: Any) -> Any:
    """``open`` as patched on ``aodncore.pipeline.storage`` (``mock.patch(..., create=True)``), else the builtin."""
    return vars(patch_points()).get("open", builtins.open)(*args, **kwargs)


def _safe_local_target(local_root: str, dest_path: str) -> str:
    """Join ``dest_path`` below ``local_root``, refusing paths that would land outside it."""
    root = os.path.abspath(local_root)
    target = os.path.abspath(os.path.join(root, dest_path))
    if os.path.commonpath([root, target]) != root or target == root:
        raise ValueError(f"destination path '{dest_path}' escapes the download directory")
    return target


@contextmanager
def removed_on_error(path: str) -> Iterator[None]:
    """Remove the (partial) file at ``path`` if the block fails."""
    try:
        yield
    except BaseException:
        try:
            os.remove(path)
        except OSError:
            pass
        raise


class BaseStorageBroker(abc.ABC):
    """Common behaviour of the storage brokers; subclasses implement the underscore hooks."""

    def __init__(self) -> None:
        self.prefix: str = ""
        self.mode: int | None = None

    # ---- hooks -----------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def _delete_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        """Delete the stored object of one file."""

    @abc.abstractmethod
    def _post_run_hook(self):
        """Run after an upload/delete/download batch (also after a failure)."""

    @abc.abstractmethod
    def _pre_run_hook(self):
        """Run before an upload/delete/download batch (connect, validate the store...)."""

    @abc.abstractmethod
    def _run_query(self, query):
        """Return a RemotePipelineFileCollection of the objects whose prefix-relative path starts with query."""

    @abc.abstractmethod
    def _download_file(self, remote_pipeline_file: RemotePipelineFile) -> None:
        """Copy one stored object to ``remote_pipeline_file.local_path``."""

    @abc.abstractmethod
    def _upload_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        """Copy one local file to the store."""

    @abc.abstractmethod
    def _get_is_overwrite(self, pipeline_file: PipelineFile, abs_path: str) -> bool:
        """Tell whether ``abs_path`` already exists in the store."""

    # ---- helpers ---------------------------------------------------------------------------------------------

    def _get_absolute_dest_path(self, pipeline_file, dest_path_attr: str) -> str:
        relative = getattr(pipeline_file, dest_path_attr)
        if relative:
            return os.path.join(self.prefix, relative)
        raise AttributeNotSetError(f"attribute '{dest_path_attr}' not set in '{pipeline_file}'")

    @staticmethod
    def _prepare_file_for_download(remote_pipeline_file, local_root: str) -> None:
        local_path = _safe_local_target(local_root, remote_pipeline_file.dest_path)
        remote_pipeline_file.local_path = local_path
        patch_points().mkdir_p(os.path.dirname(local_path))

    # ---- public API ------------------------------------------------------------------------------------------

    def set_is_overwrite(self, pipeline_files: PipelineFile | PipelineFileCollection,
                         dest_path_attr: str = "dest_path") -> None:
        """Set ``is_overwrite`` on every file that will be stored, from whether its destination already exists."""
        stored_additions = (f for f in ensure_pipelinefilecollection(pipeline_files)
                            if f.should_store and not f.is_deletion)
        for addition in stored_additions:
            target = self._get_absolute_dest_path(addition, dest_path_attr)
            addition.is_overwrite = self._get_is_overwrite(addition, target)

    #: the stores need a destination for every file: a missing one raises ``AttributeNotSetError`` before the
    #: per-file hook runs (the test broker, which stores nothing, turns this off)
    _requires_dest_path = True

    def _error_target(self, pipeline_file, dest_path_attr: str) -> str:
        """How a failed file's destination is named in a ``StorageBrokerError`` (the absolute path)."""
        return self._get_absolute_dest_path(pipeline_file, dest_path_attr)

    def _run_batch(self, files, action, verb: str, is_stored_attr: str, dest_path_attr: str) -> None:
        self._pre_run_hook()
        try:
            for item in files:
                if self._requires_dest_path:
                    self._get_absolute_dest_path(item, dest_path_attr)
                try:
                    action(item, dest_path_attr)
                except Exception as e:
                    target = self._error_target(item, dest_path_attr)
                    raise StorageBrokerError(f"error {verb} '{target}': {format_exception(e)}") from e
                setattr(item, is_stored_attr, True)
        finally:
            self._post_run_hook()

    def upload(self, pipeline_files: PipelineFile | PipelineFileCollection, is_stored_attr: str = "is_stored",
               dest_path_attr: str = "dest_path") -> None:
        """Upload files to ``<prefix>/<dest_path_attr>``, setting ``is_stored_attr`` on each success."""
        files = ensure_pipelinefilecollection(pipeline_files)
        self._run_batch(files, self._upload_file, "uploading", is_stored_attr, dest_path_attr)

    def delete(self, pipeline_files: PipelineFile | PipelineFileCollection, is_stored_attr: str = "is_stored",
               dest_path_attr: str = "dest_path") -> None:
        """Delete the stored objects of files, setting ``is_stored_attr`` on each success."""
        files = ensure_pipelinefilecollection(pipeline_files)
        self._run_batch(files, self._delete_file, "deleting", is_stored_attr, dest_path_attr)

    def _download_one(self, remote_file, local_path: str) -> None:
        try:
            self._prepare_file_for_download(remote_file, local_path)
            self._download_file(remote_file)
        except Exception as e:
            raise StorageBrokerError(f"error downloading '{remote_file.dest_path}' to '{local_path}': "
                                     f"{format_exception(e)}") from e

    def download(self, remote_pipeline_files: RemotePipelineFile | RemotePipelineFileCollection,
                 local_path: str) -> None:
        """Download remote files below ``local_path``; each file's ``local_path`` becomes
        ``<local_path>/<dest_path>``."""
        files = ensure_remotepipelinefilecollection(remote_pipeline_files)
        self._pre_run_hook()
        try:
            for remote_file in files:
                self._download_one(remote_file, local_path)
        finally:
            self._post_run_hook()

    def download_iterator(self, remote_pipeline_files: RemotePipelineFile | RemotePipelineFileCollection,
                          local_path: str) -> Iterator[RemotePipelineFile]:
        """Download files one at a time, yielding each and removing its local copy when the consumer moves on."""
        files = ensure_remotepipelinefilecollection(remote_pipeline_files)
        self._pre_run_hook()
        try:
            for remote_file in files:
                self._download_one(remote_file, local_path)
                try:
                    yield remote_file
                finally:
                    remote_file.remove_local()
        finally:
            self._post_run_hook()

    def delete_regexes(self, regexes, allow_match_all: bool = False) -> PipelineFileCollection:
        """Delete every stored object whose prefix-relative path ``re.match``-es one of ``regexes``.

        Catch-all patterns (``''``, ``'.*'``, ``'.+'``) are refused unless ``allow_match_all``. Returns the
        collection of deletions performed.
        """
        compiled = ensure_regex_list(regexes)
        if not allow_match_all:
            bad = [r.pattern for r in compiled if r.pattern in DISALLOWED_DELETE_REGEXES]
            if bad:
                raise ValueError(f"refusing to delete with match-all regexes {bad}; "
                                 f"use allow_match_all=True to permit them")
        if not compiled:
            return PipelineFileCollection()
        remote_files = self.query()
        matching = RemotePipelineFileCollection(
            [f for f in remote_files if any(r.match(f.dest_path) for r in compiled)], validate_unique=False)
        deletions = PipelineFileCollection.from_remotepipelinefilecollection(matching, are_deletions=True)
        if deletions:
            self.delete(deletions)
        return deletions

    def query(self, query: str = "") -> RemotePipelineFileCollection:
        """List stored objects whose path relative to the prefix starts with ``query`` (S3-style key prefix)."""
        try:
            return self._run_query(query)
        except Exception as e:
            raise StorageBrokerError(f"error querying storage: {format_exception(e)}") from e


