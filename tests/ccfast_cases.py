"""Generator of small NetCDF files that walk compliance-checker's CF classification code paths.

Each case is a function filling an open ``netCDF4.Dataset``; :func:`write_cases` writes them all. They are meant to
be odd: auxiliary and 2-D coordinates, grid mappings, contiguous and indexed ragged arrays, orthogonal and
incomplete multidimensional representations, cell methods and measures, bounds, climatologies, several time
variables, dimensionless vertical coordinates, compression by gathering, flags, packed data, labels, geometries,
groups (CF 1.8+), non-string attribute values and unknown or modified standard names. The identity tests check that
the fast path gives exactly compliance-checker's own results on every one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np

CaseBuilder = Callable[[netCDF4.Dataset], None]
CASES: dict[str, tuple[str, CaseBuilder]] = {}


def case(name: str, file_format: str = "NETCDF4_CLASSIC") -> Callable[[CaseBuilder], CaseBuilder]:
    def register(builder: CaseBuilder) -> CaseBuilder:
        CASES[name] = (file_format, builder)
        return builder

    return register


def write_cases(directory: Path, names: list[str] | None = None) -> list[Path]:
    """Write the named cases (default: all) into ``directory``; return their paths in registration order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (file_format, builder) in CASES.items():
        if names is not None and name not in names:
            continue
        path = directory / f"{name}.nc"
        with netCDF4.Dataset(path, "w", format=file_format) as ds:
            builder(ds)
        paths.append(path)
    return paths


def _var(ds, name, dtype, dims=(), fill=None, **attrs):
    var = ds.createVariable(name, dtype, dims, fill_value=fill)
    for key, value in attrs.items():
        var.setncattr(key, value)
    return var


def _time(ds, name="time", size=4, dim=None, **attrs):
    if dim is None:
        ds.createDimension(name, size)
        dim = name
    defaults = {"standard_name": "time", "units": "days since 1970-01-01 00:00:00", "calendar": "standard"}
    defaults.update(attrs)
    var = _var(ds, name, "f8", (dim,), **defaults)
    var[:] = np.arange(ds.dimensions[dim].size, dtype="f8")
    return var


def _latlon(ds, dims=(), lat="lat", lon="lon"):
    la = _var(ds, lat, "f8", dims, standard_name="latitude", units="degrees_north")
    lo = _var(ds, lon, "f8", dims, standard_name="longitude", units="degrees_east")
    shape = tuple(ds.dimensions[d].size for d in dims)
    la[...] = np.linspace(-40, -30, int(np.prod(shape)) or 1).reshape(shape) if shape else -35.0
    lo[...] = np.linspace(140, 150, int(np.prod(shape)) or 1).reshape(shape) if shape else 145.0
    return la, lo


@case("grid_aux_coordinates_grid_mapping")
def _grid_aux(ds):
    ds.Conventions = "CF-1.6"
    ds.createDimension("y", 3)
    ds.createDimension("x", 4)
    _time(ds, size=2)
    rlat = _var(ds, "y", "f4", ("y",), standard_name="grid_latitude", units="degrees", axis="Y")
    rlon = _var(ds, "x", "f4", ("x",), standard_name="grid_longitude", units="degrees", axis="X")
    rlat[:] = np.arange(3)
    rlon[:] = np.arange(4)
    _latlon(ds, ("y", "x"))
    _var(ds, "rotated_pole", "c", (), grid_mapping_name="rotated_latitude_longitude", grid_north_pole_latitude=32.5,
         grid_north_pole_longitude=170.0)
    temp = _var(ds, "temp", "f4", ("time", "y", "x"), fill=np.float32(-999), standard_name="air_temperature",
                units="K", coordinates="lat lon", grid_mapping="rotated_pole", cell_methods="time: mean area: mean")
    temp[:] = 280.0
    _var(ds, "bad_gm", "f4", ("y", "x"), units="1", grid_mapping="no_such_mapping", coordinates="lat  lon nope")


