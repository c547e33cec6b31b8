"""Imported by the worker pool's fork server when it starts: prepares compliance-checker there, once.

Worker processes are forked from the fork server, so a checker warmed up in it (suites loaded, the CF
standard-name table parsed, a tiny file checked; :func:`aodncore.pipeline.steps.checklimits.warm_up_compliance_checks`)
is warm in every worker of every later run, instead of being warmed in each worker of each run (~0.25 s of CPU
per worker for ``cf:1.6``). The suites are those of the run that started the fork server, passed in
:data:`aodncore.ingest.parallel.WARM_CHECKS_ENV` (comma-separated); other suites are warmed by the worker on
first use, as before.
Best effort: a failure here only costs the warm-up.
"""

from __future__ import annotations

import os

from aodncore.ingest.parallel import WARM_CHECKS_ENV


def _warm_up() -> None:
    checks = tuple(name for name in os.environ.get(WARM_CHECKS_ENV, "").split(",") if name)
    if not checks:
        return
    try:
        from aodncore.pipeline.steps.checklimits import warm_up_compliance_checks

        warm_up_compliance_checks(checks)
    except Exception:  # noqa: BLE001 - the workers warm up themselves then
        pass


_warm_up()
