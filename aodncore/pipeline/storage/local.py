"""A store in a local directory."""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING

from aodncore.pipeline.files import RemotePipelineFile, RemotePipelineFileCollection
from aodncore.util.misc import validate_relative_path
from aodncore.util.privatecopies import link_private_copy

from .base import BaseStorageBroker, patch_points

if TYPE_CHECKING:
    from aodncore.pipeline.files import PipelineFile

__all__ = ["LocalFileStorageBroker"]


class LocalFileStorageBroker(BaseStorageBroker):
    """Store files below a local directory ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(prefix='{self.prefix}')"

    def _pre_run_hook(self):
        pass

    def _post_run_hook(self):
        pass

    def _delete_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        patch_points().rm_f(self._get_absolute_dest_path(pipeline_file, dest_path_attr))

    def _upload_file(self, pipeline_file: PipelineFile, dest_path_attr: str) -> None:
        target = self._get_absolute_dest_path(pipeline_file, dest_path_attr)
        patch_points().mkdir_p(os.path.dirname(target))
        if link_private_copy(pipeline_file.src_path, target, self.mode):
            return  # an archived private copy: the same file a copy gives (aodncore.util.privatecopies)
        patch_points().safe_copy_file(pipeline_file.src_path, target, overwrite=True)
        if self.mode is not None:
            os.chmod(target, self.mode)

    def _download_file(self, remote_pipeline_file: RemotePipelineFile) -> None:
        stored_copy = os.path.join(self.prefix, remote_pipeline_file.dest_path)
        patch_points().safe_copy_file(stored_copy, remote_pipeline_file.local_path, overwrite=True)

    def _get_is_overwrite(self, pipeline_file: PipelineFile, abs_path: str) -> bool:
        return os.path.exists(abs_path)

    def _run_query(self, query):
        validate_relative_path(query)
        path_prefix = os.path.join(self.prefix, query)
        search_root = os.path.dirname(path_prefix)
        results = RemotePipelineFileCollection()
        for dirpath, _dirnames, filenames in os.walk(search_root):
            for filename in sorted(filenames):
                path = os.path.join(dirpath, filename)
                if not path.startswith(path_prefix) or os.path.islink(path) or not os.path.isfile(path):
                    continue
                st = os.stat(path)
                # distinct paths give distinct dest_paths: skip the collection's quadratic uniqueness scan
                results.add(RemotePipelineFile(dest_path=os.path.relpath(path, self.prefix), name=filename,
                                               last_modified=datetime.fromtimestamp(st.st_mtime),
                                               size=st.st_size), validate_unique=False)
        return results
