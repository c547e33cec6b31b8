"""IMOS NetCDF conventions 1.3 and 1.4 as compliance-checker 6.x suites (`imos:1.3`, `imos:1.4`, alias `imos`).

Every check method, severity and result name follows `shared/spec/imos-checks.md` §2; the deliberate deviations
(quirk decisions) are listed in `docs/imos-checks.md`.

This module holds the two version classes (the `compliance_checker.suites` entry points); the checks they share are
in `_imosbase.ImosBaseCheck`, the fixed texts (values, wordings, e-mail rule) in `_imostext`. Every name this module
defined before that split is still importable from here.
"""

from __future__ import annotations

from typing import Any

from ._common import (
    HIGH,
    MEDIUM,
    Results,
    check_attr_pattern,
    check_attr_string,
    check_attr_value,
    get_attr,
    is_blank,
    is_missing,
)
from ._imosbase import ImosBaseCheck
from ._imostext import (
    ACK_2016,
    ACK_2016_FLEXIBLE,
    ACK_2020,
    ACK_2020_TEXT,
    ACK_SSI,
    AODN,
    DISCLAIMER_1_4,
    DISTRIBUTION_STATEMENT_1_3,
    EMII,
    GLOBAL,
    LICENSE_1_4,
    QC_CONVENTIONS_COMMON,
    VERTICAL_REFERENCE_DATUMS,
    VOCABULARY_1_4,
)
from ._imostext import PROJECT as PROJECT  # re-exported
from ._imostext import is_email_attribute_value as is_email_attribute_value  # re-exported (tests, handlers)


class Imos13Check(ImosBaseCheck):
    """IMOS NetCDF conventions version 1.3."""

    _cc_spec_version = "1.3"
    _cc_url = "http://imos.org.au/"
    _cc_description = "Integrated Marine Observing System (IMOS) NetCDF conventions 1.3"

    conventions_version = "1.3"
    data_centres = [EMII, AODN]
    data_centre_emails = ["info@emii.org.au", "info@aodn.org.au"]
    qc_conventions = ["IMOS standard set using the IODE flags", *QC_CONVENTIONS_COMMON]

    def _mandatory_globals(self, ds: Any, res: Results) -> None:
        super()._mandatory_globals(ds, res)
        check_attr_pattern(res, ds, "distribution_statement", DISTRIBUTION_STATEMENT_1_3, HIGH,
                           "distribution_statement", GLOBAL)

    def _optional_globals(self, ds: Any, res: Results) -> None:
        super()._optional_globals(ds, res)
        check_attr_value(res, ds, "quality_control_set", [1, 2, 3, 4], MEDIUM, "quality_control_set", GLOBAL,
                         optional=True)

    def _time_units(self, time: Any, res: Results) -> None:
        check_attr_value(res, time, "units", "days since 1950-01-01 00:00:00 UTC", MEDIUM, "TIME",
                         "variable TIME attribute")

    def check_acknowledgement(self, ds: Any) -> Results:
        """acknowledgement contains the SSI-era or the 2016 IMOS wording."""
        res = Results()
        value = get_attr(ds, "acknowledgement")
        if not res.add(not is_missing(value), "acknowledgement", HIGH, "missing global attribute 'acknowledgement'"):
            return res
        res.add(
            isinstance(value, str) and any(p.match(value) for p in (ACK_SSI, ACK_2016)),
            "acknowledgement",
            HIGH,
            "global attribute 'acknowledgement' doesn't contain the required text (IMOS 2016 or SSI-era wording)",
        )
        return res

    def check_data_variables(self, ds: Any) -> Results:
        """Every data variable has a _FillValue."""
        res = Results()
        info = self._info(ds)
        for name in info.data_vars:
            res.add("_FillValue" in info.variables[name].ncattrs(), name, HIGH,
                    f"variable {name}: attribute '_FillValue' missing")
        return res