@case("contiguous_ragged_timeseries")
def _contiguous_ragged(ds):
    ds.Conventions = "CF-1.6"
    ds.featureType = "timeSeries"
    ds.createDimension("station", 2)
    ds.createDimension("obs", 7)
    ds.createDimension("name_strlen", 8)
    _latlon(ds, ("station",))
    ids = _var(ds, "station_name", "S1", ("station", "name_strlen"), cf_role="timeseries_id", long_name="name")
    ids[:] = netCDF4.stringtochar(np.array(["alpha", "beta"], dtype="S8"))
    rows = _var(ds, "row_size", "i4", ("station",), long_name="number of obs", sample_dimension="obs")
    rows[:] = [3, 4]
    _time(ds, dim="obs")
    temp = _var(ds, "temp", "f4", ("obs",), fill=np.float32(-999), standard_name="sea_water_temperature",
                units="degree_C", coordinates="time lat lon")
    temp[:] = 20.0


@case("indexed_ragged_trajectory")
def _indexed_ragged(ds):
    ds.Conventions = "CF-1.6"
    ds.featureType = "trajectory"
    ds.createDimension("traj", 2)
    ds.createDimension("obs", 6)
    tid = _var(ds, "trajectory", "i4", ("traj",), cf_role="trajectory_id")
    tid[:] = [1, 2]
    idx = _var(ds, "trajectory_index", "i4", ("obs",), instance_dimension="traj", long_name="index")
    idx[:] = [0, 0, 1, 1, 0, 1]
    _time(ds, dim="obs")
    _latlon(ds, ("obs",))
    z = _var(ds, "z", "f4", ("obs",), standard_name="altitude", units="m", positive="up", axis="Z")
    z[:] = 10.0
    temp = _var(ds, "temp", "f4", ("obs",), standard_name="air_temperature", units="K", coordinates="time lat lon z")
    temp[:] = 280.0


@case("timeseries_profile_orthogonal")
def _ts_profile(ds):
    ds.Conventions = "CF-1.6"
    ds.featureType = "timeSeriesProfile"
    ds.createDimension("station", 2)
    ds.createDimension("z", 3)
    _time(ds, size=4)
    _latlon(ds, ("station",))
    sid = _var(ds, "station_id", "i4", ("station",), cf_role="timeseries_id")
    sid[:] = [10, 11]
    z = _var(ds, "z", "f4", ("z",), standard_name="depth", units="m", positive="down", axis="Z")
    z[:] = [1, 5, 10]
    temp = _var(ds, "temp", "f4", ("station", "time", "z"), standard_name="sea_water_temperature", units="degC",
                coordinates="time lat lon z")
    temp[:] = 15.0


@case("profile_incomplete_and_trajectory_profile")
def _profiles(ds):
    ds.Conventions = "CF-1.6"
    ds.featureType = "profile"
    ds.createDimension("profile", 3)
    ds.createDimension("level", 4)
    t = _var(ds, "time", "f8", ("profile",), standard_name="time", units="seconds since 2000-01-01")
    t[:] = [0, 60, 120]
    _latlon(ds, ("profile",))
    pid = _var(ds, "profile_id", "i4", ("profile",), cf_role="profile_id")
    pid[:] = [1, 2, 3]
    p = _var(ds, "pressure", "f4", ("profile", "level"), standard_name="sea_water_pressure", units="dbar")
    p[:] = 5.0
    temp = _var(ds, "temp", "f4", ("profile", "level"), standard_name="sea_water_temperature", units="K",
                coordinates="time lat lon pressure")
    temp[:] = 290.0


@case("bounds_climatology_cell_methods")
def _bounds_climatology(ds):
    ds.Conventions = "CF-1.6"
    ds.createDimension("time", 4)
    ds.createDimension("nv", 2)
    ds.createDimension("lat", 3)
    t = _var(ds, "time", "f8", ("time",), standard_name="time", units="days since 1960-1-1", climatology="clim_bnds",
             calendar="gregorian")
    t[:] = [15, 45, 75, 105]
    cb = _var(ds, "clim_bnds", "f8", ("time", "nv"))
    cb[:] = [[0, 30], [30, 60], [60, 90], [90, 120]]
    lat = _var(ds, "lat", "f4", ("lat",), standard_name="latitude", units="degrees_north", bounds="lat_bnds")
    lat[:] = [-10, 0, 10]
    lb = _var(ds, "lat_bnds", "f4", ("lat", "nv"), units="degrees_north")
    lb[:] = [[-15, -5], [-5, 5], [5, 15]]
    cell_area = _var(ds, "cell_area", "f4", ("lat",), standard_name="cell_area", units="m2")
    cell_area[:] = 1.0
    pr = _var(ds, "pr", "f4", ("time", "lat"), standard_name="precipitation_flux", units="kg m-2 s-1",
              cell_methods="time: mean within years time: mean over years lat: mean (interval: 1 degree)",
              cell_measures="area: cell_area")
    pr[:] = 1e-5
    odd = _var(ds, "odd", "f4", ("time", "lat"), standard_name="precipitation_flux", units="kg m-2 s-1",
               cell_methods="nonsense: maximum where land lat: frobnicate", cell_measures="volume: missing_var")
    odd[:] = 0.0
    _var(ds, "bad_bounds", "f4", ("lat",), units="m", bounds="no_such_bounds")


