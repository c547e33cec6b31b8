"""The one gate of the background server's fast paths: off switch, verified versions, shape check, log line.

Each ``localserver.fast*`` module patches part of Prefect (or FastAPI) in the server process, and only where that
is known to be safe. Its ``install()`` hands :func:`install` what differs — its switch (an ``AODNCORE_*``
variable named in :mod:`.settings`), whether the installed versions are ones it was verified against, a check that
the thing it patches still has the shape it expects, the patch itself and its wording — and this module does the
rest the same way for all: a switched-off or unverified fast path patches nothing, and each outcome is one INFO
line in ``server.log``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection

__all__ = ["OFF_VALUES", "VERIFIED_PREFECT_VERSIONS", "install", "prefect_line", "prefect_verified", "switched_off",
           "versions"]

VERIFIED_PREFECT_VERSIONS = frozenset({"3.9.1"})
"""Prefect versions the server's fast paths (event writer, ``Event.receive``, task-run recorder, bus hand-off, log
writer, docket intervals, routing, middleware) were checked against."""

OFF_VALUES = ("0", "false", "no", "off")
"""What turns a switch off (case and surrounding blanks ignored); anything else, or nothing, leaves it on."""


def switched_off(switch: str) -> bool:
    """True when the environment variable ``switch`` turns its fast path off."""
    return os.environ.get(switch, "1").strip().lower() in OFF_VALUES


def prefect_verified() -> bool:
    """True when the installed Prefect is one of :data:`VERIFIED_PREFECT_VERSIONS`."""
    import prefect

    return prefect.__version__ in VERIFIED_PREFECT_VERSIONS


def versions(verified: Collection[str]) -> str:
    """``verified`` as said in a log line: sorted, comma-separated."""
    return ", ".join(sorted(verified))


def prefect_line(template: str) -> Callable[[], str]:
    """The line of a fast path that Prefect's version (or a changed shape) keeps off: ``Prefect <version>: `` and
    ``template`` with ``{versions}`` the verified ones."""
    def line() -> str:
        import prefect

        return f"Prefect {prefect.__version__}: " + template.format(versions=versions(VERIFIED_PREFECT_VERSIONS))

    return line


def install(log: logging.Logger, switch: str, *, off: str, fits: Callable[[], bool], kept: Callable[[], str],
            patch: Callable[[], str], verified: bool | None = None) -> bool:
    """Patch (``patch()``, which returns the line saying what it did) unless ``switch`` is off (logs
    ``<switch>=0: <off>``), the versions are not ``verified`` (default: :func:`prefect_verified`) or ``fits()``
    finds the patched thing changed (logs ``kept()``); True if patched. ``fits`` is asked only for verified
    versions, and only once switched on."""
    if switched_off(switch):
        log.info("%s=0: %s", switch, off)
        return False
    if verified is None:
        verified = prefect_verified()
    if not verified or not fits():
        log.info("%s", kept())
        return False
    log.info("%s", patch())
    return True
