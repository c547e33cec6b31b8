"""Store step: push pending additions, deletions and undos of a file collection through a storage broker."""

from __future__ import annotations

import contextlib
from typing import Any

from aodncore.pipeline.files import PipelineFile, PipelineFileCollection, ensure_pipelinefilecollection
from aodncore.pipeline.log import SYSINFO
from aodncore.pipeline.steps.archiveversions import preserve_previous_versions
from aodncore.pipeline.steps.basestep import BaseStepRunner
from aodncore.pipeline.storage import BaseStorageBroker, get_storage_broker
from aodncore.util.privatecopies import archive_uploads

__all__ = ["get_store_runner", "StoreRunner"]


def get_store_runner(store_base_url: str, config: Any, logger: Any, archive_mode: bool = False) -> StoreRunner:
    """Build a :class:`StoreRunner` on the broker selected by ``store_base_url``."""
    return StoreRunner(get_storage_broker(store_base_url), config, logger, archive_mode)


class StoreRunner(BaseStepRunner):
    """Store files with a broker, either in the publish store (``dest_path``) or, in archive mode, in the archive
    (``archive_path``). In archive mode a different object already at an archive path is kept under a versioned
    name first (:mod:`aodncore.pipeline.steps.archiveversions`): the archive keeps every version."""

    def __init__(self, broker: BaseStorageBroker, config: Any, logger: Any, archive_mode: bool = False) -> None:
        super().__init__(config, logger)
        self.broker = broker
        self.archive_mode = archive_mode

    def __repr__(self) -> str:
        return f"{type(self).__name__}(broker={self.broker!r})"

    @property
    def is_stored_attr(self) -> str:
        return "is_archived" if self.archive_mode else "is_stored"

    @property
    def pending_addition_attr(self) -> str:
        return "pending_archive" if self.archive_mode else "pending_store_addition"

    @property
    def dest_path_attr(self) -> str:
        return "archive_path" if self.archive_mode else "dest_path"

    def set_is_overwrite(self, pipeline_files: PipelineFile | PipelineFileCollection) -> None:
        """Record on each file whether storing it will replace an existing object."""
        self.broker.set_is_overwrite(ensure_pipelinefilecollection(pipeline_files), dest_path_attr=self.dest_path_attr)

    def run(self, pipeline_files: PipelineFile | PipelineFileCollection) -> None:
        """Upload pending additions, delete pending deletions, then delete uploads that must be undone."""
        files = ensure_pipelinefilecollection(pipeline_files)
        logger = self._get_logger()

        additions = files.filter_by_bool_attribute(self.pending_addition_attr)
        if additions:
            if self.archive_mode:  # the archive keeps every version (see archiveversions)
                preserve_previous_versions(self.broker, additions, self.dest_path_attr, logger)
            logger.log(SYSINFO, "%s: storing %d file(s) with %r", type(self).__name__, len(additions), self.broker)
            # the archive may hard-link a run's declared private copies (aodncore.util.privatecopies)
            with archive_uploads() if self.archive_mode else contextlib.nullcontext():
                self.broker.upload(additions, is_stored_attr=self.is_stored_attr, dest_path_attr=self.dest_path_attr)

        deletions = files.filter_by_bool_attribute("pending_store_deletion")
        if deletions:
            logger.log(SYSINFO, "%s: deleting %d file(s) with %r", type(self).__name__, len(deletions), self.broker)
            self.broker.delete(deletions, is_stored_attr="is_stored", dest_path_attr=self.dest_path_attr)

        undo = files.filter_by_bool_attribute("pending_undo")
        if undo:
            logger.log(SYSINFO, "%s: undoing %d upload(s) with %r", type(self).__name__, len(undo), self.broker)
            self.broker.delete(undo, is_stored_attr="is_upload_undone", dest_path_attr=self.dest_path_attr)
