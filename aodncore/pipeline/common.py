"""Enumerations and small value types shared by every pipeline layer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from typing import Any

from aodncore.util.external import classproperty
from aodncore.util.fileops import (
    is_gzip_file,
    is_jpeg_file,
    is_json_file,
    is_netcdf_file,
    is_nonempty_file,
    is_pdf_file,
    is_png_file,
    is_tiff_file,
    is_zip_file,
)
from aodncore.util.misc import Validator, is_valid_email_address, validate_membership, validate_type

__all__ = [
    "CheckResult",
    "FileType",
    "HandlerResult",
    "NotificationRecipientType",
    "PipelineFileCheckType",
    "PipelineFilePublishType",
    "validate_addition_publishtype",
    "validate_checkresult",
    "validate_checktype",
    "validate_deletion_publishtype",
    "validate_publishtype",
    "validate_recipienttype",
    "validate_settable_checktype",
]


class CheckResult:
    """Outcome of checking one file: ``compliant`` (truthy = passed), ``log`` lines, and whether the checker erred."""

    __slots__ = ("_compliant", "_log", "_errors")

    def __init__(self, compliant: Any, log: Sequence[str], errors: bool = False) -> None:
        self._compliant = compliant
        self._log = log
        self._errors = errors

    @property
    def compliant(self) -> Any:
        return self._compliant

    @property
    def log(self) -> Sequence[str]:
        return self._log

    @property
    def errors(self) -> bool:
        return self._errors

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        yield "compliant", self._compliant
        yield "errors", self._errors
        yield "log", self._log

    def __repr__(self) -> str:
        return f"CheckResult(compliant={self._compliant!r}, log={self._log!r}, errors={self._errors!r})"


class HandlerResult(Enum):
    """Final result of a handler run."""

    UNKNOWN = 0
    SUCCESS = 1
    ERROR = 2


def _never_valid(_address: str) -> bool:
    return False


def _always_valid(_address: str) -> bool:
    return True


class NotificationRecipientType(Enum):
    """Notification protocols; each carries its protocol name, an address validator and an error text."""

    INVALID = ("invalid", _never_valid, "invalid protocol")
    EMAIL = ("email", is_valid_email_address, "invalid email address")
    SNS = ("sns", _always_valid, "invalid SNS topic")

    def __init__(self, protocol: str, address_validation_function: Callable[[str], Any], error_string: str) -> None:
        self._protocol = protocol
        self._is_valid_address = address_validation_function
        self._error_string = error_string

    @property
    def protocol(self) -> str:
        return self._protocol

    @property
    def address_validation_function(self) -> Callable[[str], Any]:
        return self._is_valid_address

    @property
    def error_string(self) -> str:
        return self._error_string

    @classmethod
    def get_type_from_protocol(cls, protocol: str) -> NotificationRecipientType:
        """Member whose protocol equals ``protocol`` exactly (case-sensitive), else ``INVALID``."""
        for member in cls:
            if member.protocol == protocol:
                return member
        return cls.INVALID


class FileType(Enum):
    """Known file types: extensions (with dot, lower case), MIME type and a validator for the content.

    Lookups return the first member in declaration order whose extensions match.
    """

    UNKNOWN = ((), None, is_nonempty_file)
    CSV = ((".csv",), "text/csv", is_nonempty_file)
    GZIP = ((".gz",), "application/gzip", is_gzip_file)
    JPEG = ((".jpg", ".jpeg"), "image/jpeg", is_jpeg_file)
    PDF = ((".pdf",), "application/pdf", is_pdf_file)
    PNG = ((".png",), "image/png", is_png_file)
    ZIP = ((".zip",), "application/zip", is_zip_file)
    TIFF = ((".tif", ".tiff"), "image/tiff", is_tiff_file)
    NETCDF = ((".nc",), "application/octet-stream", is_netcdf_file)
    DIR_MANIFEST = ((".dir_manifest",), "text/plain", is_nonempty_file)
    JSON_MANIFEST = ((".json_manifest",), "application/json", is_json_file)
    MAP_MANIFEST = ((".map_manifest",), "text/csv", is_nonempty_file)
    RSYNC_MANIFEST = ((".rsync_manifest",), "text/plain", is_nonempty_file)
    SIMPLE_MANIFEST = ((".manifest",), "text/plain", is_nonempty_file)
    DELETE_MANIFEST = ((".delete_manifest",), "text/csv", is_nonempty_file)

    def __init__(self, extensions: tuple[str, ...], mime_type: str | None, validator: Callable[[str], Any]) -> None:
        self.extensions = extensions
        self.mime_type = mime_type
        self.validator = validator

    @classmethod
    def get_type_from_extension(cls, extension: str) -> FileType:
        """Type for an extension such as ``'.NC'`` (case-insensitive), else ``UNKNOWN``."""
        wanted = extension.lower()
        for member in cls:
            if wanted in member.extensions:
                return member
        return cls.UNKNOWN

    @classmethod
    def get_type_from_name(cls, name: str) -> FileType:
        """Type from the last extension of a file name, path or URL."""
        return cls.get_type_from_extension(os.path.splitext(name)[1])

    def is_type(self, value: str) -> bool:
        """True if the major part of the MIME type (before ``/``) is ``value``."""
        if self.mime_type is None:
            return False
        return self.mime_type.split("/", 1)[0] == value

    @property
    def is_image_type(self) -> bool:
        return self.is_type("image")


class PipelineFileCheckType(Enum):
    """Which check a file receives."""

    UNSET = 0
    NO_ACTION = 1
    NONEMPTY_CHECK = 2
    FORMAT_CHECK = 3
    NC_COMPLIANCE_CHECK = 4
    TABLE_SCHEMA_CHECK = 5

    @classproperty
    def all_settable_types(cls) -> set[PipelineFileCheckType]:  # noqa: N805
        return {member for member in cls if member is not cls.UNSET}

    @classproperty
    def all_checkable_types(cls) -> set[PipelineFileCheckType]:  # noqa: N805
        return {member for member in cls if member not in (cls.UNSET, cls.NO_ACTION)}


#: first two publish flags: which kind of file a publish type applies to
_FOR_ADDITIONS = (True, False)
_FOR_DELETIONS = (False, True)
_FOR_EITHER = (True, True)


def _publish_flags(applies_to: tuple[bool, bool], archive: bool = False, store: bool = False,
                   harvest: bool = False) -> tuple[bool, ...]:
    """The ``(addition, deletion, archive, store, harvest)`` flag tuple of a publish type."""
    return (*applies_to, archive, store, harvest)


class PipelineFilePublishType(Enum):
    """What publishing does with a file.

    Each member's value is the flag tuple ``(addition, deletion, archive, store, harvest)``; for deletion types,
    *store* means "delete from the store" and *harvest* means "un-harvest".
    """

    UNSET = (None, None, None, None, None)
    NO_ACTION = _publish_flags(_FOR_EITHER)
    ARCHIVE_ONLY = _publish_flags(_FOR_ADDITIONS, archive=True)
    UPLOAD_ONLY = _publish_flags(_FOR_ADDITIONS, store=True)
    HARVEST_ONLY = _publish_flags(_FOR_ADDITIONS, harvest=True)
    HARVEST_ARCHIVE = _publish_flags(_FOR_ADDITIONS, archive=True, harvest=True)
    HARVEST_UPLOAD = _publish_flags(_FOR_ADDITIONS, store=True, harvest=True)
    HARVEST_ARCHIVE_UPLOAD = _publish_flags(_FOR_ADDITIONS, archive=True, store=True, harvest=True)
    UNHARVEST_ONLY = _publish_flags(_FOR_DELETIONS, harvest=True)
    DELETE_ONLY = _publish_flags(_FOR_DELETIONS, store=True)
    DELETE_UNHARVEST = _publish_flags(_FOR_DELETIONS, store=True, harvest=True)

    @property
    def is_addition_type(self) -> bool | None:
        return self.value[0]

    @property
    def is_deletion_type(self) -> bool | None:
        return self.value[1]

    @property
    def is_archive_type(self) -> bool | None:
        return self.value[2]

    @property
    def is_store_type(self) -> bool | None:
        return self.value[3]

    @property
    def is_harvest_type(self) -> bool | None:
        return self.value[4]

    @classmethod
    def get_type_from_name(cls, name: str) -> PipelineFilePublishType:
        """Member with exactly this name, else ``UNSET``."""
        return cls.__members__.get(name, cls.UNSET)

    @classproperty
    def all_addition_types(cls) -> set[PipelineFilePublishType]:  # noqa: N805
        return {member for member in cls if member.is_addition_type}

    @classproperty
    def all_deletion_types(cls) -> set[PipelineFilePublishType]:  # noqa: N805
        return {member for member in cls if member.is_deletion_type}


validate_checkresult: Validator = validate_type(CheckResult)
validate_checktype: Validator = validate_membership(PipelineFileCheckType)
validate_settable_checktype: Validator = validate_membership(PipelineFileCheckType.all_settable_types)
validate_checkable_checktype: Validator = validate_membership(PipelineFileCheckType.all_checkable_types)
validate_publishtype: Validator = validate_membership(PipelineFilePublishType)
validate_addition_publishtype: Validator = validate_membership(PipelineFilePublishType.all_addition_types)
validate_deletion_publishtype: Validator = validate_membership(PipelineFilePublishType.all_deletion_types)
validate_recipienttype: Validator = validate_membership(NotificationRecipientType)
