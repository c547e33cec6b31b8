"""`PipelineFile`: one file moving through the pipeline, with its check and publish settings and progress."""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aodncore.pipeline.common import (
    CheckResult,
    PipelineFileCheckType,
    PipelineFilePublishType,
    validate_checkresult,
    validate_publishtype,
    validate_settable_checktype,
)
from aodncore.pipeline.files.base import PipelineFileBase
from aodncore.util.misc import validate_bool, validate_callable, validate_relative_path_attr, validate_string

if TYPE_CHECKING:
    from aodncore.pipeline.files.remote import RemotePipelineFile


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
