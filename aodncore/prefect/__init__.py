"""The Prefect driver: tasks for each pipeline step, ready-made ingest flows, log bridge, artifacts, triggers.

``ingest_file`` and ``ingest_landing`` are the ready-made flows; the ``*_task`` names are building blocks for
your own flows. Names are imported lazily, so ``aodncore.prefect.runtime`` can prepare Prefect's environment
before Prefect itself is imported.
"""

from importlib import import_module
from typing import Any

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

_LOCATIONS = {"ingest_file": "flows", "ingest_landing": "flows"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_LOCATIONS.get(name, 'tasks')}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
