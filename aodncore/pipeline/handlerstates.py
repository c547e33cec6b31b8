"""The states and transitions of the classic handler state machine, and the methods generated from them.

``HandlerBase`` runs ``initialise → resolve → preprocess → check → process → publish → postprocess`` (the ordered
states), then notifies and completes. Each transition names the trigger method, the states it leaves and enters,
and the handler method run on the way (``before``). :func:`install_state_methods` adds one trigger method per
transition and one ``is_<STATE>()`` query per state to a handler class, once per class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ORDERED_STATES", "ORDERED_TRANSITIONS", "OTHER_STATES", "OTHER_TRANSITIONS", "install_state_methods"]

ORDERED_STATES = (
    "HANDLER_INITIAL",
    "HANDLER_INITIALISED",
    "HANDLER_RESOLVED",
    "HANDLER_PREPROCESSED",
    "HANDLER_CHECKED",
    "HANDLER_PROCESSED",
    "HANDLER_PUBLISHED",
    "HANDLER_POSTPROCESSED",
)
OTHER_STATES = (
    "HANDLER_NOTIFIED_SUCCESS",
    "HANDLER_NOTIFIED_ERROR",
    "HANDLER_COMPLETED_SUCCESS",
    "HANDLER_COMPLETED_ERROR",
)


def _transition(trigger: str, source: Any, dest: str, before: str) -> dict[str, Any]:
    return {"trigger": trigger, "source": source, "dest": dest, "before": before}


ORDERED_TRANSITIONS = (
    _transition("_trigger_initialise", "HANDLER_INITIAL", "HANDLER_INITIALISED", "_initialise"),
    _transition("_trigger_resolve", "HANDLER_INITIALISED", "HANDLER_RESOLVED", "_resolve"),
    _transition("_trigger_preprocess", "HANDLER_RESOLVED", "HANDLER_PREPROCESSED", "preprocess"),
    _transition("_trigger_check", "HANDLER_PREPROCESSED", "HANDLER_CHECKED", "_check"),
    _transition("_trigger_process", "HANDLER_CHECKED", "HANDLER_PROCESSED", "process"),
    _transition("_trigger_publish", "HANDLER_PROCESSED", "HANDLER_PUBLISHED", "_publish"),
    _transition("_trigger_postprocess", "HANDLER_PUBLISHED", "HANDLER_POSTPROCESSED", "postprocess"),
)
OTHER_TRANSITIONS = (
    _transition("_trigger_notify_success", "HANDLER_POSTPROCESSED", "HANDLER_NOTIFIED_SUCCESS", "_notify_success"),
    _transition("_trigger_notify_error", list(ORDERED_STATES), "HANDLER_NOTIFIED_ERROR", "_notify_error"),
    _transition("_trigger_complete_success", "HANDLER_NOTIFIED_SUCCESS", "HANDLER_COMPLETED_SUCCESS",
                "_complete_success"),
    _transition("_trigger_complete_with_errors", "HANDLER_NOTIFIED_ERROR", "HANDLER_COMPLETED_ERROR",
                "_complete_with_errors"),
)


def _make_trigger(name: str) -> Callable[[Any], bool]:
    def trigger(self: Any) -> bool:
        return self._machine.trigger(name)

    trigger.__name__ = name
    return trigger


def _make_state_query(state: str) -> Callable[[Any], bool]:
    def is_state(self: Any) -> bool:
        return self.state == state

    is_state.__name__ = f"is_{state}"
    return is_state


def install_state_methods(cls: type) -> None:
    """Give ``cls`` a method per transition trigger (e.g. ``_trigger_check``) and ``is_<STATE>()`` per state."""
    for transition in cls.all_transitions:
        setattr(cls, transition["trigger"], _make_trigger(transition["trigger"]))
    for state in cls.all_states:
        setattr(cls, f"is_{state}", _make_state_query(state))