@case("several_time_variables_and_calendars")
def _times(ds):
    ds.Conventions = "CF-1.6"
    ds.createDimension("TIME", 3)
    _time(ds, "TIME", dim="TIME", axis="T", calendar="gregorian")
    t2 = _var(ds, "forecast_time", "f8", ("TIME",), units="hours since 2000-01-01", axis="T",
              standard_name="forecast_reference_time")
    t2[:] = [0, 1, 2]
    t3 = _var(ds, "obs_time", "f8", ("TIME",), standard_name="time", units="minutes since 1582-10-01",
              calendar="julian")
    t3[:] = [0, 1, 2]
    _var(ds, "period", "f4", (), standard_name="forecast_period", units="hours")
    _var(ds, "weird_time", "f8", ("TIME",), units="days since 2000-13-45", calendar="no_leap_or_not")
    temp = _var(ds, "temp", "f4", ("TIME",), standard_name="air_temperature", units="K",
                coordinates="obs_time forecast_time period")
    temp[:] = 270.0


@case("dimensionless_vertical_and_gathering")
def _vertical(ds):
    ds.Conventions = "CF-1.6"
    ds.createDimension("lev", 3)
    ds.createDimension("lat", 2)
    ds.createDimension("lon", 3)
    ds.createDimension("land", 4)
    lev = _var(ds, "lev", "f4", ("lev",), standard_name="ocean_sigma_coordinate", positive="up",
               formula_terms="sigma: lev eta: eta depth: depth", units="1")
    lev[:] = [-0.1, -0.5, -0.9]
    lat = _var(ds, "lat", "f4", ("lat",), standard_name="latitude", units="degrees_north")
    lat[:] = [0, 1]
    lon = _var(ds, "lon", "f4", ("lon",), standard_name="longitude", units="degrees_east")
    lon[:] = [0, 1, 2]
    _var(ds, "eta", "f4", ("lat", "lon"), standard_name="sea_surface_height_above_geoid", units="m")
    _var(ds, "depth", "f4", ("lat", "lon"), standard_name="sea_floor_depth_below_geoid", units="m")
    land = _var(ds, "land", "i4", ("land",), compress="lat lon")
    land[:] = [0, 1, 3, 4]
    soil = _var(ds, "soilw", "f4", ("land",), standard_name="moisture_content_of_soil_layer", units="kg m-2")
    soil[:] = 3.0
    h = _var(ds, "height", "f4", (), standard_name="height", units="m", axis="Z")
    h[...] = 2.0
    _var(ds, "sigma_bad", "f4", ("lev",), standard_name="atmosphere_sigma_coordinate", formula_terms="sigma: x")


@case("flags_packing_fill_and_ranges", "NETCDF4")
def _flags(ds):
    ds.Conventions = "CF-1.6"
    _time(ds, size=3)
    qc = _var(ds, "qc", "i1", ("time",), fill=np.int8(-1), flag_values=np.array([0, 1, 2], "i1"),
              flag_meanings="good bad", standard_name="sea_water_temperature status_flag")
    qc[:] = [0, 1, 2]
    masks = _var(ds, "masks", "u1", ("time",), flag_masks=np.array([1, 2, 4], "u1"),
                 flag_values=np.array([1, 2, 4], "u1"), flag_meanings="a b c")
    masks[:] = [1, 2, 4]
    packed = _var(ds, "packed", "i2", ("time",), fill=np.int16(-32767), scale_factor=np.float32(0.01),
                  add_offset=np.float64(20.0), standard_name="sea_water_temperature", units="degC",
                  valid_range=np.array([-1000, 1000], "i2"), valid_min=np.int16(-5), missing_value=np.int16(-32000),
                  ancillary_variables="qc masks absent")
    packed[:] = [18.0, 19.0, 20.0]
    coord_fill = _var(ds, "depth", "f4", ("time",), fill=np.float32(-1), standard_name="depth", units="m",
                      positive="down")
    coord_fill[:] = [1, 2, 3]
    nan_fill = _var(ds, "psal", "f4", ("time",), fill=np.float32(np.nan), missing_value=np.float32(np.nan),
                    standard_name="sea_water_practical_salinity", units="1", valid_min=np.float32(2),
                    valid_max=np.float32(41), coordinates="depth")
    nan_fill[:] = [35, 35.1, 35.2]


