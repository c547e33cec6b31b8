"""``legacy_cf_verdicts``: the CF verdicts of compliance-checker 5.0.1, which the classic deployments pinned.

compliance-checker 6.x runs CF checks that 5.0.1 did not have, so files the classic pipelines accepted can now be
refused. With ``check_params={'legacy_cf_verdicts': True, ...}`` the check step skips exactly those checks and
maps the bare suite name ``cf`` (the newest CF checker: cf:1.8 in 5.0.1, cf:1.11 in 6.x) to ``cf:1.8``.
Everything else -- including checks that changed behaviour without being new -- runs as 6.x has it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CF_1_6_CHECKS_ADDED_AFTER_5_0", "CF_1_8_CHECKS_ADDED_AFTER_5_0", "LEGACY_BARE_CF", "legacy_cf_params"]

#: ``check_*`` methods of the CF 1.6 checker (inherited by the later ones) added after compliance-checker 5.0.1
CF_1_6_CHECKS_ADDED_AFTER_5_0 = (
    "check_invalid_coordinate_attr",  # 5.4.0, HIGH: no _FillValue/missing_value on coordinate variables
    "check_fill_value_equal_missing_value",  # 5.1.0, MEDIUM: missing_value == _FillValue when both exist
    "check_coordinate_variables_strict_monotonicity",  # 5.1.0, HIGH
    "check_coordinates_attribute_format",  # 5.4.0, HIGH: `coordinates` tokens name existing variables
    "check_valid_range_and_valid_min_max_present",  # 5.1.1, MEDIUM: not both valid_range and valid_min/max
    "check_spatiotemporal_dims_have_coordinate_vars",  # 5.4.0, HIGH
    "check_filename",  # 5.0.2, HIGH: the checked path ends with "nc"
)

#: ``check_*`` methods of the CF 1.7/1.8 checkers added after compliance-checker 5.0.1
CF_1_8_CHECKS_ADDED_AFTER_5_0 = (
    "check_cell_boundaries_interval",
    "check_coordinates_with_paths",
    "check_external_variables",
    "check_invalid_same_named_dimension_across_groups",
    "check_standard_name_deprecated_modifiers",
)

#: what the bare suite name ``cf`` meant under compliance-checker 5.0.1
LEGACY_BARE_CF = "cf:1.8"


def legacy_cf_params(checks: Sequence[str], skip_checks: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """``(checks, skip_checks)`` giving 5.0.1-era CF verdicts: bare ``cf`` becomes ``cf:1.8`` and the checks added
    since 5.0.1 are appended to the caller's ``skip_checks`` (kept first, so ``name:M``-style entries stay)."""
    new_checks = [LEGACY_BARE_CF if suite == "cf" else suite for suite in checks]
    skips = list(skip_checks or [])
    given = {entry.split(":", 1)[0] for entry in skips}
    added = CF_1_6_CHECKS_ADDED_AFTER_5_0 + CF_1_8_CHECKS_ADDED_AFTER_5_0
    skips.extend(name for name in added if name not in given)
    return list(dict.fromkeys(new_checks)), skips
