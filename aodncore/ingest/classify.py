"""Whether a handler's error quarantines the landing object or fails it: THE one home of that rule.

*Quarantined* means the input itself is bad: a retry would give the same error, so the original goes to the error
store with its reason and leaves the landing area. *Failed* means a retry can fix it (a store or network down, a
configuration being fixed, a crash or a bug): the landing object stays and the next run takes it again.

The rule, in order:

1. a :class:`~aodncore.common.exceptions.PipelineProcessingError` (the handler's own verdict "bad data":
   failed checks, bad names, content, format, unsafe archives and manifests) → quarantined;
2. an error of a class in :data:`INPUT_ERROR_CLASSES` — classic *system* classes that, raised about a file, say
   the input is bad (``allowed_regexes`` refusal, a file an archive or manifest names is missing, a file matching
   no include regex, ``allowed_*_path_regexes`` refusal, …) → quarantined, **unless** it was raised because of an
   environment failure (its cause chain holds one, see :func:`environment_failure`), e.g. the classic
   ``InvalidInputFileError`` wrapping a permission or I/O error reading the input, or a failed download → failed
   (a missing file, ``ENOENT``, is not an environment failure: it is what the input named);
3. anything else (``ConfigurationError``, ``StorageError``, ``HarvestError`` families, ``AttributeNotSetError``,
   ``HandlerAlreadyRunError``, non-aodncore exceptions, ``KeyboardInterrupt``) → failed.

This decides only the ingest outcome. Who the handler notifies is unchanged: a classic system error still notifies
the owner list, never the uploader, even when its file is quarantined here.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from aodncore.common.exceptions import PipelineProcessingError
from aodncore.ingest.outcome import FAILED, QUARANTINED
from aodncore.pipeline.exceptions import (
    AttributeValidationError,
    ConfigurationError,
    DuplicatePipelineFileError,
    HarvestError,
    InvalidInputFileError,
    MissingFileError,
    StorageError,
    UnexpectedCsvFilesError,
    UnmappedFilesError,
    UnmatchedFilesError,
)

__all__ = ["INPUT_ERROR_CLASSES", "classify_error", "environment_failure", "is_data_error"]

#: Classic system-error classes that, raised by a handler, say its input is bad (and why).
INPUT_ERROR_CLASSES: dict[type[BaseException], str] = {
    InvalidInputFileError: "the input cannot be used (e.g. its name matches no allowed_regexes pattern)",
    MissingFileError: "a file the input names (archive member, manifest entry, expected product) does not exist",
    AttributeValidationError: "a file's attributes are refused (allowed_*_path_regexes, clashing unique values)",
    DuplicatePipelineFileError: "the input names the same file twice",
    UnmatchedFilesError: "files of the input match no include regex (left without a publish type)",
    UnmappedFilesError: "files of the input match no harvester",
    UnexpectedCsvFilesError: "CSV files of the input match no configured database object",
}

#: aodncore error families that are about the environment, never about the input.
_ENVIRONMENT_CLASSES: tuple[type[BaseException], ...] = (
    StorageError, HarvestError, ConfigurationError, ConnectionError, TimeoutError, MemoryError,
)
#: ``errno`` values that say a file is not there: about what the input names, not about the environment.
_MISSING_FILE_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR})
#: Modules whose exceptions are network or remote-service failures.
_ENVIRONMENT_MODULES = ("botocore", "boto3", "urllib3", "requests", "paramiko", "socket", "ssl", "s3fs", "aiobotocore")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it was raised from (``__cause__``, or ``__context__`` unless suppressed), once each."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _is_environment(error: BaseException) -> bool:
    if isinstance(error, _ENVIRONMENT_CLASSES):
        return True
    # an OSError with a system errno (EACCES, EIO, ENOSPC, EMFILE, …) comes from the environment; a missing file
    # (ENOENT) is what the input named, and one without a positive errno (a gzip or netCDF library's "not a valid
    # file", netCDF's negative codes) is about the content
    if isinstance(error, OSError):
        code = error.errno
        return isinstance(code, int) and code > 0 and code not in _MISSING_FILE_ERRNOS
    return type(error).__module__.split(".")[0] in _ENVIRONMENT_MODULES


def environment_failure(error: BaseException) -> BaseException | None:
    """The environment failure (store, network, OS, memory) ``error`` was raised from, if any (``error`` itself
    counts when it is one)."""
    return next((link for link in _chain(error) if _is_environment(link)), None)


def is_data_error(error: BaseException) -> bool:
    """True when ``error`` says the handler's input is bad (see the module docstring for the rule)."""
    if isinstance(error, PipelineProcessingError):
        return True
    if isinstance(error, tuple(INPUT_ERROR_CLASSES)):
        return environment_failure(error) is None
    return False


def classify_error(error: BaseException) -> str:
    """:data:`QUARANTINED` or :data:`FAILED` for an error a handler ended with."""
    return QUARANTINED if is_data_error(error) else FAILED
