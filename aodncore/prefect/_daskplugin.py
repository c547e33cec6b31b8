"""Dask worker plugin used by :mod:`aodncore.prefect.daskrun` (imports ``distributed``, so loaded only for Dask)."""

from __future__ import annotations

import logging
from typing import Any

from distributed import WorkerPlugin

__all__ = ["LibraryLoggingPlugin"]


class LibraryLoggingPlugin(WorkerPlugin):
    """Give the ``aodncore`` logger of each worker process (also of one the nanny restarts) the parent's level and
    propagation, so records the parent keeps off the console (the CLI without ``--verbose``) are not printed on
    the shared terminal by the workers of a local cluster either. Forwarding to the Prefect run is unaffected."""

    name = "aodncore-library-logging"

    def __init__(self, level: int, propagate: bool) -> None:
        self.level = level
        self.propagate = propagate

    def setup(self, worker: Any) -> None:
        library_logger = logging.getLogger("aodncore")
        library_logger.setLevel(self.level)
        library_logger.propagate = self.propagate
