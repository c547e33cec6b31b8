"""The Prefect driver: tasks for each pipeline step, ready-made ingest flows, log bridge, artifacts, triggers.

``ingest_file`` and ``ingest_landing`` are the ready-made flows; the ``*_task`` names are building blocks for
your own flows. Names are imported lazily, so ``aodncore.prefect.runtime`` can prepare Prefect's environment
before Prefect itself is imported.
"""

from aodncore._lazy import lazy_exports

__all__ = [
    "check_task",
    "ingest_batch_task",
    "ingest_file",
    "ingest_landing",
    "list_landing_task",
    "notify_task",
    "publish_task",
    "resolve_task",
]

_LOCATIONS = {name: "tasks" if name.endswith("_task") else "flows" for name in __all__}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)
