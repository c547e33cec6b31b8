"""NetCDF fixture builders for the IMOS / GHRSST suite tests (netCDF4 only, no ncgen), plus a small suite runner.

A fixture is described by a `FileSpec` (global attributes + variables) that a test mutates before `write()`:

    spec = imos_spec("1.4")
    spec.globals["title"] = ""
    spec.variables["TIME"].attrs["calendar"] = "standard"
    path = spec.write(tmp_path / "x.nc")

`_FillValue`, `valid_min` and `valid_max` are cast to the variable's dtype when written, unless wrapped in `Raw`.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

ACK_2020 = (
    "Any users of IMOS data are required to clearly acknowledge the source of the material derived from IMOS in the "
    "format: \"Data was sourced from Australia's Integrated Marine Observing System (IMOS) - IMOS is enabled by the "
    'National Collaborative Research Infrastructure Strategy (NCRIS)." If relevant, also credit other organisations '
    "involved in collection of this particular datastream (as listed in 'credit' in the metadata record)."
)
ACK_2016 = (
    "Any users of IMOS data are required to clearly acknowledge the source of the material derived from IMOS in the "
    'format: "Data was sourced from the Integrated Marine Observing System (IMOS) - IMOS is a national '
    'collaborative research infrastructure, supported by the Australian Government." If relevant, also credit '
    "other organisations involved in collection of this particular datastream (as listed in 'credit' in the "
    "metadata record)."
)
ACK_SSI = (
    "Any users of IMOS data are required to clearly acknowledge the source of the material in the format: "
    '"Data was sourced from the Integrated Marine Observing System (IMOS) - IMOS is supported by the Australian '
    "Government through the National Collaborative Research Infrastructure Strategy (NCRIS) and the Super Science "
    'Initiative (SSI)."'
)
DISCLAIMER = (
    'Data, products and services from IMOS are provided "as is" without any warranty as to fitness for a '
    "particular purpose."
)
DISTRIBUTION_STATEMENT = (
    "Data may be re-used, provided that related metadata explaining the data has been reviewed by the user, and the "
    "data is appropriately acknowledged. " + DISCLAIMER
)
QC_1_4 = "IMOS standard flags"
QC_1_3 = "IMOS standard set using the IODE flags"

TIME_VALUES = [25567.0, 25567.25, 25567.5, 25567.75, 25568.0]  # 2020-01-01T00:00Z .. 2020-01-02T00:00Z
TEMP_VALUES = [18.2, 18.4, 18.1, 17.9, 18.0]
_CAST_ATTRS = ("_FillValue", "valid_min", "valid_max")


@dataclass
class Raw:
    """An attribute value written exactly as given (no cast to the variable's dtype)."""

    value: Any


@dataclass
class Var:
    dtype: str
    dims: tuple[str, ...]
    data: Any
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileSpec:
    dims: dict[str, int]
    globals: dict[str, Any]
    variables: dict[str, Var]
    format: str = "NETCDF4_CLASSIC"

    def copy(self) -> FileSpec:
        return copy.deepcopy(self)

    def rename_variable(self, old: str, new: str) -> None:
        self.variables = {(new if k == old else k): v for k, v in self.variables.items()}

    def write(self, path: Path | str) -> Path:
        path = Path(path)
        with netCDF4.Dataset(path, "w", format=self.format) as ds:
            for name, size in self.dims.items():
                ds.createDimension(name, size)
            for name, value in self.globals.items():
                ds.setncattr(name, value)
            for name, var in self.variables.items():
                attrs = dict(var.attrs)
                fill = attrs.pop("_FillValue", None)
                if fill is not None:
                    fill = fill.value if isinstance(fill, Raw) else np.array(fill, dtype=var.dtype)
                nc_var = ds.createVariable(name, var.dtype, var.dims, fill_value=fill)
                nc_var.set_auto_maskandscale(False)
                for key, value in attrs.items():
                    if isinstance(value, Raw):
                        value = value.value
                    elif key in _CAST_ATTRS:
                        value = np.array(value, dtype=var.dtype)
                    nc_var.setncattr(key, value)
                if var.data is not None:
                    nc_var[...] = np.asarray(var.data, dtype=var.dtype)
        return path


def imos_spec(version: str = "1.4") -> FileSpec:
    """A minimal timeSeries file that passes `imos:<version>` under every criteria."""
    qc_conventions = QC_1_4 if version == "1.4" else QC_1_3
    globals_: dict[str, Any] = {
        "project": "Integrated Marine Observing System (IMOS)",
        "Conventions": f"CF-1.6,IMOS-{version}",
        "naming_authority": "IMOS",
        "date_created": "2024-02-03T04:05:06Z",
        "title": "Test mooring temperature time series",
        "abstract": "A small synthetic temperature record used to test the IMOS compliance suites.",
        "author": "Test Author",
        "principal_investigator": "Test Investigator",
        "citation": "The citation in a list of references is: IMOS test data.",
        "data_centre": "Australian Ocean Data Network (AODN)",
        "data_centre_email": "info@aodn.org.au",
        "author_email": "author@example.org",
        "principal_investigator_email": "pi@example.org",
        "featureType": "timeSeries",
        "geospatial_lat_min": -33.5,
        "geospatial_lat_max": -33.5,
        "geospatial_lat_units": "degrees_north",
        "geospatial_lon_min": 151.25,
        "geospatial_lon_max": 151.25,
        "geospatial_lon_units": "degrees_east",
        "geospatial_vertical_min": 20.0,
        "geospatial_vertical_max": 20.0,
        "geospatial_vertical_positive": "down",
        "geospatial_vertical_units": "m",
        "local_time_zone": 10.0,
        "time_coverage_start": "2020-01-01T00:00:00Z",
        "time_coverage_end": "2020-01-02T00:00:00Z",
        "history": "2024-02-03T04:05:06Z created by the aodncore test-suite",
        "institution": "AODN",
    }
    if version == "1.4":
        globals_.update(
            {
                "acknowledgement": ACK_2020,
                "disclaimer": DISCLAIMER,
                "license": "http://creativecommons.org/licenses/by/4.0/",
                "standard_name_vocabulary": "NetCDF Climate and Forecast (CF) Metadata Convention Standard Name "
                "Table 45",
            }
        )
    else:
        globals_.update(
            {
                "acknowledgement": ACK_2016,
                "distribution_statement": DISTRIBUTION_STATEMENT,
                "quality_control_set": np.int32(1),
            }
        )
    variables = {
        "TIME": Var(
            "f8",
            ("TIME",),
            TIME_VALUES,
            {
                "standard_name": "time",
                "long_name": "time",
                "units": "days since 1950-01-01 00:00:00 UTC",
                "calendar": "gregorian",
                "axis": "T",
                "valid_min": 0.0,
                "valid_max": 90000.0,
            },
        ),
        "LATITUDE": Var(
            "f8",
            (),
            -33.5,
            {
                "standard_name": "latitude",
                "long_name": "latitude",
                "units": "degrees_north",
                "axis": "Y",
                "valid_min": -90.0,
                "valid_max": 90.0,
                "reference_datum": "WGS84 geographic coordinate system",
            },
        ),
        "LONGITUDE": Var(
            "f8",
            (),
            151.25,
            {
                "standard_name": "longitude",
                "long_name": "longitude",
                "units": "degrees_east",
                "axis": "X",
                "valid_min": -180.0,
                "valid_max": 180.0,
                "reference_datum": "WGS84 geographic coordinate system",
            },
        ),
        "NOMINAL_DEPTH": Var(
            "f4",
            (),
            20.0,
            {
                "standard_name": "depth",
                "long_name": "nominal depth",
                "units": "m",
                "axis": "Z",
                "positive": "down",
                "reference_datum": "sea surface",
                "valid_min": -5.0,
                "valid_max": 12000.0,
            },
        ),
        "TEMP": Var(
            "f4",
            ("TIME",),
            TEMP_VALUES,
            {
                "_FillValue": 999999.0,
                "standard_name": "sea_water_temperature",
                "long_name": "sea_water_temperature",
                "units": "degrees_Celsius",
                "valid_min": -2.5,
                "valid_max": 40.0,
                "coordinates": "TIME LATITUDE LONGITUDE NOMINAL_DEPTH",
                "ancillary_variables": "TEMP_quality_control",
            },
        ),
        "TEMP_quality_control": Var(
            "i1",
            ("TIME",),
            [1, 1, 1, 2, 1],
            {
                "_FillValue": 99,
                "long_name": "quality flag for sea_water_temperature",
                "standard_name": "sea_water_temperature status_flag",
                "quality_control_conventions": qc_conventions,
                "valid_min": 0,
                "valid_max": 9,
                "flag_values": np.arange(10, dtype="i1"),
                "flag_meanings": "No_QC_performed Good_data Probably_good_data "
                "Bad_data_that_are_potentially_correctable Bad_data Value_changed Not_used Not_used Not_used "
                "Missing_value",
            },
        ),
    }
    return FileSpec({"TIME": len(TIME_VALUES)}, globals_, variables)


def ghrsst_spec() -> FileSpec:
    """A minimal L3-like GHRSST grid that passes `ghrsst:1.0`."""
    shape = (1, 3, 4)
    coords = "time lat lon"
    variables: dict[str, Var] = {
        "time": Var("i4", ("time",), [1262304000], {"standard_name": "time", "long_name": "reference time of sst file",
                                                    "axis": "T", "calendar": "gregorian",
                                                    "units": "seconds since 1981-01-01 00:00:00"}),
        "lat": Var("f4", ("lat",), [-35.0, -34.5, -34.0], {"standard_name": "latitude", "long_name": "latitude",
                                                            "units": "degrees_north", "axis": "Y"}),
        "lon": Var("f4", ("lon",), [150.0, 150.5, 151.0, 151.5], {"standard_name": "longitude",
                                                                  "long_name": "longitude",
                                                                  "units": "degrees_east", "axis": "X"}),
    }
    layers = {
        "sea_surface_temperature": ("i2", "kelvin"),
        "sses_bias": ("i1", "kelvin"),
        "sses_standard_deviation": ("i1", "kelvin"),
        "sses_count": ("i1", "count"),
        "dt_analysis": ("i1", "kelvin"),
        "satellite_zenith_angle": ("i1", "angular_degree"),
        "sst_dtime": ("i4", "second"),
        "quality_level": ("i1", "1"),
        "l2p_flags": ("i2", "1"),
    }
    for name, (dtype, units) in layers.items():
        variables[name] = Var(dtype, ("time", "lat", "lon"), np.ones(shape), {
            "_FillValue": -128 if dtype == "i1" else -32768 if dtype == "i2" else -2147483647,
            "long_name": name.replace("_", " "),
            "units": units,
            "coordinates": coords,
            "valid_min": 0,
        })
    globals_ = {
        "Conventions": "CF-1.6",
        "title": "Test GHRSST L3S grid",
        "project": "Group for High Resolution Sea Surface Temperature",
        "date_created": "2024-02-03T04:05:06Z",
    }
    return FileSpec({"time": 1, "lat": 3, "lon": 4}, globals_, variables, format="NETCDF4")


# ------------------------------------------------------------------------------------------------------------------
# running suites
# ------------------------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    groups: list
    errors: dict

    def passes(self, criteria: str) -> bool:
        from compliance_checker.runner import CheckSuite

        return CheckSuite.passtree(self.groups, {"lenient": 3, "normal": 2, "strict": 1}[criteria])

    @property
    def verdicts(self) -> str:
        """'PFF'-style verdicts for lenient / normal / strict."""
        return "".join("P" if self.passes(c) else "F" for c in ("lenient", "normal", "strict"))

    @property
    def failing(self) -> dict[tuple[str, int], list[str]]:
        """{(result name, weight): messages} of the failing groups."""
        return {(g.name, g.weight): list(g.msgs) for g in self.groups if g.value[0] != g.value[1]}

    def messages(self, name: str) -> str:
        return " | ".join(m for (n, _w), msgs in self.failing.items() if n == name for m in msgs)


def run_suite(path: Path | str, suite: str, skip_checks: list[str] | None = None) -> Outcome:
    from compliance_checker.runner import CheckSuite

    cs = CheckSuite()
    cs.load_all_available_checkers()
    ds = cs.load_dataset(str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            groups, errors = cs.run_all(ds, [suite], skip_checks=skip_checks)[suite]
    finally:
        ds.close()
    return Outcome(groups, errors)
