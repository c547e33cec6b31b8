"""The Prefect driver: tasks for each pipeline step, ready-made ingest flows, log bridge, artifacts, triggers.

Importing this package imports Prefect. ``ingest_file`` and ``ingest_landing`` are the ready-made flows; the
``*_task`` names are the building blocks for your own flows.
"""

from aodncore.prefect.flows import ingest_file, ingest_landing
from aodncore.prefect.tasks import (
    check_task,
    ingest_batch_task,
    list_landing_task,
    notify_task,
    publish_task,
    resolve_task,
)

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
