"""Each file's compliance checks run under a memory cap and a timeout, so one crafted file cannot exhaust the machine.

A small NetCDF-4 file can hold a huge compressed variable: checking it once took 4.4 GB. The compliance checks of
every file therefore run in a child process (:func:`aodncore.util.capped.run_capped`) whose extra address space is
capped by ``limits.check_memory_bytes`` and whose run time is capped by ``limits.check_timeout_seconds``
(:mod:`aodncore.limits`). Exceeding a cap fails the file's check with a :class:`LimitedCheckResult` whose log
names the cap; the check step then raises :class:`~aodncore.pipeline.exceptions.CheckLimitExceededError`, a data
error (the file is quarantined). A child that dies (e.g. a crash inside the netCDF library) also fails the check.

Both drivers use this: ``HandlerBase.run()`` and the Prefect flows' worker processes call the same check step.
Before forking, the forking process warms compliance-checker up (:func:`warm_up_compliance_checks`, the fast path's
``warm_up`` when present), so each child starts with the suites loaded and the standard-name table parsed; the
fork itself costs a few milliseconds against the 100-400 ms of checking a file. Format-only checks never come here.
In the ingest pool's workers and the fork host the child is long-lived (forked once, reused for many files:
:mod:`aodncore.util.cappedchild`); the suites registered travel as the call's key, so a suite registered later gets
a child that has it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from aodncore.limits import CHECK_MEMORY_BYTES, CHECK_TIMEOUT_SECONDS, CheckLimits, format_size
from aodncore.pipeline.common import CheckResult
from aodncore.util.capped import run_capped

__all__ = ["LimitedCheckResult", "check_in_capped_child", "warm_up_compliance_checks"]


class LimitedCheckResult(CheckResult):
    """A failed check: the file's checks hit a cap; ``limit`` is the cap's configuration key."""

    __slots__ = ("_limit",)

    def __init__(self, log: Sequence[str], limit: str) -> None:
        super().__init__(False, log, True)
        self._limit = limit

    @property
    def limit(self) -> str:
        return self._limit


_warmed: set[tuple[str, ...]] = set()


def warm_up_compliance_checks(checks: tuple[str, ...]) -> None:
    """Load compliance-checker and prepare ``checks`` in this process, once, so that forked children start warm."""
    key = tuple(checks)
    if key in _warmed:
        return
    from aodncore.pipeline.steps import check

    check._compliance_checker()
    try:
        from aodncore.checks import ccfast
    except ImportError:
        ccfast = None
    if ccfast is not None and hasattr(ccfast, "warm_up"):
        ccfast.warm_up(key)
    else:  # check a tiny file once: loads lazy imports, the units database and the CF standard-name table
        known = [name for name in key if name in check._loaded["suite"].checkers]
        if known:
            _exercise(check.ComplianceCheckerCheckRunner(None, None, {"checks": known}))
    _warmed.add(key)


def _exercise(runner: Any) -> None:
    import tempfile

    import netCDF4

    with tempfile.TemporaryDirectory(prefix="aodncore-check-warm-up-") as folder:
        runner.work_dir = folder  # its reports go beside the warm-up file, removed with it
        path = f"{folder}/warm-up.nc"
        with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
            ds.Conventions = "CF-1.6"
            ds.createDimension("TIME", 2)
            time = ds.createVariable("TIME", "f8", ("TIME",))
            time.standard_name, time.units, time.axis = "time", "days since 1950-01-01 00:00:00 UTC", "T"
            time[:] = [0.0, 1.0]
            for name, standard_name, units in (("LATITUDE", "latitude", "degrees_north"),
                                               ("LONGITUDE", "longitude", "degrees_east")):
                var = ds.createVariable(name, "f8", ())
                var.standard_name, var.units = standard_name, units
            temp = ds.createVariable("TEMP", "f4", ("TIME",))
            temp.standard_name, temp.units, temp.coordinates = "sea_water_temperature", "degrees_Celsius", \
                "TIME LATITUDE LONGITUDE"
            temp[:] = [10.0, 11.0]
        try:
            runner.check_file(path)
        except Exception:  # noqa: BLE001 - warming is best effort; the real run reports its own errors
            pass


def _registered_suites() -> tuple[str, ...]:
    """The compliance suites registered in this process: a long-lived capped child serves only calls made with the
    suites it was forked with (one registered later, e.g. by a handler module, gets a new child)."""
    from aodncore.pipeline.steps import check

    suite = check._loaded.get("suite")
    return tuple(sorted(suite.checkers)) if suite is not None else ()


def _ran_out_of_memory(value: tuple[Any, Any, bool, bool]) -> bool:
    """Whether a check that ended normally caught a MemoryError (then its child is not reused)."""
    return value[3]


def _check_in_child(runner_class: type, params: dict[str, Any], path: str,
                    work_dir: str | None = None) -> tuple[Any, Any, bool, bool]:
    """In the capped child: rebuild the runner and check one file.

    The last item says whether an allocation failed: compliance-checker catches exceptions inside each check and
    reports them as check errors (the check step logs them as ``<check>: MemoryError: ...``), so a check that ran
    into the memory cap shows up in the log, not as an exception.
    """
    runner = runner_class(None, None, params, work_dir=work_dir)
    # the parent made work_dir for this check alone (and removes it): the reports go straight in
    result = runner.check_file(path, report_folder=work_dir) if work_dir else runner.check_file(path)
    out_of_memory = any("MemoryError" in str(line) for line in result.log) if result.errors else False
    return result.compliant, result.log, result.errors, out_of_memory


def check_in_capped_child(runner_class: type, params: dict[str, Any], path: str, caps: CheckLimits,
                          work_dir: str | None = None) -> CheckResult:
    """Run ``runner_class(None, None, params, work_dir=work_dir).check_file(path)`` in a capped child and
    translate what happened (``work_dir``: where the child writes the checker's reports)."""
    outcome = run_capped(
        _check_in_child, runner_class, params, path, work_dir,
        memory_bytes=caps.memory_bytes, timeout_seconds=caps.timeout_seconds,
        prepare=functools.partial(warm_up_compliance_checks, tuple(params.get("checks") or ())),
        key=_registered_suites, retire=_ran_out_of_memory,
    )
    if outcome.status == "ok":
        compliant, log, errors, out_of_memory = outcome.value
        if not (out_of_memory and caps.memory_bytes):
            return CheckResult(compliant, log, errors)
    if outcome.status in ("ok", "memory"):
        return LimitedCheckResult(
            [f"compliance checks exceeded the memory limit of {format_size(caps.memory_bytes)} "
             f"({CHECK_MEMORY_BYTES.key})"], CHECK_MEMORY_BYTES.key)
    if outcome.status == "time":
        return LimitedCheckResult(
            [f"compliance checks exceeded the time limit of {caps.timeout_seconds} s ({CHECK_TIMEOUT_SECONDS.key})"],
            CHECK_TIMEOUT_SECONDS.key)
    if outcome.status == "crashed":
        return CheckResult(False, [f"compliance checks crashed the checking process ({outcome.value}): the file "
                                   f"is probably corrupt"], True)
    raise outcome.value  # the check step itself failed (not the file): a system error, as without the child
