"""`ImosBaseCheck`: the checks IMOS 1.3 and 1.4 share (global attributes, coverage, coordinates, QC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import cftime
import numpy as np

from ._common import (
    HIGH,
    MEDIUM,
    TIMESTAMP_FORMAT,
    NcSuiteBase,
    Results,
    check_attr_present,
    check_attr_string,
    check_attr_value,
    check_time_basics,
    convertible_to_metre,
    data_min_max,
    fmt,
    get_attr,
    is_float_dtype,
    is_missing,
    is_number,
    is_timestamp,
    str_attr,
)
from ._imostext import GLOBAL, PROJECT, TZ_MAX, TZ_MIN, is_email_attribute_value


class ImosBaseCheck(NcSuiteBase):
    """Checks shared by IMOS 1.3 and 1.4; subclasses set the version tables."""

    _cc_spec = "imos"
    _cc_spec_version = ""
    _cc_description = "Integrated Marine Observing System (IMOS) NetCDF conventions"

    conventions_version = ""
    data_centres: list[str] = []
    data_centre_emails: list[str] = []
    qc_conventions: list[str] = []

    # ---------------------------------------------------------------------------------------------- global attributes
    def _mandatory_globals(self, ds: Any, res: Results) -> None:
        v = self.conventions_version
        check_attr_value(res, ds, "Conventions", [f"CF-1.6,IMOS-{v}", f"CF-1.6 IMOS-{v}"], HIGH, "Conventions", GLOBAL)
        check_attr_value(res, ds, "project", PROJECT, HIGH, "project", GLOBAL)
        check_attr_value(res, ds, "naming_authority", "IMOS", HIGH, "naming_authority", GLOBAL)
        date_created = get_attr(ds, "date_created")
        if is_missing(date_created):
            res.fail("date_created", HIGH, "global attribute 'date_created' missing")
        elif not isinstance(date_created, str):
            res.fail("date_created", HIGH, "global attribute 'date_created' should be a timestamp string")
        else:
            res.add(
                is_timestamp(date_created),
                "date_created",
                HIGH,
                f"global attribute 'date_created' is not in correct date/time format ({TIMESTAMP_FORMAT})",
            )
        for attr in ("title", "abstract", "author", "principal_investigator", "citation"):
            check_attr_string(res, ds, attr, HIGH, attr, GLOBAL)
        for attr, allowed in (("data_centre", self.data_centres), ("data_centre_email", self.data_centre_emails)):
            check_attr_value(res, ds, attr, allowed[0] if len(allowed) == 1 else allowed, HIGH, attr, GLOBAL)

    def check_mandatory_global_attributes(self, ds: Any) -> Results:
        """Mandatory global attributes and their required values."""
        res = Results()
        self._mandatory_globals(ds, res)
        return res

    def _optional_globals(self, ds: Any, res: Results) -> None:
        check_attr_value(res, ds, "geospatial_lat_units", "degrees_north", MEDIUM, "geospatial_lat_units", GLOBAL,
                         optional=True)
        check_attr_value(res, ds, "geospatial_lon_units", "degrees_east", MEDIUM, "geospatial_lon_units", GLOBAL,
                         optional=True)
        check_attr_value(res, ds, "geospatial_vertical_positive", ["up", "down"], MEDIUM,
                         "geospatial_vertical_positive", GLOBAL, optional=True)
        tz = get_attr(ds, "local_time_zone")
        if not is_missing(tz):
            valid = is_number(tz) and TZ_MIN <= float(tz) <= TZ_MAX and float(tz) * 4 == int(float(tz) * 4)
            res.add(valid, "local_time_zone", MEDIUM, "global attribute 'local_time_zone' should be a number of "
                    f"hours from {TZ_MIN:+g} to {TZ_MAX:+g} in quarter-hour steps (got {fmt(tz)})")
        for attr in ("author_email", "principal_investigator_email"):
            value = get_attr(ds, attr)
            if not is_missing(value):
                res.add(is_email_attribute_value(value), attr, MEDIUM,
                        f"global attribute '{attr}' is not a valid email address "
                        f"(got {fmt(value)})")

    def check_optional_global_attributes(self, ds: Any) -> Results:
        """Optional global attributes, checked only when present."""
        res = Results()
        self._optional_globals(ds, res)
        return res

    def check_geospatial_vertical_units(self, ds: Any) -> Results:
        """geospatial_vertical_units, if present, is a unit of distance."""
        res = Results()
        units = get_attr(ds, "geospatial_vertical_units")
        if not is_missing(units):
            res.add(
                isinstance(units, str) and convertible_to_metre(units),
                "geospatial_vertical_units",
                HIGH,
                f"global attribute 'geospatial_vertical_units' should be a valid CF depth unit (got {fmt(units)})",
            )
        return res

    # --------------------------------------------------------------------------------------- coverage vs. the data
    def _lat_lon_min_max(self, ds: Any, var_name: str, prefix: str) -> Results:
        res = Results()
        info = self._info(ds)
        if var_name not in info.variables:
            return res
        extremes = data_min_max(info, var_name)
        for index, which in enumerate(("min", "max")):
            attr = f"{prefix}_{which}"
            value = get_attr(ds, attr)
            if is_missing(value):
                res.fail(attr, HIGH, f"global attribute '{attr}' not present")
                continue
            if not res.add(is_number(value), attr, HIGH, f"global attribute '{attr}' type is not numeric"):
                continue
            if extremes is not None:
                res.add(
                    bool(np.isclose(float(value), extremes[index])),
                    attr,
                    HIGH,
                    f"{which} value of {var_name} ({fmt(extremes[index])}) does not match attribute {attr} "
                    f"({fmt(value)})",
                )
        return res

    def check_geospatial_lat_min_max(self, ds: Any) -> Results:
        """geospatial_lat_min/max match the LATITUDE values (only when LATITUDE exists)."""
        return self._lat_lon_min_max(ds, "LATITUDE", "geospatial_lat")

    def check_geospatial_lon_min_max(self, ds: Any) -> Results:
        """geospatial_lon_min/max match the LONGITUDE values (only when LONGITUDE exists)."""
        return self._lat_lon_min_max(ds, "LONGITUDE", "geospatial_lon")

    def check_geospatial_vertical_min_max(self, ds: Any) -> Results:
        """geospatial_vertical_min/max match some vertical variable (only for files with a featureType)."""
        res = Results()
        info = self._info(ds)
        if "featureType" not in info.global_attrs:
            return res
        attrs = ("geospatial_vertical_min", "geospatial_vertical_max")
        if not info.vertical:
            if any(a in info.global_attrs for a in attrs):
                res.fail("geospatial_vertical_min/max", MEDIUM, "could not find vertical variable to compare with "
                         "geospatial_vertical_min/max")
            return res
        global_positive = str_attr(ds, "geospatial_vertical_positive")
        extremes: dict[str, tuple[float, float]] = {}
        for name in info.vertical:
            minmax = data_min_max(info, name)
            if minmax is None:
                continue
            positive = str_attr(info.variables[name], "positive")
            if global_positive and positive and positive != global_positive:
                minmax = (-minmax[1], -minmax[0])
            extremes[name] = minmax
        for index, attr in enumerate(attrs):
            value = get_attr(ds, attr)
            if is_missing(value):
                res.fail(attr, HIGH, f"global attribute '{attr}' not present")
                continue
            if not res.add(is_number(value), attr, HIGH, f"global attribute '{attr}' should have numeric type"):
                continue
            if extremes:
                which = ("minimum", "maximum")[index]
                res.add(
                    any(np.isclose(float(value), mm[index]) for mm in extremes.values()),
                    attr,
                    HIGH,
                    f"global attribute '{attr}' ({fmt(value)}) doesn't match the {which} value of any vertical "
                    f"variable {{{', '.join(f'{k}: {v[index]:g}' for k, v in extremes.items())}}}",
                )
        return res

    def check_time_coverage(self, ds: Any) -> Results:
        """time_coverage_start/end are UTC timestamps matching the TIME values (only when TIME exists)."""
        res = Results()
        info = self._info(ds)
        if "TIME" not in info.variables:
            return res
        time = info.variables["TIME"]
        extremes = data_min_max(info, "TIME")
        units = get_attr(time, "units", None)
        calendar = get_attr(time, "calendar", "standard")
        for index, attr in enumerate(("time_coverage_start", "time_coverage_end")):
            value = get_attr(ds, attr)
            if is_missing(value):
                res.fail(attr, HIGH, f"global attribute '{attr}' missing")
                continue
            if not res.add(isinstance(value, str), attr, HIGH, f"global attribute '{attr}' type is not string"):
                continue
            if not res.add(is_timestamp(value), attr, HIGH, f"global attribute '{attr}' is not in correct date/time "
                           f"format ({TIMESTAMP_FORMAT})"):
                continue
            if extremes is None:
                continue
            which = ("minimum", "maximum")[index]
            try:
                when = datetime.strptime(value, TIMESTAMP_FORMAT)
                number = float(cftime.date2num(when, units, calendar=calendar))
            except Exception as exc:  # unusable TIME units/calendar
                res.fail(attr, HIGH, f"global attribute '{attr}' cannot be compared with TIME ({exc})")
                continue
            if not np.isclose(number, extremes[index]):
                try:
                    actual = cftime.num2date(extremes[index], units, calendar=calendar).isoformat()
                except Exception:
                    actual = fmt(extremes[index])
                res.fail(attr, HIGH, f"global attribute '{attr}' ({value}) doesn't match the {which} value of the "
                         f"TIME variable ({actual})")
            else:
                res.ok(attr, HIGH)
        return res

    # ------------------------------------------------------------------------------------------------------ variables
    def check_variables_long_name(self, ds: Any) -> Results:
        """Every variable has a string long_name."""
        res = Results()
        for name, var in self._info(ds).variables.items():
            value = get_attr(var, "long_name")
            if is_missing(value):
                res.fail(name, HIGH, f"variable {name}: attribute 'long_name' missing")
            else:
                res.add(isinstance(value, str), name, HIGH, f"variable {name}: attribute 'long_name' should have "
                        "type string")
        return res

    def _time_units(self, time: Any, res: Results) -> None:
        raise NotImplementedError

    def check_time_variable(self, ds: Any) -> Results:
        """The TIME variable (only when present)."""
        res = Results()
        info = self._info(ds)
        if "TIME" not in info.variables:
            return res
        time = info.variables["TIME"]
        what = "variable TIME attribute"
        check_time_basics(res, time, "TIME", np.float64, "double (64-bit)")
        check_attr_present(res, time, "valid_min", HIGH, "TIME", what)
        check_attr_present(res, time, "valid_max", HIGH, "TIME", what)
        self._time_units(time, res)
        return res

    def check_longitude_variable(self, ds: Any) -> Results:
        """The LONGITUDE variable (only when present)."""
        res = Results()
        info = self._info(ds)
        if "LONGITUDE" not in info.variables:
            return res
        lon = info.variables["LONGITUDE"]
        what = "variable LONGITUDE attribute"
        res.add(is_float_dtype(lon.dtype), "LONGITUDE", MEDIUM, "variable LONGITUDE should be of type double or "
                f"float, not {lon.dtype}")
        check_attr_value(res, lon, "standard_name", "longitude", HIGH, "LONGITUDE", what)
        check_attr_value(res, lon, "axis", "X", HIGH, "LONGITUDE", what)
        check_attr_present(res, lon, "valid_min", HIGH, "LONGITUDE", what)
        check_attr_present(res, lon, "valid_max", HIGH, "LONGITUDE", what)
        check_attr_string(res, lon, "reference_datum", HIGH, "LONGITUDE", what)
        check_attr_value(res, lon, "units", "degrees_east", MEDIUM, "LONGITUDE", what)
        vmin, vmax = get_attr(lon, "valid_min"), get_attr(lon, "valid_max")
        if is_number(vmin) and is_number(vmax):
            pair = (float(vmin), float(vmax))
            res.add(pair in ((0.0, 360.0), (-180.0, 180.0)), "LONGITUDE", HIGH, "variable LONGITUDE attributes "
                    f"(valid_min, valid_max) should be (0, 360) or (-180, 180), not ({fmt(vmin)}, {fmt(vmax)})")
        elif not (is_missing(vmin) or is_missing(vmax)):
            res.fail("LONGITUDE", HIGH, "variable LONGITUDE attributes (valid_min, valid_max) should be (0, 360) or "
                     "(-180, 180)")
        return res

    def check_latitude_variable(self, ds: Any) -> Results:
        """The LATITUDE variable (only when present)."""
        res = Results()
        info = self._info(ds)
        if "LATITUDE" not in info.variables:
            return res
        lat = info.variables["LATITUDE"]
        what = "variable LATITUDE attribute"
        res.add(is_float_dtype(lat.dtype), "LATITUDE", MEDIUM, "variable LATITUDE should be of type double or "
                f"float, not {lat.dtype}")
        check_attr_value(res, lat, "standard_name", "latitude", HIGH, "LATITUDE", what)
        check_attr_value(res, lat, "axis", "Y", HIGH, "LATITUDE", what)
        check_attr_value(res, lat, "valid_min", -90, HIGH, "LATITUDE", what)
        check_attr_value(res, lat, "valid_max", 90, HIGH, "LATITUDE", what)
        check_attr_string(res, lat, "reference_datum", HIGH, "LATITUDE", what)
        check_attr_value(res, lat, "units", "degrees_north", MEDIUM, "LATITUDE", what)
        return res

    def check_vertical_variable(self, ds: Any) -> Results:
        """Variables recognised as vertical coordinates (by name, standard_name, positive or axis Z)."""
        res = Results()
        info = self._info(ds)
        any_z_axis = any(str_attr(info.variables[n], "axis") == "Z" for n in info.vertical)
        for name, vtype in info.vertical.items():
            var = info.variables[name]
            what = f"variable {name} attribute"
            if vtype == "unknown":
                res.fail(name, HIGH, f"variable {name} appears to be a vertical coordinate (axis Z), it should have "
                         "standard_name = \"depth\" or \"height\"")
                res.fail(name, HIGH, f"variable {name} appears to be a vertical coordinate (axis Z), it should have "
                         "positive = \"down\" or \"up\"")
            else:
                positive = "down" if vtype == "depth" else "up"
                res.add(str_attr(var, "standard_name") == vtype, name, HIGH, f"variable {name} appears to be a "
                        f"vertical coordinate, it should have standard_name = \"{vtype}\"")
                res.add(str_attr(var, "positive") == positive, name, HIGH, f"variable {name} appears to be a "
                        f"{vtype} coordinate, it should have positive = \"{positive}\"")
            check_attr_string(res, var, "reference_datum", HIGH, name, what)
            check_attr_present(res, var, "valid_min", HIGH, name, what)
            check_attr_present(res, var, "valid_max", HIGH, name, what)
            axis = get_attr(var, "axis")
            if is_missing(axis):
                res.add(any_z_axis, name, HIGH, f"variable {name} appears to be a vertical coordinate, it should "
                        "have axis = \"Z\"")
            else:
                res.add(axis == "Z", name, HIGH, f"variable {name} appears to be a vertical coordinate, it should "
                        "have axis = \"Z\"")
            units = get_attr(var, "units")
            res.add(isinstance(units, str) and convertible_to_metre(units), name, HIGH,
                    f"variable {name} appears to be a vertical coordinate, it should have units of distance "
                    f"(got {fmt(None if is_missing(units) else units)})")
            res.add(is_float_dtype(var.dtype), name, MEDIUM, f"variable {name} should have type Double or Float, "
                    f"not {var.dtype}")
        return res

    # ----------------------------------------------------------------------------------------------- QC variables
    def check_quality_control_conventions_for_quality_control_variable(self, ds: Any) -> Results:
        """QC variables declare one of the accepted quality_control_conventions."""
        res = Results()
        info = self._info(ds)
        for name in info.qc_vars:
            check_attr_value(res, info.variables[name], "quality_control_conventions", self.qc_conventions, MEDIUM,
                             name, f"variable {name} attribute")
        return res

    def check_quality_control_variable_matches_variable(self, ds: Any) -> Results:
        """QC variables are named <VAR>_quality_control after an existing variable."""
        res = Results()
        info = self._info(ds)
        for name in info.qc_vars:
            if not res.add(name.endswith("_quality_control"), name, HIGH, f"name of QC variable {name} should end "
                           "in '_quality_control'"):
                continue
            root = name[: -len("_quality_control")]
            res.add(root in info.variables, name, HIGH, f"no data variable named '{root}' associated with QC "
                    f"variable {name}")
        return res

    def check_quality_control_variable_dimensions(self, ds: Any) -> Results:
        """A QC variable has the same dimensions as the data variable listing it."""
        res = Results()
        info = self._info(ds)
        data_vars = set(info.data_vars)
        for name in info.qc_vars:
            qc_dims = info.variables[name].dimensions
            for parent in info.parents.get(name, ()):
                if parent in data_vars:
                    res.add(info.variables[parent].dimensions == qc_dims, name, HIGH, f"QC variable {name} should "
                            f"have the same dimensions as its associated data variable {parent}")
        return res

    def check_quality_control_variable_listed(self, ds: Any) -> Results:
        """Every QC variable is listed in some variable's ancillary_variables."""
        res = Results()
        info = self._info(ds)
        for name in info.qc_vars:
            res.add(name in info.parents, name, MEDIUM, f"QC variable {name} is not listed in any data variable's "
                    "ancillary_variables")
        return res

    def check_quality_control_variable_standard_name(self, ds: Any) -> Results:
        """QC standard_name is '<parent standard_name> status_flag'."""
        res = Results()
        info = self._info(ds)
        for name in info.qc_vars:
            for parent in info.parents.get(name, ()):
                parent_sn = str_attr(info.variables[parent], "standard_name")
                if not parent_sn:
                    res.ok(name, HIGH)
                    continue
                expected = f"{parent_sn} status_flag"
                res.add(str_attr(info.variables[name], "standard_name") == expected, name, HIGH,
                        f"QC variable {name}: attribute 'standard_name' should be \"{expected}\"")
        return res
