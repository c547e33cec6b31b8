"""The file model: one file moving through the pipeline, a file in a store, and ordered collections of them.

This package is the public home of every name (``from aodncore.pipeline.files import X``); the code lives in
``base`` (`PipelineFileBase`), ``pipelinefile`` (`PipelineFile`), ``collectionbase`` (`PipelineFileCollectionBase`),
``collection`` (`PipelineFileCollection` and its validators) and ``remote`` (`RemotePipelineFile`,
`RemotePipelineFileCollection` and theirs). Classes and functions report ``aodncore.pipeline.files`` as their
module, so pickles, reprs and error messages name the same path as before the split.

Patch points (module globals resolved at call time): :func:`get_file_checksum` here (``PipelineFileBase`` looks it
up on this package) and ``os.path.isfile`` (``PipelineFileCollection.add`` calls it through ``os.path``).
"""

from __future__ import annotations

# Names this module has always made importable because it used them itself; kept for client code.
import abc  # noqa: F401
import mimetypes  # noqa: F401
import os  # noqa: F401  (``aodncore.pipeline.files.os.path.isfile`` is a patch target)
import warnings  # noqa: F401
from collections import Counter, OrderedDict  # noqa: F401
from collections.abc import Callable, Iterable, Iterator, MutableSet  # noqa: F401
from datetime import datetime  # noqa: F401
from typing import Any  # noqa: F401

from aodncore.pipeline.common import (  # noqa: F401
    CheckResult,
    FileType,
    PipelineFileCheckType,
    PipelineFilePublishType,
    validate_checkresult,
    validate_publishtype,
    validate_settable_checktype,
)
from aodncore.pipeline.exceptions import AttributeValidationError, DuplicatePipelineFileError, MissingFileError  # noqa: F401
from aodncore.util.external import IndexedSet  # noqa: F401
from aodncore.util.fileops import get_file_checksum, rm_f  # noqa: F401  (get_file_checksum: the patch point)
from aodncore.util.misc import (  # noqa: F401
    Validator,
    ensure_regex_list,
    format_exception,
    iter_public_attributes,
    matches_regexes,
    validate_bool,
    validate_callable,
    validate_int,
    validate_nonstring_iterable,
    validate_regexes,
    validate_relative_path_attr,
    validate_string,
    validate_type,
)

from .base import PipelineFileBase
from .collection import (
    PipelineFileCollection,
    ensure_pipelinefilecollection,
    validate_pipelinefile_or_pipelinefilecollection,
    validate_pipelinefile_or_string,
    validate_pipelinefilecollection,
)
from .collectionbase import PipelineFileCollectionBase
from .pipelinefile import PipelineFile
from .remote import (  # noqa: F401  (the remote validators were never in __all__)
    RemotePipelineFile,
    RemotePipelineFileCollection,
    ensure_remotepipelinefilecollection,
    validate_remotepipelinefile_or_remotepipelinefilecollection,
    validate_remotepipelinefile_or_string,
    validate_remotepipelinefilecollection,
)

__all__ = [
    "PipelineFileCollection",
    "PipelineFile",
    "RemotePipelineFile",
    "RemotePipelineFileCollection",
    "ensure_pipelinefilecollection",
    "ensure_remotepipelinefilecollection",
    "validate_pipelinefilecollection",
    "validate_pipelinefile_or_pipelinefilecollection",
    "validate_pipelinefile_or_string",
]

for _public in (PipelineFileBase, PipelineFile, RemotePipelineFile, PipelineFileCollectionBase, PipelineFileCollection,
                RemotePipelineFileCollection, ensure_pipelinefilecollection, ensure_remotepipelinefilecollection):
    _public.__module__ = __name__
del _public