@case("labels_strings_and_attribute_types")
def _labels(ds):
    ds.Conventions = "CF-1.6"
    ds.title = 42
    ds.history = np.array([1, 2, 3], "i4")
    ds.createDimension("station", 2)
    ds.createDimension("strlen", 6)
    names = _var(ds, "station_name", "S1", ("station", "strlen"), long_name="station name",
                 standard_name="platform_name")
    names[:] = netCDF4.stringtochar(np.array(["one", "two"], dtype="S6"))
    _var(ds, "numeric_units", "f4", ("station",), units=np.int64(1), standard_name=np.int32(5))
    _var(ds, "array_units", "f4", ("station",), units=np.array([1.0, 2.0]), positive=np.array([1, 2], "i4"))
    _var(ds, "latitude_like", "f4", ("station",), units="DEGREES_NORTH", long_name="lat")
    _var(ds, "modified", "f4", ("station",), standard_name="sea_water_temperature standard_error", units="K")
    _var(ds, "deprecated_mod", "f4", ("station",), standard_name="sea_water_temperature status_flag")
    _var(ds, "number_obs", "i4", ("station",), standard_name="sea_water_temperature number_of_observations")
    _var(ds, "alias_name", "f4", ("station",), standard_name="sea_water_potential_temperature_at_sea_floor",
         units="K")
    _var(ds, "unknown_name", "f4", ("station",), standard_name="definitely_not_a_cf_name", units="furlongs")
    _var(ds, "platform", "i4", (), long_name="ship")
    _var(ds, "instrument", "i4", (), long_name="ctd")
    _var(ds, "obs", "f4", ("station",), platform="platform", instrument="instrument", units="m",
         standard_name="sea_floor_depth_below_sea_surface", coordinates="station_name")
    ds.platform = "platform"


@case("attribute_array_axis_raises")
def _array_axis(ds):
    # compliance-checker's own setup raises on an array-valued axis attribute: the exception is the outcome
    ds.Conventions = "CF-1.6"
    ds.createDimension("x", 2)
    _var(ds, "x", "f4", ("x",), axis=np.array([1, 2], "i4"), units="m")


@case("point_and_scalar_coordinates")
def _points(ds):
    ds.Conventions = "CF-1.6"
    ds.featureType = "point"
    ds.createDimension("obs", 5)
    _time(ds, dim="obs")
    _latlon(ds, ("obs",))
    alt = _var(ds, "alt", "f4", (), standard_name="altitude", units="m", positive="up")
    alt[...] = 3.0
    temp = _var(ds, "temp", "f4", ("obs",), standard_name="air_temperature", units="K",
                coordinates="time lat lon alt")
    temp[:] = 290.0
    _var(ds, "dup_x", "f4", ("obs",), axis="X", units="m")
    _var(ds, "dup_x2", "f4", ("obs",), axis="X", units="m")
    _var(ds, "weird_coords", "f4", ("obs",), coordinates=np.int32(3), units="1")


@case("coordinates_not_monotonic_with_fill")
def _monotonic(ds):
    ds.Conventions = "CF-1.6"
    ds.createDimension("TIME", 4)
    t = _var(ds, "TIME", "f8", ("TIME",), fill=np.float64(999999), standard_name="time", axis="T",
             units="days since 1950-01-01 00:00:00 UTC", missing_value=np.float64(-1))
    t[:] = [3, 1, 2, 2]
    lat = _var(ds, "LATITUDE", "f8", ("TIME",), standard_name="latitude", units="degrees_north", axis="Y",
               valid_min=-90.0, valid_max=90.0, reference_datum="WGS84 coordinate reference system")
    lat[:] = -33
    temp = _var(ds, "TEMP", "f4", ("TIME",), fill=np.float32(999999), standard_name="sea_water_temperature",
                units="Celsius", coordinates="TIME, LATITUDE", ancillary_variables="TEMP_quality_control")
    temp[:] = 15
    qc = _var(ds, "TEMP_quality_control", "i1", ("TIME",), fill=np.int8(99), long_name="qc",
              quality_control_conventions="IMOS standard flags", flag_values=np.array([0, 1], "i1"),
              flag_meanings="no_qc good")
    qc[:] = 1


