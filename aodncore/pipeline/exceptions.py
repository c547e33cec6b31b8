"""Exception classes of the pipeline.

Subclasses of :class:`PipelineProcessingError` are *user* errors (the uploader can fix the data); everything
else, including subclasses of :class:`PipelineSystemError`, is a *system* error reported to the pipeline owner.

System errors are grouped by area so callers can catch a whole family: :class:`ConfigurationError` (settings,
parameters, plug-ins), :class:`FileCollectionError` (what was resolved and how it is described),
:class:`StorageError` (stores), :class:`HarvestError` (databases, harvesters, catalogues). The groups add no
behaviour; the classic names below keep their classic meaning.
"""

from aodncore.common.exceptions import AodnBaseError, PipelineProcessingError, PipelineSystemError

__all__ = [
    "AodnBaseError",
    "AttributeNotSetError",
    "AttributeValidationError",
    "CheckLimitExceededError",
    "ComplianceCheckFailedError",
    "ConfigurationError",
    "DuplicateDestinationError",
    "DuplicateManifestEntryError",
    "DuplicatePipelineFileError",
    "FileCollectionError",
    "GeonetworkConnectionError",
    "GeonetworkRequestError",
    "HandlerAlreadyRunError",
    "HarvestError",
    "InvalidCheckSuiteError",
    "InvalidCheckTypeError",
    "InvalidConfigError",
    "InvalidFileContentError",
    "InvalidFileFormatError",
    "InvalidFileNameError",
    "InvalidHandlerError",
    "InvalidHarvestMapError",
    "InvalidHarvesterError",
    "InvalidInputFileError",
    "InvalidPathFunctionError",
    "InvalidRecipientError",
    "InvalidSQLConnectionError",
    "InvalidSQLTransactionError",
    "InvalidSchemaError",
    "InvalidStoreUrlError",
    "ManifestEntryMissingError",
    "MissingConfigFileError",
    "MissingConfigParameterError",
    "MissingFileError",
    "NotificationFailedError",
    "PipelineProcessingError",
    "PipelineSystemError",
    "StorageBrokerError",
    "StorageError",
    "UnexpectedCsvFilesError",
    "UnmappedFilesError",
    "UnmatchedFilesError",
    "UnsafeManifestEntryError",
]


# -- user errors: the data is at fault -----------------------------------------------------------------------------


class ComplianceCheckFailedError(PipelineProcessingError):
    """One or more files did not pass their checks."""


class InvalidFileNameError(PipelineProcessingError):
    """A file name does not follow the naming rules of the pipeline."""


class InvalidFileContentError(PipelineProcessingError):
    """A file's content is not what the pipeline expects."""


class InvalidFileFormatError(PipelineProcessingError):
    """A file is not of the expected format (or is an unsafe archive or manifest)."""


# -- system errors, by area ----------------------------------------------------------------------------------------


class ConfigurationError(PipelineSystemError):
    """Settings, parameters or plug-ins are missing or wrong."""


class FileCollectionError(PipelineSystemError):
    """The resolved files, or the attributes describing them, are inconsistent."""


class StorageError(PipelineSystemError):
    """A store cannot be reached or an operation on it failed."""


class HarvestError(PipelineSystemError):
    """A harvester, database or metadata catalogue failed."""


class HandlerAlreadyRunError(PipelineSystemError):
    """A handler instance can only run once."""


class NotificationFailedError(PipelineSystemError):
    """A notification could not be delivered."""


class InvalidCheckSuiteError(ConfigurationError):
    """An unknown or missing compliance check suite was requested."""


class InvalidCheckTypeError(ConfigurationError):
    """A check type that cannot be checked was requested."""


class InvalidConfigError(ConfigurationError):
    """The configuration is missing or invalid."""


class InvalidHandlerError(ConfigurationError):
    """A handler could not be found or loaded."""


class InvalidHarvesterError(ConfigurationError):
    """An unknown harvester was requested."""


class InvalidPathFunctionError(ConfigurationError):
    """A destination/archive path function cannot be resolved."""


class InvalidRecipientError(ConfigurationError):
    """A notification recipient string is invalid."""


class InvalidSchemaError(ConfigurationError):
    """A table schema definition is invalid."""


class MissingConfigParameterError(ConfigurationError):
    """A required configuration parameter is missing."""


class MissingConfigFileError(ConfigurationError):
    """A required configuration file is missing."""


class AttributeNotSetError(FileCollectionError):
    """A required attribute of a file was never set."""


class AttributeValidationError(FileCollectionError):
    """An attribute value is invalid or not unique."""


class DuplicatePipelineFileError(FileCollectionError):
    """The same file was added to a collection twice."""


class InvalidInputFileError(FileCollectionError):
    """The input file cannot be used (missing, unreadable, not allowed)."""


class MissingFileError(FileCollectionError):
    """A file that should exist does not."""


class UnmappedFilesError(FileCollectionError):
    """Files matched no harvester."""


class UnmatchedFilesError(FileCollectionError):
    """Files were left without a publish type."""


class UnexpectedCsvFilesError(FileCollectionError):
    """CSV files matched no configured database object."""


class InvalidStoreUrlError(StorageError):
    """A storage URL is invalid or the store cannot be reached."""


class StorageBrokerError(StorageError):
    """A storage operation failed."""


class InvalidHarvestMapError(HarvestError):
    """The harvester map is inconsistent."""


class InvalidSQLConnectionError(HarvestError):
    """The database connection failed."""


class InvalidSQLTransactionError(HarvestError):
    """A database statement failed."""


class GeonetworkConnectionError(HarvestError):
    """GeoNetwork could not be reached."""


class GeonetworkRequestError(HarvestError):
    """A GeoNetwork request failed."""


# -- data errors that keep a classic system-error class as a second base ---------------------------------------------
# The classic library raised these situations as system errors (retried forever although no retry can fix them).
# They are data errors here: ``except PipelineProcessingError`` (checked first by the handler) quarantines them,
# while code catching the classic class (``except MissingFileError``) still catches them.


class UnsafeManifestEntryError(InvalidFileFormatError):
    """A manifest names a file outside the allowed manifest roots (``..`` escape, absolute path, symlink)."""


class ManifestEntryMissingError(InvalidFileFormatError, MissingFileError):
    """A manifest names a file that does not exist (or is not a regular file)."""


class DuplicateManifestEntryError(InvalidFileFormatError, DuplicatePipelineFileError):
    """A manifest names the same file twice."""


class DuplicateDestinationError(InvalidFileContentError, AttributeValidationError):
    """Two resolved files (e.g. zip members in different folders) map to the same destination or archive path."""


class CheckLimitExceededError(ComplianceCheckFailedError):
    """A file's checks exceeded the check memory or time cap (``limits.check_memory_bytes``/``..._seconds``)."""
