"""Shared machinery of the IMOS and GHRSST suites: result collection, attribute tests and a one-pass classification
of the variables of a dataset (coordinates, data, QC and vertical variables).

Only compliance_checker, netCDF4, numpy and cftime are used here; nothing from the rest of aodncore.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
from compliance_checker.base import BaseCheck, BaseNCCheck, Result

from aodncore.__about__ import __version__

HIGH = BaseCheck.HIGH
MEDIUM = BaseCheck.MEDIUM

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_MISSING = object()


# --------------------------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------------------------
class Results:
    """Collects single-assertion `Result`s; compliance-checker later groups them by (name, weight)."""

    def __init__(self) -> None:
        self.items: list[Result] = []

    def add(self, passed: bool, name: str, weight: int, msg: str | None = None, variable: str | None = None) -> bool:
        msgs = [] if passed or not msg else [msg]
        self.items.append(Result(weight, bool(passed), name, msgs, variable_name=variable))
        return bool(passed)

    def ok(self, name: str, weight: int, msg: str | None = None) -> bool:
        """Record a pass (`msg` is kept on the result; reports only print messages of failing groups)."""
        self.items.append(Result(weight, True, name, [msg] if msg else []))
        return True

    def fail(self, name: str, weight: int, msg: str) -> bool:
        return self.add(False, name, weight, msg)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.items)


# --------------------------------------------------------------------------------------------------------------------
# value helpers
# --------------------------------------------------------------------------------------------------------------------
def get_attr(obj: Any, name: str, default: Any = _MISSING) -> Any:
    """Attribute of a Dataset or Variable, `default` (a private sentinel unless given) when absent."""
    try:
        return obj.getncattr(name)
    except (AttributeError, KeyError, RuntimeError):
        return default


def has_attr(obj: Any, name: str) -> bool:
    return name in obj.ncattrs()


def str_attr(obj: Any, name: str) -> str:
    """The attribute if it is a string, else ''."""
    value = get_attr(obj, name, "")
    return value if isinstance(value, str) else ""


def is_missing(value: Any) -> bool:
    return value is _MISSING


def is_blank(value: Any) -> bool:
    """Absent, or a string that is empty or only whitespace."""
    return value is _MISSING or (isinstance(value, str) and not value.strip())


def is_scalar(value: Any) -> bool:
    return isinstance(value, str) or np.ndim(value) == 0


def is_number(value: Any) -> bool:
    """A single numeric value (not a string, not an array)."""
    if isinstance(value, str | bytes | bool) or np.ndim(value) != 0:
        return False
    return np.issubdtype(np.asarray(value).dtype, np.number)


def is_float_dtype(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "f"


def is_numeric_dtype(dtype: Any, allow_unsigned: bool = False) -> bool:
    """Signed integers and floats; unsigned integers only when `allow_unsigned` (quirk Q3)."""
    if not isinstance(dtype, np.dtype):
        return False
    return dtype.kind in ("fiu" if allow_unsigned else "fi")


def scalar_equals(value: Any, expected: Any) -> bool:
    """`value == expected` for single values; arrays never match (quirk Q13: no exception)."""
    if not is_scalar(value):
        return False
    if isinstance(expected, str) or isinstance(value, str):
        return isinstance(value, str) and isinstance(expected, str) and value == expected
    try:
        return bool(value == expected)
    except (TypeError, ValueError):
        return False


def scalar_in(value: Any, allowed: Iterable[Any]) -> bool:
    return any(scalar_equals(value, candidate) for candidate in allowed)


def is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.strptime(value, TIMESTAMP_FORMAT)
    except ValueError:
        return False
    return True


def split_names(value: Any) -> list[str]:
    """Variable names in a `coordinates` / `ancillary_variables` attribute (runs of blanks allowed, quirk Q7)."""
    return value.split() if isinstance(value, str) else []


@lru_cache(maxsize=256)
def convertible_to_metre(units: str) -> bool:
    from compliance_checker.cfunits import PyUdunits2

    try:
        return bool(PyUdunits2(units).is_convertible(PyUdunits2("m")))
    except Exception:  # unknown or unparsable unit string
        return False


def fmt(value: Any) -> str:
    """Readable value for messages (plain Python repr, no numpy type names)."""
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    return repr(value)


# --------------------------------------------------------------------------------------------------------------------
# dataset classification
# --------------------------------------------------------------------------------------------------------------------
def _is_qc_variable(name: str, var: Any) -> bool:
    long_name = str_attr(var, "long_name")
    return (
        name.endswith("_quality_control")
        or str_attr(var, "standard_name").endswith("status_flag")
        or "status_flag" in long_name
        or "quality flag" in long_name
        or has_attr(var, "quality_control_conventions")
    )


def _vertical_type(name: str, var: Any, ancillary: set[str]) -> str | None:
    """'depth', 'height', 'unknown' (axis Z only) or None: the name-first heuristic of the IMOS suites (Q12)."""
    if name in ancillary or name.endswith("_quality_control"):
        return None
    standard_name = str_attr(var, "standard_name")
    if standard_name.startswith("sea_floor_depth") or "wave" in standard_name:
        return None
    if "wave" in str_attr(var, "long_name"):
        return None
    lower = name.lower()
    if "depth" in lower:
        return "depth"
    if "height" in lower:
        return "height"
    if standard_name in ("depth", "height"):
        return standard_name
    positive = str_attr(var, "positive")
    if positive == "down":
        return "depth"
    if positive == "up":
        return "height"
    if str_attr(var, "axis") == "Z":
        return "unknown"
    return None


class DatasetInfo:
    """Variable roles computed once per dataset; numeric values are read lazily, at most once per variable."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self.variables: dict[str, Any] = dict(ds.variables)
        self.global_attrs: list[str] = list(ds.ncattrs())
        self.coordinate_vars: list[str] = [
            name for name, var in self.variables.items() if var.dimensions == (name,) and name in ds.dimensions
        ]
        self.ancillary: set[str] = set()
        self.auxiliary: set[str] = set()
        # QC/ancillary variable -> variables naming it in their ancillary_variables
        self.parents: dict[str, list[str]] = {}
        for name, var in self.variables.items():
            for anc in split_names(get_attr(var, "ancillary_variables", None)):
                if anc in self.variables:
                    self.ancillary.add(anc)
                    self.parents.setdefault(anc, []).append(name)
            for aux in split_names(get_attr(var, "coordinates", None)):
                if aux in self.variables:
                    self.auxiliary.add(aux)
        coords = set(self.coordinate_vars)
        self.data_vars: list[str] = [
            name
            for name, var in self.variables.items()
            if name not in coords
            and name not in self.auxiliary
            and name not in self.ancillary
            and len(var.dimensions) > 0
            and is_numeric_dtype(var.dtype)
            and not has_attr(var, "flag_meanings")
            and not has_attr(var, "sample_dimension")
            and not has_attr(var, "instance_dimension")
        ]
        self.qc_vars: list[str] = [name for name, var in self.variables.items() if _is_qc_variable(name, var)]
        self.vertical: dict[str, str] = {}
        for name, var in self.variables.items():
            vtype = _vertical_type(name, var, self.ancillary)
            if vtype is not None:
                self.vertical[name] = vtype
        self._values: dict[str, np.ndarray] = {}

    def values(self, name: str) -> np.ndarray:
        """Valid (non-fill, finite) values of a numeric variable as a flat float64 array (empty if none)."""
        if name not in self._values:
            self._values[name] = self._read(self.variables[name])
        return self._values[name]

    @staticmethod
    def _read(var: Any) -> np.ndarray:
        if not is_numeric_dtype(var.dtype, allow_unsigned=True):
            return np.empty(0)
        # Mask only _FillValue (not valid_min/valid_max); restore the variable's own settings afterwards because
        # the same Dataset object is shared with the other suites of the run.
        old_mask, old_scale = var.mask, var.scale
        try:
            var.set_auto_maskandscale(False)
            raw = np.asarray(var[...])
        finally:
            var.set_auto_mask(old_mask)
            var.set_auto_scale(old_scale)
        data = raw.astype(np.float64).ravel()
        keep = np.isfinite(data)
        fill = get_attr(var, "_FillValue", None)
        if fill is not None and is_number(fill):
            keep &= data != np.float64(fill)
        data = data[keep]
        scale, offset = get_attr(var, "scale_factor", None), get_attr(var, "add_offset", None)
        if old_scale and is_number(scale):
            data = data * float(scale)
        if old_scale and is_number(offset):
            data = data + float(offset)
        return data


