"""Progress events of ingest runs, for progress bars and other listeners in the same process.

Listeners are plain callables; they must be quick and thread-safe (events arrive from worker threads).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["add_listener", "emit", "remove_listener"]

logger = logging.getLogger(__name__)
_listeners: list[Callable[[str, Any], None]] = []
_lock = threading.Lock()


def add_listener(listener: Callable[[str, Any], None]) -> None:
    """Call ``listener(event, payload)`` for every event: ``planned`` (count of objects), ``done`` (outcome),
    ``counted`` (how many entries finished without an outcome of their own: summarised, see
    :mod:`aodncore.ingest.result`), ``settling`` (count of files waited for)."""
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Callable[[str, Any], None]) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def emit(event: str, payload: Any) -> None:
    """Send an event to every listener; a failing listener is logged and never breaks the ingest."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event, payload)
        except Exception as error:  # noqa: BLE001
            logger.warning("progress listener failed: %s", error)
