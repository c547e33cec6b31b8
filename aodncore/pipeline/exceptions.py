"""Exception classes of the pipeline.

Subclasses of :class:`PipelineProcessingError` are *user* errors (the uploader can fix the data); everything
else, including subclasses of :class:`PipelineSystemError`, is a *system* error reported to the pipeline owner.
"""

from aodncore.common.exceptions import PipelineProcessingError, PipelineSystemError

__all__ = [
    "AttributeNotSetError",
    "AttributeValidationError",
    "ComplianceCheckFailedError",
    "DuplicatePipelineFileError",
    "GeonetworkConnectionError",
    "GeonetworkRequestError",
    "HandlerAlreadyRunError",
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
    "MissingConfigFileError",
    "MissingConfigParameterError",
    "MissingFileError",
    "NotificationFailedError",
    "PipelineProcessingError",
    "PipelineSystemError",
    "StorageBrokerError",
    "UnexpectedCsvFilesError",
    "UnmappedFilesError",
    "UnmatchedFilesError",
]


class ComplianceCheckFailedError(PipelineProcessingError):
    """One or more files did not pass their checks."""


class InvalidFileNameError(PipelineProcessingError):
    """A file name does not follow the naming rules of the pipeline."""


class InvalidFileContentError(PipelineProcessingError):
    """A file's content is not what the pipeline expects."""


class InvalidFileFormatError(PipelineProcessingError):
    """A file is not of the expected format (or is an unsafe archive/manifest)."""


class AttributeNotSetError(PipelineSystemError):
    """A required attribute of a file was never set."""


class AttributeValidationError(PipelineSystemError):
    """An attribute value is invalid or not unique."""


class DuplicatePipelineFileError(PipelineSystemError):
    """The same file was added to a collection twice."""


class HandlerAlreadyRunError(PipelineSystemError):
    """A handler instance can only run once."""


class InvalidCheckSuiteError(PipelineSystemError):
    """An unknown or missing compliance check suite was requested."""


class InvalidCheckTypeError(PipelineSystemError):
    """A check type that cannot be checked was requested."""


class InvalidConfigError(PipelineSystemError):
    """The configuration is missing or invalid."""


class InvalidHandlerError(PipelineSystemError):
    """A handler could not be found or loaded."""


class InvalidHarvesterError(PipelineSystemError):
    """An unknown harvester was requested."""


class InvalidHarvestMapError(PipelineSystemError):
    """The harvester map is inconsistent."""


class InvalidInputFileError(PipelineSystemError):
    """The input file cannot be used (missing, unreadable, not allowed)."""


class InvalidPathFunctionError(PipelineSystemError):
    """A destination/archive path function cannot be resolved."""


class InvalidRecipientError(PipelineSystemError):
    """A notification recipient string is invalid."""


class InvalidStoreUrlError(PipelineSystemError):
    """A storage URL is invalid or the store cannot be reached."""


class MissingConfigParameterError(PipelineSystemError):
    """A required configuration parameter is missing."""


class MissingFileError(PipelineSystemError):
    """A file that should exist does not."""


class MissingConfigFileError(PipelineSystemError):
    """A required configuration file is missing."""


class NotificationFailedError(PipelineSystemError):
    """A notification could not be delivered."""


class StorageBrokerError(PipelineSystemError):
    """A storage operation failed."""


class UnmappedFilesError(PipelineSystemError):
    """Files matched no harvester."""


class UnmatchedFilesError(PipelineSystemError):
    """Files were left without a publish type."""


class UnexpectedCsvFilesError(PipelineSystemError):
    """CSV files matched no configured database object."""


class InvalidSchemaError(PipelineSystemError):
    """A table schema definition is invalid."""


class InvalidSQLConnectionError(PipelineSystemError):
    """The database connection failed."""


class InvalidSQLTransactionError(PipelineSystemError):
    """A database statement failed."""


class GeonetworkConnectionError(PipelineSystemError):
    """GeoNetwork could not be reached."""


class GeonetworkRequestError(PipelineSystemError):
    """A GeoNetwork request failed."""