class Imos14Check(ImosBaseCheck):
    """IMOS NetCDF conventions version 1.4."""

    _cc_spec_version = "1.4"
    _cc_url = "https://content.aodn.org.au/Documents/IMOS/Conventions/IMOS_NetCDF_Conventions.pdf"
    _cc_description = "Integrated Marine Observing System (IMOS) NetCDF conventions 1.4"

    conventions_version = "1.4"
    data_centres = [AODN]
    data_centre_emails = ["info@aodn.org.au"]
    qc_conventions = ["IMOS standard flags", *QC_CONVENTIONS_COMMON]

    def _mandatory_globals(self, ds: Any, res: Results) -> None:
        super()._mandatory_globals(ds, res)
        check_attr_pattern(res, ds, "disclaimer", DISCLAIMER_1_4, HIGH, "disclaimer", GLOBAL)
        check_attr_value(res, ds, "license", LICENSE_1_4, HIGH, "license", GLOBAL)
        check_attr_pattern(res, ds, "standard_name_vocabulary", VOCABULARY_1_4, HIGH, "standard_name_vocabulary",
                           GLOBAL)

    def _time_units(self, time: Any, res: Results) -> None:
        units = get_attr(time, "units")
        if is_missing(units):
            res.fail("TIME", MEDIUM, "variable TIME attribute 'units' missing")
        else:
            res.add(isinstance(units, str) and "UTC" in units, "TIME", MEDIUM,
                    "variable TIME attribute 'units' doesn't match expected pattern '.*UTC'")

    def check_acknowledgement(self, ds: Any) -> Results:
        """acknowledgement contains the 2020 IMOS wording, or starts with the 2016 (or SSI-era) wording."""
        res = Results()
        value = get_attr(ds, "acknowledgement")
        passed = isinstance(value, str) and (ACK_2020.match(value) is not None or
                                             ACK_2016_FLEXIBLE.match(value) is not None)
        res.add(passed, "acknowledgement", HIGH, "global attribute 'acknowledgement' doesn't contain the required "
                f"text: '{ACK_2020_TEXT}'" + (" (attribute missing)" if is_missing(value) else ""))
        return res

    def check_data_variables(self, ds: Any) -> Results:
        """Every data variable has units and a coordinates attribute naming existing variables."""
        return self._data_variables_units_coordinates(ds)

    def check_geospatial_vertical_positive(self, ds: Any) -> Results:
        """geospatial_vertical_positive is required for featureType files with vertical information."""
        res = Results()
        info = self._info(ds)
        if "featureType" not in info.global_attrs:
            return res
        has_vertical = bool(info.vertical) or any(
            a in info.global_attrs for a in ("geospatial_vertical_min", "geospatial_vertical_max")
        )
        if has_vertical:
            res.add(not is_blank(get_attr(ds, "geospatial_vertical_positive")), "geospatial_vertical_positive", HIGH,
                    "global attribute 'geospatial_vertical_positive' missing")
        return res

    def check_vertical_variable_reference_datum(self, ds: Any) -> Results:
        """Vertical variables use one of the IMOS reference datums."""
        res = Results()
        info = self._info(ds)
        for name in info.vertical:
            check_attr_value(res, info.variables[name], "reference_datum", VERTICAL_REFERENCE_DATUMS, HIGH, name,
                             f"variable {name} attribute")
        return res

    def check_coordinate_variable_no_fill_value(self, ds: Any) -> Results:
        """Coordinate variables have no _FillValue."""
        res = Results()
        info = self._info(ds)
        for name in info.coordinate_vars:
            res.add("_FillValue" not in info.variables[name].ncattrs(), name, HIGH, f"coordinate variable {name} "
                    "should NOT have a _FillValue attribute (coordinate values must not be missing)")
        return res

    def check_quality_control_global(self, ds: Any) -> Results:
        """quality_control_global and quality_control_global_conventions come as a pair of strings."""
        res = Results()
        info = self._info(ds)
        pair = ("quality_control_global", "quality_control_global_conventions")
        for name in info.qc_vars:
            var = info.variables[name]
            if any(a in var.ncattrs() for a in pair):
                for attr in pair:
                    check_attr_string(res, var, attr, MEDIUM, name, f"variable {name} attribute", allow_blank=True)
        return res
