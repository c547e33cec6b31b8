"""The Prefect API a benchmark's flow runs use, started the way the CLI starts it.

``background`` (the CLI's default): aodncore's background server (:mod:`aodncore.prefect.localserver`) in a fresh
``PREFECT_HOME`` of the benchmark's own, without the warm runner (benchmarks run their flows in-process), stopped
at the end. ``ephemeral`` (``AODNCORE_PREFECT_SERVER=ephemeral``): Prefect's own server, started by
:func:`aodncore.prefect.runtime.start_server_early`. Call :func:`start_api` before Prefect is imported.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

MODES = ("background", "ephemeral")


class BenchApi:
    """The started API: its server's pid (for CPU accounting), and ``stop()``."""

    def __init__(self, mode: str, home: Path | None = None) -> None:
        from aodncore.prefect import runtime

        self.mode = mode
        self.home = home
        if mode == "background":
            os.environ.update(PREFECT_HOME=str(home), AODNCORE_WARM_RUNNER="0", AODNCORE_SERVER_IDLE_TIMEOUT="900")
            self.api = runtime.start_prefect_api(home)
            self.api.wait()
            self.pid: int | None = self.api.server.state.pid
        else:
            runtime.start_server_early()
            self.api = None
            self.pid = runtime._early_server.pid if runtime._early_server is not None else None

    def wait(self) -> None:
        from aodncore.prefect import runtime

        if self.api is None:
            runtime.wait_for_server()

    def stop(self) -> None:
        if self.api is not None:
            from aodncore.prefect.localserver.control import stop_server

            self.api.release()
            stop_server(self.home)


def start_api(mode: str, scratch: Path) -> BenchApi:
    """Start the ``mode`` API (see module doc); ``scratch`` holds a background server's ``PREFECT_HOME``."""
    if mode not in MODES:
        raise ValueError(f"server mode {mode!r}: expected one of {MODES}")
    home = scratch / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    return BenchApi(mode, home)


def quiet_run_logging() -> None:
    """As the CLI runs a flow: Prefect's console handlers quiet (records still reach the run log), aodncore's
    records at INFO and not echoed by the root logger."""
    for handler_name, level in (("CONSOLE", "WARNING"), ("CONSOLE_FLOW_RUNS", "CRITICAL"),
                                ("CONSOLE_TASK_RUNS", "CRITICAL")):
        os.environ.setdefault(f"PREFECT_LOGGING_HANDLERS_{handler_name}_LEVEL", level)
    library = logging.getLogger("aodncore")
    library.setLevel(logging.INFO)
    library.propagate = False
