"""Pipeline steps. Each step is an independent runner over a ``PipelineFileCollection``.

Names are imported lazily so that using one step does not import the others.
"""

from importlib import import_module
from typing import Any

__all__ = [
    "NotifyList",
    "NotificationRecipient",
    "get_check_runner",
    "get_child_check_runner",
    "get_harvester_runner",
    "get_notify_runner",
    "get_resolve_runner",
    "get_store_runner",
]

_LOCATIONS = {
    "NotifyList": "notify",
    "NotificationRecipient": "notify",
    "get_notify_runner": "notify",
    "get_check_runner": "check",
    "get_child_check_runner": "check",
    "get_harvester_runner": "harvest",
    "get_resolve_runner": "resolve",
    "get_store_runner": "store",
}


def __getattr__(name: str) -> Any:
    try:
        module = _LOCATIONS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
