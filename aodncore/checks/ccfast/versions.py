"""The compliance-checker releases the fast path is verified for, and the one-line fallback notice.

The fast path memoises functions and methods of compliance-checker by name and mirrors ``CheckSuite.run_all`` /
``ComplianceChecker.run_checker``; it is only correct for releases whose code was read and whose results were proven
identical (tests/test_ccfast_identity.py). Any other installed release runs the plain compliance-checker path.
"""

from __future__ import annotations

import logging
import os
import threading

__all__ = ["VERIFIED_VERSIONS", "installed_version", "is_verified_version"]

#: compliance-checker releases whose results the fast path reproduces exactly (exact version strings)
VERIFIED_VERSIONS: tuple[str, ...] = ("6.1.0",)

_logger = logging.getLogger(__name__)
_notice_lock = threading.Lock()
_noticed: set[str] = set()


def installed_version() -> str | None:
    """The installed compliance-checker version string, or None if it cannot be imported."""
    try:
        from compliance_checker import __version__
    except ImportError:  # pragma: no cover - compliance-checker is a hard dependency
        return None
    return str(__version__)


def is_verified_version(version: str | None = None, *, log: bool = True) -> bool:
    """True if ``version`` (default: the installed one) is in :data:`VERIFIED_VERSIONS`.

    The first time an unverified version is seen in a process, one INFO line says that the plain path is used.
    """
    version = installed_version() if version is None else version
    if version in VERIFIED_VERSIONS:
        return True
    if log:
        with _notice_lock:
            first = version not in _noticed
            _noticed.add(str(version))
        if first:
            _logger.info("compliance-checker %s is not verified for the fast check path (verified: %s); "
                         "running plain compliance-checker", version, ", ".join(VERIFIED_VERSIONS))
    return False


def _renew_lock_in_child() -> None:
    global _notice_lock
    _notice_lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_lock_in_child)
