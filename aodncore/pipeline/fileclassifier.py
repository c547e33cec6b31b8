"""Helpers for deriving destination paths from IMOS file names and NetCDF global attributes.

Handlers subclass :class:`FileClassifier` and combine its class methods into their own ``dest_path`` rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aodncore.pipeline.exceptions import InvalidFileContentError, InvalidFileFormatError, InvalidFileNameError

DEFAULT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# The "extension": any one character followed by word characters up to the end of the name. The dot is
# deliberately not escaped (compatible behaviour): in a name without a dot, the tail made of word characters goes.
_EXTENSION_RE = re.compile(r".\w*$")


class FileClassifier:
    """Class methods that read IMOS naming fields and NetCDF attributes; subclass and combine them."""

    @classmethod
    def _get_file_name_fields(cls, input_file: str | os.PathLike[str], min_fields: int = 6) -> list[str]:
        """Split the file's base name, without its extension, on ``_``; fewer than ``min_fields`` parts is an error."""
        stem = _EXTENSION_RE.sub("", os.path.basename(input_file), count=1)
        fields = stem.split("_")
        if len(fields) < min_fields:
            raise InvalidFileNameError(f"'{input_file}' has less than {min_fields} fields in file name.")
        return fields

    @classmethod
    def _get_facility(cls, input_file: str | os.PathLike[str], check_sub: bool = True) -> tuple[str, ...]:
        """The second name field split on ``-``: ``(facility, sub_facility, ...)``.

        With ``check_sub`` a name without a sub-facility raises :class:`InvalidFileNameError`.
        """
        fields = cls._get_file_name_fields(input_file, min_fields=2)
        parts = tuple(fields[1].split("-"))
        if check_sub and len(parts) < 2:
            raise InvalidFileNameError(f"Missing sub-facility in file name '{input_file}'")
        return parts

    @classmethod
    def _open_nc_file(cls, file_path: str | os.PathLike[str]) -> Any:
        """Open a NetCDF file read-only; anything that goes wrong becomes :class:`InvalidFileFormatError`."""
        import netCDF4

        try:
            return netCDF4.Dataset(file_path, mode="r")
        except Exception as e:
            raise InvalidFileFormatError(f"Could not open NetCDF file '{file_path}'.") from e

    @classmethod
    def _get_nc_att(
        cls,
        file_path: str | os.PathLike[str],
        att_name: str | Sequence[str],
        default: Any = None,
        time_format: bool | str | None = None,
    ) -> Any:
        """Read one global attribute (``att_name`` a string) or several (a list, giving a list of values).

        A missing attribute is an :class:`InvalidFileContentError` unless ``default`` is given (the default is
        returned as is). ``time_format`` parses values into :class:`datetime` objects: ``True`` means
        ``%Y-%m-%dT%H:%M:%SZ``, a string is used as the ``strptime`` format.
        """
        names = [att_name] if isinstance(att_name, str) else list(att_name)
        if time_format is True:
            time_format = DEFAULT_TIME_FORMAT

        dataset = cls._open_nc_file(file_path)
        try:
            values = [cls._read_att(dataset, file_path, name, default, time_format) for name in names]
        finally:
            dataset.close()
        return values[0] if isinstance(att_name, str) else values

    @classmethod
    def _read_att(cls, dataset: Any, file_path: Any, name: str, default: Any, time_format: str | None) -> Any:
        if name not in dataset.ncattrs():
            if default is None:
                raise InvalidFileContentError(f"File '{file_path}' has no attribute '{name}'")
            return default
        value = dataset.getncattr(name)
        if not time_format:
            return value
        try:
            return datetime.strptime(value, time_format)
        except (TypeError, ValueError) as e:
            raise InvalidFileContentError(
                f"Could not parse attribute {name}='{value}' as a datetime (file '{file_path}')"
            ) from e

    @classmethod
    def _get_site_code(cls, input_file: str | os.PathLike[str]) -> Any:
        """The ``site_code`` global attribute (required)."""
        return cls._get_nc_att(input_file, "site_code")

    @classmethod
    def _get_variable_names(cls, input_file: str | os.PathLike[str]) -> list[str]:
        """Names of all variables of a NetCDF file."""
        dataset = cls._open_nc_file(input_file)
        try:
            return list(dataset.variables.keys())
        finally:
            dataset.close()

    @classmethod
    def _make_path(cls, dir_list: list[Any]) -> str:
        """Join path parts after converting each to ``str`` (the list itself is updated with the strings)."""
        for index, part in enumerate(dir_list):
            dir_list[index] = str(part)
        return os.path.join(*dir_list)
