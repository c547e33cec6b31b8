"""Pipeline steps. Each step is an independent runner over a ``PipelineFileCollection``.

Names are imported lazily so that using one step does not import the others.
"""

from aodncore._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LOCATIONS)