def data_min_max(info: DatasetInfo, name: str) -> tuple[float, float] | None:
    values = info.values(name)
    if values.size == 0:
        return None
    return float(values.min()), float(values.max())


class NcSuiteBase(BaseNCCheck, BaseCheck):
    """Base of the three suites: cheap zero-argument constructor, exception-safe `setup`, shared checks."""

    _cc_display_headers = {3: "Required", 2: "Recommended", 1: "Suggested"}
    _cc_authors = "aodncore developers"
    _cc_checker_version = __version__

    def __init__(self, options: dict | None = None) -> None:
        super().__init__(options)
        self.info: DatasetInfo | None = None

    def setup(self, ds: Any) -> None:  # no super(): BaseCheck.setup only emits a DeprecationWarning in CC 6
        """Classify the variables of `ds` once. Never raises: a failure leaves `info` unset and each check then
        raises, which compliance-checker reports as an error for that check."""
        try:
            self.info = DatasetInfo(ds)
        except Exception:
            self.info = None

    def _info(self, ds: Any) -> DatasetInfo:
        if self.info is None or self.info.ds is not ds:
            self.info = DatasetInfo(ds)
        return self.info

    # checks every suite runs (compliance-checker finds them by their check_ names) ----------------------------------
    def check_global_attributes(self, ds: Any) -> Results:
        """No string-valued global attribute may be empty."""
        res = Results()
        for attr in ds.ncattrs():
            value = ds.getncattr(attr)
            if isinstance(value, str):
                res.add(value != "", attr, HIGH, f"global attribute '{attr}' is empty")
        return res

    def check_variable_attributes(self, ds: Any) -> Results:
        """No string-valued variable attribute may be empty."""
        res = Results()
        for name, var in self._info(ds).variables.items():
            for attr in var.ncattrs():
                value = var.getncattr(attr)
                if isinstance(value, str):
                    res.add(value != "", name, HIGH, f"variable {name}: attribute '{attr}' is empty")
        return res

    def check_coordinate_variables(self, ds: Any) -> Results:
        """Coordinate variables are numeric and strictly monotonic."""
        res = Results()
        info = self._info(ds)
        for name in info.coordinate_vars:
            var = info.variables[name]
            if not res.add(
                is_numeric_dtype(var.dtype, allow_unsigned=True),
                name,
                HIGH,
                f"coordinate variable {name} should be of numeric type",
            ):
                continue
            values = info.values(name)
            diffs = np.diff(values)
            monotonic = values.size < 2 or bool(np.all(diffs > 0) or np.all(diffs < 0))
            res.add(monotonic, name, HIGH, f"coordinate variable {name} values should be strictly monotonic")
        return res

    def check_variable_attribute_type(self, ds: Any) -> Results:
        """_FillValue, valid_min and valid_max are single values of the variable's own type."""
        res = Results()
        for name, var in self._info(ds).variables.items():
            dtype = var.dtype
            for attr in ("_FillValue", "valid_min", "valid_max"):
                value = get_attr(var, attr)
                if is_missing(value):
                    continue
                if not isinstance(dtype, np.dtype) or dtype.kind in "SUO":
                    # text variables: a single character (or string) fill value is the only sensible thing
                    res.add(
                        isinstance(value, str | bytes),
                        name,
                        HIGH,
                        f"variable {name}: attribute '{attr}' should have same type as variable ({dtype})",
                    )
                    continue
                if not res.add(is_scalar(value), name, HIGH, f"variable {name}: attribute '{attr}' should be a "
                               f"single value"):
                    continue
                value_dtype = np.asarray(value).dtype
                res.add(
                    not isinstance(value, str) and value_dtype == dtype,
                    name,
                    HIGH,
                    f"variable {name}: attribute '{attr}' should have same type as variable "
                    f"({dtype}, not {'string' if isinstance(value, str) else value_dtype})",
                )
        return res

    def check_data_variable_present(self, ds: Any) -> Results:
        """At least one data variable."""
        res = Results()
        res.add(
            bool(self._info(ds).data_vars),
            "data_variable_present",
            HIGH,
            "file should contain at least one data variable (none found)",
        )
        return res

    def _data_variables_units_coordinates(self, ds: Any) -> Results:
        res = Results()
        info = self._info(ds)
        for name in info.data_vars:
            var = info.variables[name]
            res.add(not is_blank(get_attr(var, "units")), name, HIGH, f"variable {name}: attribute 'units' missing")
            coordinates = get_attr(var, "coordinates")
            tokens = split_names(coordinates)
            valid = not is_blank(coordinates) and bool(tokens) and all(t in info.variables for t in tokens)
            res.add(
                valid,
                name,
                HIGH,
                f"variable {name}: coordinates attribute must contain a blank-separated list of valid variable names"
                f" (got {fmt(None if is_missing(coordinates) else coordinates)})",
            )
        return res


