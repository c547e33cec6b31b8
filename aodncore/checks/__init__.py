"""IMOS compliance-checker suites (`imos:1.3`, `imos:1.4`, `ghrsst:1.0`), registered through the
`compliance_checker.suites` entry-point group. See docs/imos-checks.md.

Import the checker classes from `aodncore.checks.imos` / `aodncore.checks.ghrsst`; this package module stays
import-light so that compliance-checker's plugin loading does not pull in the rest of aodncore.
"""

SUITES = ("imos:1.3", "imos:1.4", "ghrsst:1.0")

__all__ = ["SUITES"]
