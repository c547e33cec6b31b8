"""Utility helpers re-exported for convenience.

The light-weight modules (:mod:`.misc`, :mod:`.fileops`, :mod:`.process`, :mod:`.external`) are imported eagerly.
Names from :mod:`.ff` (tableschema), :mod:`.wfs` (owslib) and :mod:`.s3_util` (boto3) are resolved lazily on first
access (PEP 562), so that ``import aodncore.pipeline`` -- which imports validators from this package -- stays fast.
``from aodncore.util import *`` still binds every name of ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .external import IndexedSet, classproperty, lazyproperty, retry_decorator
from .fileops import (
    TemporaryDirectory,
    dir_exists,
    extract_gzip,
    extract_zip,
    filesystem_sort_key,
    find_file,
    get_file_checksum,
    is_dir_writable,
    is_gzip_file,
    is_jpeg_file,
    is_json_file,
    is_netcdf_file,
    is_nonempty_file,
    is_pdf_file,
    is_png_file,
    is_tiff_file,
    is_zip_file,
    list_regular_files,
    mkdir_p,
    rm_f,
    rm_r,
    rm_rf,
    safe_copy_file,
    safe_move_file,
    validate_dir_writable,
    validate_file_writable,
)
from .misc import (
    CaptureStdIO,
    LoggingContext,
    Pattern,
    TemplateRenderer,
    WriteOnceOrderedDict,
    discover_entry_points,
    ensure_regex,
    ensure_regex_list,
    ensure_writeonceordereddict,
    format_exception,
    generate_id,
    get_pattern_subgroups_from_string,
    is_function,
    is_nonstring_iterable,
    is_valid_email_address,
    iter_public_attributes,
    list_not_empty,
    matches_regexes,
    merge_dicts,
    slice_sequence,
    str_to_list,
    validate_bool,
    validate_callable,
    validate_dict,
    validate_int,
    validate_mandatory_elements,
    validate_mapping,
    validate_membership,
    validate_nonstring_iterable,
    validate_regex,
    validate_regexes,
    validate_relative_path,
    validate_relative_path_attr,
    validate_string,
    validate_type,
)
from .process import SystemProcess

__all__ = [
    "CaptureStdIO",
    "DEFAULT_WFS_VERSION",
    "IndexedSet",
    "LoggingContext",
    "Pattern",
    "SystemProcess",
    "TemplateRenderer",
    "TemporaryDirectory",
    "WfsBroker",
    "WriteOnceOrderedDict",
    "classproperty",
    "extract_gzip",
    "extract_zip",
    "dir_exists",
    "discover_entry_points",
    "ensure_regex",
    "ensure_regex_list",
    "ensure_writeonceordereddict",
    "generate_id",
    "get_pattern_subgroups_from_string",
    "filesystem_sort_key",
    "format_exception",
    "get_file_checksum",
    "is_dir_writable",
    "is_gzip_file",
    "is_jpeg_file",
    "is_json_file",
    "is_netcdf_file",
    "is_nonempty_file",
    "is_pdf_file",
    "is_png_file",
    "is_tiff_file",
    "is_zip_file",
    "is_function",
    "is_nonstring_iterable",
    "is_valid_email_address",
    "iter_public_attributes",
    "lazyproperty",
    "matches_regexes",
    "merge_dicts",
    "list_regular_files",
    "find_file",
    "mkdir_p",
    "retry_decorator",
    "rm_f",
    "rm_r",
    "rm_rf",
    "safe_copy_file",
    "safe_move_file",
    "slice_sequence",
    "str_to_list",
    "list_not_empty",
    "validate_bool",
    "validate_callable",
    "validate_dict",
    "validate_dir_writable",
    "validate_file_writable",
    "validate_int",
    "validate_mapping",
    "validate_mandatory_elements",
    "validate_membership",
    "validate_nonstring_iterable",
    "validate_regex",
    "validate_regexes",
    "validate_relative_path",
    "validate_relative_path_attr",
    "validate_string",
    "validate_type",
    "get_field_type",
    "get_tableschema_descriptor",
]

# name -> sub-module providing it, imported on first access
_LAZY_NAMES = {
    "DEFAULT_WFS_VERSION": "wfs",
    "WfsBroker": "wfs",
    "get_field_type": "ff",
    "get_tableschema_descriptor": "ff",
    # s3_util names are importable from here but (as upstream) not listed in __all__
    "move_object": "s3_util",
    "list_1000_objects": "s3_util",
    "download_object": "s3_util",
    "is_s3": "s3_util",
    "get_s3_bucket": "s3_util",
    "get_s3_key": "s3_util",
    "delete_object": "s3_util",
    "set_s3": "s3_util",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ImportError as e:  # e.g. s3_util not written yet, or an optional dependency missing
        raise AttributeError(f"module {__name__!r} cannot provide {name!r}: {e}") from e
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))
