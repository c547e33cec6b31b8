"""GHRSST products as distributed by IMOS, as a compliance-checker 6.x suite (`ghrsst:1.0`, alias `ghrsst`)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ._common import HIGH, MEDIUM, NcSuiteBase, Results, check_time_basics, fmt, get_attr, is_missing

MANDATORY_VARIABLES = (
    "time",
    "lat",
    "lon",
    "dt_analysis",
    "l2p_flags",
    "quality_level",
    "satellite_zenith_angle",
    "sea_surface_temperature",
    "sses_bias",
    "sses_count",
    "sses_standard_deviation",
    "sst_dtime",
)

_TIME_UNITS = re.compile(r"^seconds since 1981-01-01( 00:00:00(Z|)|)$")


class Ghrsst10Check(NcSuiteBase):
    """GHRSST L3/L4 files: generic IMOS structure rules plus the GHRSST variable set and time encoding.

    GHRSST global attributes are deliberately not checked (quirk Q8, see docs/imos-checks.md)."""

    _cc_spec = "ghrsst"
    _cc_spec_version = "1.0"
    _cc_url = "https://www.ghrsst.org/"
    _cc_description = "GHRSST files distributed by IMOS (structure, mandatory variables, time encoding)"

    def check_data_variables(self, ds: Any) -> Results:
        """Every data variable has units and a coordinates attribute naming existing variables."""
        return self._data_variables_units_coordinates(ds)

    def check_time_variable(self, ds: Any) -> Results:
        """The lowercase `time` variable: int32 seconds since 1981-01-01, gregorian (only when present)."""
        res = Results()
        info = self._info(ds)
        if "time" not in info.variables:
            return res
        time = info.variables["time"]
        check_time_basics(res, time, "time", np.int32, "int (32-bit)")
        units = get_attr(time, "units")
        if isinstance(units, str) and _TIME_UNITS.match(units):
            res.ok("time", MEDIUM, "time units is correct")
        else:
            res.fail("time", MEDIUM, f"variable time attribute 'units' doesn't match expected pattern "
                     f"'{_TIME_UNITS.pattern}' (got {fmt(None if is_missing(units) else units)})")
        return res

    def check_mandatory_variables_exist(self, ds: Any) -> Results:
        """The twelve GHRSST variables exist."""
        res = Results()
        variables = self._info(ds).variables
        for name in MANDATORY_VARIABLES:
            res.add(name in variables, name, HIGH, f"mandatory variable '{name}' missing")
        return res
