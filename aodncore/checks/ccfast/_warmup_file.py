"""A tiny CF time-series file used to exercise the suites once when warming a process up."""

from __future__ import annotations

import netCDF4
import numpy as np


def write_warm_up_file(path: str) -> str:
    """Write a small CF-1.6 time series (time, lat/lon, depth, one data variable with QC) to ``path``."""
    with netCDF4.Dataset(path, "w", format="NETCDF4_CLASSIC") as ds:
        ds.Conventions = "CF-1.6"
        ds.title = "aodncore compliance-checker warm-up"
        ds.featureType = "timeSeries"
        ds.standard_name_vocabulary = "NetCDF Climate and Forecast (CF) Metadata Convention Standard Name Table 27"
        ds.createDimension("TIME", 3)
        time = ds.createVariable("TIME", "f8", ("TIME",))
        time.standard_name = "time"
        time.units = "days since 1950-01-01 00:00:00 UTC"
        time.axis = "T"
        time.calendar = "gregorian"
        time[:] = np.array([25567.0, 25567.5, 25568.0])
        for name, standard_name, units, axis, value in (("LATITUDE", "latitude", "degrees_north", "Y", -33.9),
                                                        ("LONGITUDE", "longitude", "degrees_east", "X", 151.3),
                                                        ("NOMINAL_DEPTH", "depth", "m", "Z", 10.0)):
            var = ds.createVariable(name, "f8", ())
            var.standard_name = standard_name
            var.units = units
            var.axis = axis
            var[...] = value
        ds.variables["NOMINAL_DEPTH"].positive = "down"
        temp = ds.createVariable("TEMP", "f4", ("TIME",), fill_value=np.float32(999999.0))
        temp.standard_name = "sea_water_temperature"
        temp.long_name = "sea water temperature"
        temp.units = "degrees_Celsius"
        temp.coordinates = "TIME LATITUDE LONGITUDE NOMINAL_DEPTH"
        temp.ancillary_variables = "TEMP_quality_control"
        temp.cell_methods = "TIME: point"
        temp[:] = np.array([18.1, 18.3, 18.2], dtype="f4")
        flags = ds.createVariable("TEMP_quality_control", "i1", ("TIME",), fill_value=np.int8(-1))
        flags.long_name = "quality flag for sea_water_temperature"
        flags.flag_values = np.array([0, 1, 2], dtype="i1")
        flags.flag_meanings = "no_qc_performed good_data probably_good_data"
        flags[:] = np.array([1, 1, 1], dtype="i1")
    return path
