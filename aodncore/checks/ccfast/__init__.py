"""Fast path for compliance-checker runs: the same results at a fraction of the CPU.

compliance-checker's CF suites spend most of their time re-deriving the same facts about a dataset and parsing
the CF standard-name table; this package removes that repetition without changing a single result:

* :mod:`.memo` — per-dataset memoisation of the ``compliance_checker.cf.util`` classification helpers;
* :mod:`.nametable` — one parsed standard-name table per process, shared by all checker instances;
* :mod:`.scope` — the run scope: memoised answers exist only while one dataset is being checked, in the thread
  checking it, and are dropped when its run ends (also in a forked child).

:func:`run_checker` and :func:`run_all` are compliance-checker's own ``ComplianceChecker.run_checker`` and
``CheckSuite.run_all``, unchanged, called inside a run scope: compliance-checker opens, checks, scores, reports on
and closes the file itself; only the memoised helpers answer faster.

Checker instances are built afresh for every file, as compliance-checker does: with the shared table that costs
well under a millisecond, and it keeps each checker's per-dataset state (its test contexts and helper caches)
exactly as in a plain run.

Verified versions and the off switch
    Only the compliance-checker releases in :data:`VERIFIED_VERSIONS` use the fast path; with any other release
    :func:`enabled` is False and one INFO line per process says so. The fast path is on by default and off when
    the environment variable ``AODNCORE_CC_FAST`` is ``0``/``false``/``no``/``off``, or when a handler's
    ``check_params`` has ``"cc_fast_path": false``. Outside its run scope nothing installed here changes
    compliance-checker's behaviour, so the plain path stays plain in the same process.

Warm-up and fork interface (for capped child processes)
    ``warm_up(suites)`` imports compliance-checker, loads its suites, installs the fast path, parses the
    standard-name table once and (``exercise=True``) runs the suites once over a tiny generated file so that lazy
    imports, the units database and regex caches are loaded. Call it in a parent process before forking a child
    that checks one file (e.g. under a memory limit and a timeout): the child inherits the warm state through
    ``fork`` and starts checking at once. All warm state is plain per-process memory (no threads, no open files,
    no locks held): a child forked at any point — even in the middle of a parent's run — starts with no run
    scope open and builds its own, and the locks of this package are renewed in the child. ``warm_up`` is cheap
    to call again (the second call does nothing but return). A child started with ``spawn`` instead of ``fork``
    is simply cold: correct, but it pays the start-up again.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from .scope import run_scope, scope_active
from .versions import VERIFIED_VERSIONS, installed_version, is_verified_version

__all__ = [
    "ENV_SWITCH",
    "PARAM_SWITCH",
    "VERIFIED_VERSIONS",
    "enabled",
    "install",
    "installed_version",
    "run_all",
    "run_checker",
    "run_scope",
    "scope_active",
    "warm_up",
]

#: environment variable that turns the fast path off (``0``, ``false``, ``no``, ``off``)
ENV_SWITCH = "AODNCORE_CC_FAST"
#: ``check_params`` key that turns the fast path off for one handler (``False``) or asks for it (``True``)
PARAM_SWITCH = "cc_fast_path"

_OFF_VALUES = frozenset({"0", "false", "no", "off"})
_logger = logging.getLogger(__name__)
_warm_lock = threading.Lock()
_warmed: set[str] = set()


def _switched_on(check_params: Mapping[str, Any] | None) -> bool:
    if os.environ.get(ENV_SWITCH, "").strip().lower() in _OFF_VALUES:
        return False
    return check_params is None or check_params.get(PARAM_SWITCH, True) is not False


def enabled(check_params: Mapping[str, Any] | None = None) -> bool:
    """True if checks should take the fast path: switched on and a verified compliance-checker is installed."""
    return _switched_on(check_params) and is_verified_version()


def install() -> bool:
    """Install the fast path into the imported compliance-checker (idempotent); False for unverified versions."""
    if not is_verified_version():
        return False
    from . import memo, nametable

    memo.install()
    nametable.install()
    return True


def run_all(suite: Any, ds: Any, checker_names: Iterable[str], include_checks: Iterable[str] | None = None,
            skip_checks: Iterable[str] | None = None) -> dict:
    """``suite.run_all(ds, …)`` (compliance-checker's own ``CheckSuite.run_all``) inside a run scope."""
    install()
    with run_scope():
        return suite.run_all(ds, list(checker_names), include_checks, skip_checks)


def run_checker(runner_class: Any, ds_loc: Any, checker_names: Iterable[str], verbose: int, criteria: str,
                **kwargs: Any) -> tuple[bool, bool]:
    """``runner_class.run_checker(…)`` (compliance-checker's own ``ComplianceChecker.run_checker`` or a subclass)
    inside a run scope: it opens, checks, reports on and closes the dataset exactly as it always does."""
    install()
    with run_scope():
        return runner_class.run_checker(ds_loc, list(checker_names), verbose, criteria, **kwargs)


def _check_suite_class():
    from compliance_checker.suite import CheckSuite

    if not CheckSuite.checkers:
        CheckSuite.load_all_available_checkers()
    return CheckSuite


def warm_up(suites: Iterable[str] = ("cf:1.6",), *, exercise: bool = True) -> bool:
    """Prepare this process for fast checks with ``suites`` (see the module docstring); False if not verified.

    Unknown suite names are ignored here (the check step reports them).
    """
    if not install():
        return False
    wanted = [name for name in suites if name not in _warmed]
    if not wanted:
        return True
    with _warm_lock:
        check_suite = _check_suite_class()
        known = [name for name in wanted if name in check_suite.checkers]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with run_scope():
                for name in known:
                    check_suite.checkers[name]()  # parses (once) and shares the standard-name table
            if exercise and known:
                _exercise(check_suite(), known)
        from . import nametable

        nametable.warm_shared_tables()
        _warmed.update(wanted)
    _logger.debug("compliance-checker fast path warmed up for %s", known)
    return True


def _exercise(suite: Any, names: list[str]) -> None:
    from ._warmup_file import write_warm_up_file

    with tempfile.TemporaryDirectory(prefix="aodncore-ccwarm-") as directory:
        path = write_warm_up_file(os.path.join(directory, "warm-up.nc"))
        ds = suite.load_dataset(path)
        try:
            run_all(suite, ds, names)
        except Exception:  # warming is best effort; a real run reports its own errors
            _logger.debug("compliance-checker warm-up run failed", exc_info=True)
        finally:
            ds.close()


def _renew_locks_in_child() -> None:
    global _warm_lock
    _warm_lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_locks_in_child)
