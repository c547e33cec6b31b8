"""Root of the aodncore exception tree."""

__all__ = ["AodnBaseError", "SystemCommandFailedError", "PipelineProcessingError", "PipelineSystemError"]


class AodnBaseError(Exception):
    """Base class of every error raised on purpose by aodncore."""


class SystemCommandFailedError(AodnBaseError):
    """An external command could not be started or exited with an error."""


class PipelineProcessingError(AodnBaseError):
    """The *data* is at fault: the uploader can correct it (bad name, content, format, failed checks)."""


class PipelineSystemError(AodnBaseError):
    """The *system* is at fault: configuration, environment, storage or code; the pipeline owner must act."""
