"""How a handler describes itself: ``dict(handler)`` and the data given to the notification templates."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property
from typing import Any

from aodncore.pipeline.files import PipelineFileCollection
from aodncore.util import merge_dicts

__all__ = ["ITERATION_EXCLUDED", "iter_handler_attributes", "notification_data"]

#: public names left out of ``dict(handler)`` (collaborators, and values too large or too internal to show)
ITERATION_EXCLUDED = frozenset(
    {
        "celery_task",
        "config",
        "default_deletion_publish_type",
        "input_file_object",
        "logger",
        "state",
        "state_query",
        "trigger",
    }
)


def iter_handler_attributes(handler: Any) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of the handler's public instance attributes, then of its public properties (by name)."""
    seen = set()
    for name, value in list(handler.__dict__.items()):
        if name.startswith("_") or name in ITERATION_EXCLUDED or name.startswith("is_HANDLER_"):
            continue
        seen.add(name)
        yield name, value
    handler_class = type(handler)
    for name in sorted(dir(handler_class)):
        if name.startswith("_") or name in seen or name in ITERATION_EXCLUDED:
            continue
        if isinstance(getattr(handler_class, name, None), property | cached_property):
            yield name, getattr(handler, name)


def notification_data(handler: Any) -> dict[str, Any]:
    """Everything the notification templates may use: ``dict(handler)`` plus the run's summary fields."""
    collection = handler.file_collection if handler.file_collection is not None else PipelineFileCollection()
    headers, data = collection.get_table_data()
    checks = (handler.check_params or {}).get("checks")
    extra = {
        "input_file": os.path.basename(handler.input_file),
        "processing_result": handler.result.name,
        "handler_start_time": handler.start_time.strftime("%Y-%m-%d %H:%M"),
        "checks": ",".join(checks) if checks else "None",
        "collection_headers": headers,
        "collection_data": data,
        "error_details": handler.error_details or False,
        "upload_dir": os.path.dirname(handler.upload_path) if handler.upload_path else None,
    }
    return merge_dicts(dict(handler), extra)
