"""Fewer idle wake-ups of the background server's task worker, with the same tasks run.

Prefect 3.9.1 runs its server-side background tasks (perpetual services such as the lease repossessor and the
cleanup reconciler, and one-off tasks such as deleting a deleted flow run's logs) with a docket ``Worker`` on an
in-memory broker, built with docket's defaults: it moves due scheduled tasks every 250 ms and renews its blocking
read for new tasks every 250 ms. On an otherwise idle local server those wake-ups are ~7 of its ~22 ms of CPU per
second, which a run pays for every second it lasts (``bench_throughput.py``: ~2 ms per file of a 40-file
``cf:1.6`` run). :func:`install` has the server's worker use :data:`CHECK_INTERVAL` for both instead:

* a task added for now is still started at once (the worker's read for new tasks blocks and wakes when one
  arrives; only the renewal of that read is less frequent);
* a task scheduled for later (a perpetual service's next run, every 5 s or more) starts at most
  :data:`CHECK_INTERVAL` after its time instead of 250 ms;
* when all of the worker's slots are busy, it looks for a free one every :data:`CHECK_INTERVAL`.

``tests/test_localserver_fastdocket.py`` checks both kinds of task on a real docket worker with and without it, and
that a background server with it deletes a deleted flow run's logs (a docket task) as Prefect's does.

The worker class replaced is a name in Prefect's private ``prefect.server.api.background_workers`` module, so this
is installed only for the Prefect versions it was checked against
(:data:`aodncore.prefect.localserver.patchgate.VERIFIED_PREFECT_VERSIONS`); any other version keeps Prefect's
worker and ``server.log`` says so. ``AODNCORE_SERVER_FAST_DOCKET=0`` keeps it too.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from aodncore.prefect.localserver import patchgate
from aodncore.prefect.localserver.settings import ENV_FAST_DOCKET

__all__ = ["CHECK_INTERVAL", "ENV_FAST_DOCKET", "install", "quiet_worker_class"]

logger = logging.getLogger("aodncore.prefect.localserver")

CHECK_INTERVAL = timedelta(seconds=1)
"""How often the background server's docket worker moves due scheduled tasks and renews its read for new ones
(docket's default: 250 ms each)."""


def quiet_worker_class(worker_class: Any) -> Any:
    """A subclass of docket's ``Worker`` whose two polling intervals default to :data:`CHECK_INTERVAL` (values the
    caller passes win)."""

    class QuietWorker(worker_class):
        aodncore_quiet_worker = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("minimum_check_interval", CHECK_INTERVAL)
            kwargs.setdefault("scheduling_resolution", CHECK_INTERVAL)
            super().__init__(*args, **kwargs)

    QuietWorker.__name__ = QuietWorker.__qualname__ = f"Quiet{worker_class.__name__}"
    return QuietWorker


def install() -> bool:
    """Give the server's docket worker :data:`CHECK_INTERVAL` when the installed Prefect was verified; True if done."""
    import prefect

    def fits() -> bool:
        from prefect.server.api import background_workers

        return isinstance(getattr(background_workers, "Worker", None), type)

    def patch() -> str:
        from prefect.server.api import background_workers

        if not getattr(background_workers.Worker, "aodncore_quiet_worker", False):
            background_workers.Worker = quiet_worker_class(background_workers.Worker)
        return f"Prefect {prefect.__version__}: background task worker polls every " \
               f"{CHECK_INTERVAL.total_seconds():.0f} s"

    return patchgate.install(
        logger, ENV_FAST_DOCKET, off="Prefect's background task worker polls at docket's defaults",
        fits=fits, patch=patch,
        kept=patchgate.prefect_line("its background task worker polls at docket's defaults (aodncore's intervals "
                                    "were verified for {versions})"))
