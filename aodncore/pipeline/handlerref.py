"""What counts as a handler class: a ``HandlerBase`` subclass, or any callable returning a handler.

Handler packages register ``functools.partial(SomeHandler, **presets)`` as handlers. Such a partial is always
*called* as it is (so its presets apply); it is unwrapped only to check what it builds and to name it.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["handler_class_name", "is_handler_factory", "unwrap_handler_class"]


def unwrap_handler_class(handler_class: Any) -> Any:
    """The object a (possibly nested) ``functools.partial`` finally calls; anything else is returned as is."""
    target = handler_class
    while isinstance(target, functools.partial):
        target = target.func
    return target


def handler_class_name(handler_class: Any) -> str:
    """Display name of a handler class or factory: the name of the class a partial wraps (``'AatamsHandler'``)."""
    target = unwrap_handler_class(handler_class)
    return getattr(target, "__name__", None) or type(target).__name__


def is_handler_factory(handler_class: Any) -> bool:
    """True for a ``HandlerBase`` subclass, a partial of one, or another callable that is not a class.

    A class that is not a ``HandlerBase`` subclass (and anything not callable) is refused. A plain function is
    accepted: it can only be judged by what it returns.
    """
    from aodncore.pipeline.handlerbase import HandlerBase

    target = unwrap_handler_class(handler_class)
    if isinstance(target, type):
        return issubclass(target, HandlerBase)
    return callable(target)