def check_attr_value(
    res: Results, obj: Any, attr: str, expected: Any, weight: int, name: str, what: str, optional: bool = False
) -> None:
    """Attribute equals `expected` (a value) or is one of `expected` (a list/tuple)."""
    value = get_attr(obj, attr)
    if is_missing(value):
        if not optional:
            res.fail(name, weight, f"{what} '{attr}' missing")
        return
    if isinstance(expected, list | tuple):
        res.add(scalar_in(value, expected), name, weight, f"{what} '{attr}' should be one of {list(expected)!r} "
                f"(got {fmt(value)})")
    else:
        res.add(scalar_equals(value, expected), name, weight, f'{what} \'{attr}\' should be set to "{expected}" '
                f"(got {fmt(value)})")


def check_attr_pattern(
    res: Results, obj: Any, attr: str, pattern: re.Pattern[str], weight: int, name: str, what: str
) -> None:
    """Attribute is a string matching `pattern` (`re.match`, i.e. anchored at the start)."""
    value = get_attr(obj, attr)
    if is_missing(value):
        res.fail(name, weight, f"{what} '{attr}' missing")
        return
    res.add(
        isinstance(value, str) and pattern.match(value) is not None,
        name,
        weight,
        f"{what} '{attr}' doesn't match expected pattern '{pattern.pattern}'",
    )


def check_attr_string(
    res: Results, obj: Any, attr: str, weight: int, name: str, what: str, allow_blank: bool = False
) -> None:
    """Attribute present (and not blank unless `allow_blank`) and a string."""
    value = get_attr(obj, attr)
    if is_missing(value) or (not allow_blank and is_blank(value)):
        res.fail(name, weight, f"{what} '{attr}' missing")
        return
    res.add(isinstance(value, str), name, weight, f"{what} '{attr}' should have type string")


def check_attr_present(res: Results, obj: Any, attr: str, weight: int, name: str, what: str) -> None:
    res.add(not is_blank(get_attr(obj, attr)), name, weight, f"{what} '{attr}' not present")



def check_time_basics(res: Results, var: Any, name: str, dtype: Any, dtype_text: str) -> None:
    """What every suite requires of its time variable: its data type, standard_name, axis and calendar."""
    res.add(var.dtype == dtype, name, MEDIUM, f"variable {name} should be of type {dtype_text}, not {var.dtype}")
    what = f"variable {name} attribute"
    for attr, expected in (("standard_name", "time"), ("axis", "T"), ("calendar", "gregorian")):
        check_attr_value(res, var, attr, expected, HIGH, name, what)
