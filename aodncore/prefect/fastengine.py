"""Two API requests fewer at the start of each aodncore flow run: the run is created with its name.

Prefect 3.9.1's synchronous flow engine creates a flow run unnamed (the server picks a random name), and then, for a
flow whose ``flow_run_name`` is a callable, builds a flow-run context only to call it — which reads the server's
default result storage (``GET /admin/storage``) — and renames the run (``PATCH /flow_runs/{id}``) before setting
it Running. The ready-made flows' run names (``<kind> <source> @ <UTC time>``) depend only on the call's
parameters, so their ``flow_run_name`` also offers ``name_for_parameters(parameters)``; with :func:`install` the
engine creates such a flow's run with that name (``POST /flow_runs/`` carries it) and skips the rename: the same
name, the same states, logs and result, two requests (~20 ms of a warm run's wall time on the local server) fewer.

Only top-level runs of flows whose run-name callable offers ``name_for_parameters`` take this path; a subflow, any
other flow, a name that cannot be made (the error is then Prefect's own, as before) and a run Prefect already named
go the engine's usual way. One difference: a run whose parameters fail validation now keeps its name (Prefect left
such a run with the server's random name).

The engine method replaced is private Prefect API, so this is installed only for the Prefect versions it was
checked against (:data:`VERIFIED_PREFECT_VERSIONS`); ``AODNCORE_FAST_FLOW_ENGINE=0`` keeps Prefect's engine as it is.
Installed by :mod:`aodncore.prefect.flows`; ``tests/test_prefect_fastengine.py`` runs the flows with and without it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["ENV_FAST_FLOW_ENGINE", "VERIFIED_PREFECT_VERSIONS", "install", "installed", "uninstall"]

logger = logging.getLogger(__name__)

ENV_FAST_FLOW_ENGINE = "AODNCORE_FAST_FLOW_ENGINE"
VERIFIED_PREFECT_VERSIONS = frozenset({"3.9.1"})
"""Prefect versions whose ``FlowRunEngine.create_flow_run`` / ``begin_run`` this was checked against."""

_OFF = ("0", "false", "no", "off")
_original: Any = None


def _named_create_flow_run(original: Any) -> Any:
    def create_flow_run(self: Any, client: Any) -> Any:
        from prefect.context import FlowRunContext, TagsContext
        from prefect.states import Pending

        namer = getattr(self.flow.flow_run_name, "name_for_parameters", None)
        if namer is None or self._flow_run_name_set or FlowRunContext.get() is not None:
            return original(self, client)
        parameters = self.parameters or {}
        try:
            name = namer(parameters)
        except Exception:  # noqa: BLE001 - Prefect's own path names (or fails) the run as before
            return original(self, client)
        flow_run = client.create_flow_run(
            flow=self.flow,
            name=name,
            parameters=self.flow.serialize_parameters(parameters),
            state=Pending(),
            parent_task_run_id=None,
            tags=TagsContext.get().current_tags,
        )
        self._flow_run_name_set = True  # begin_run and setup_run_context skip the rename
        return flow_run

    create_flow_run.aodncore_named_at_creation = True  # type: ignore[attr-defined]
    return create_flow_run


def installed() -> bool:
    """True while the engine creates named runs (see module doc)."""
    from prefect.flow_engine import FlowRunEngine

    return getattr(FlowRunEngine.create_flow_run, "aodncore_named_at_creation", False)


def install() -> bool:
    """Have Prefect's sync flow engine create runs with their name (verified Prefect versions only; idempotent).
    Returns True when installed."""
    global _original
    if os.environ.get(ENV_FAST_FLOW_ENGINE, "1").strip().lower() in _OFF:
        return False
    import prefect
    from prefect.flow_engine import FlowRunEngine

    if prefect.__version__ not in VERIFIED_PREFECT_VERSIONS:
        logger.debug("Prefect %s: flow runs are renamed after creation (aodncore's engine shortcut was verified "
                     "for %s)", prefect.__version__, ", ".join(sorted(VERIFIED_PREFECT_VERSIONS)))
        return False
    if not installed():
        _original = FlowRunEngine.create_flow_run
        FlowRunEngine.create_flow_run = _named_create_flow_run(_original)  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """Put Prefect's own ``create_flow_run`` back (tests)."""
    global _original
    from prefect.flow_engine import FlowRunEngine

    if _original is not None and installed():
        FlowRunEngine.create_flow_run = _original  # type: ignore[method-assign]
    _original = None