@case("geometry_container", "NETCDF4")
def _geometry(ds):
    ds.Conventions = "CF-1.8"
    ds.createDimension("instance", 2)
    ds.createDimension("node", 5)
    _time(ds, size=2)
    x = _var(ds, "x", "f8", ("node",), units="degrees_east", standard_name="longitude", axis="X")
    y = _var(ds, "y", "f8", ("node",), units="degrees_north", standard_name="latitude", axis="Y")
    x[:] = [30, 10, 40, 50, 50]
    y[:] = [10, 30, 40, 0, 60]
    nc = _var(ds, "node_count", "i4", ("instance",), long_name="count")
    nc[:] = [2, 3]
    _var(ds, "geometry_container", "i4", (), geometry_type="line", node_count="node_count",
         node_coordinates="x y")
    data = _var(ds, "someData", "f8", ("instance", "time"), coordinates="time", geometry="geometry_container",
                units="1")
    data[:] = 1.0


@case("groups_cf18", "NETCDF4")
def _groups(ds):
    ds.Conventions = "CF-1.8"
    ds.title = "groups"
    _time(ds, size=3)
    inner = ds.createGroup("forecast")
    inner.title = "inner title"
    inner.Conventions = "CF-1.8"
    inner.createDimension("time", 2)
    t = inner.createVariable("time", "f8", ("time",))
    t.standard_name = "time"
    t.units = "hours since 2000-01-01"
    t[:] = [0, 1]
    temp = inner.createVariable("temp", "f4", ("time",))
    temp.standard_name = "air_temperature"
    temp.units = "K"
    temp.coordinates = "/time lat"
    temp[:] = [270, 271]
    deeper = inner.createGroup("deeper")
    deeper.createDimension("x", 2)
    deeper.createVariable("x", "f4", ("x",)).setncattr("axis", "X")
    lat = ds.createVariable("lat", "f4", ())
    lat.standard_name = "latitude"
    lat.units = "degrees_north"
    ds.external_variables = "areacella"


@case("classic_netcdf3_mixed", "NETCDF3_CLASSIC")
def _classic(ds):
    ds.Conventions = "CF-1.6, ACDD-1.3"
    ds.featureType = "timeSeries"
    ds.createDimension("TIME", None)
    t = _var(ds, "TIME", "f8", ("TIME",), standard_name="time", units="days since 1950-01-01 00:00:00 UTC",
             axis="T", calendar="gregorian", valid_min=0.0, valid_max=90000.0)
    t[:] = [25000, 25001, 25002]
    for name, sn, units, axis in (("LATITUDE", "latitude", "degrees_north", "Y"),
                                  ("LONGITUDE", "longitude", "degrees_east", "X"),
                                  ("NOMINAL_DEPTH", "depth", "m", "Z")):
        var = _var(ds, name, "f8", (), standard_name=sn, units=units, axis=axis)
        var[...] = 1.0
    ds.variables["NOMINAL_DEPTH"].positive = "down"
    for name in ("TEMP", "PSAL", "DEPTH"):
        var = _var(ds, name, "f4", ("TIME",), fill=np.float32(999999), units="1",
                   coordinates="TIME LATITUDE LONGITUDE NOMINAL_DEPTH", ancillary_variables=f"{name}_quality_control")
        var[:] = 1.0
        qc = _var(ds, f"{name}_quality_control", "b", ("TIME",), fill=np.int8(99),
                  flag_values=np.array([0, 1, 2, 3, 4], "b"), flag_meanings="a b c d e",
                  standard_name="status_flag")
        qc[:] = 1
    ds.variables["DEPTH"].standard_name = "depth"
    ds.variables["DEPTH"].positive = "down"
    ds.variables["TEMP"].standard_name = "sea_water_temperature"
    ds.variables["PSAL"].standard_name = "sea_water_salinity"


@case("empty_file")
def _empty(ds):
    pass
