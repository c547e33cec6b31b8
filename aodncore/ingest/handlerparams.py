"""Handler constructor parameters given as text (``aodncore ingest --handler-param KEY=VALUE``), checked early."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterable
from typing import Any

__all__ = ["parse_handler_params", "probe_handler"]


def parse_handler_params(items: Iterable[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict. VALUE is parsed as JSON when it parses (``1``, ``false``, ``null``,
    ``["a"]``, ``{"checks": ["cf"]}``, ``"1"`` for the string 1), else taken as the string itself.

    :raises ValueError: an item without ``=`` or whose KEY is not a parameter name, or a KEY given twice
    """
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"'{item}': expected KEY=VALUE with KEY a parameter name")
        if key in params:
            raise ValueError(f"{key} given twice")
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params


def probe_handler(settings: Any) -> None:
    """Build one handler with ``settings``' parameters and validate them as a run would, so that an unknown or
    invalid parameter is reported once, before anything runs, instead of failing every file.

    :raises ValueError: the handler refuses a parameter (the message names the handler)
    """
    problem = _refusal(settings, settings.handler_kwargs)
    if problem is None:
        return
    for key, value in settings.handler_kwargs.items():  # name the parameter it refuses
        if _refusal(settings, {key: value}) is not None:
            raise ValueError(f"handler {settings.handler_name} refuses parameter {key}={value!r}: {problem}")
    raise ValueError(f"handler {settings.handler_name}: {problem}")


def _refusal(settings: Any, kwargs: dict[str, Any]) -> str | None:
    """Why the handler cannot be built or validated with ``kwargs`` (None when it can)."""
    try:
        handler = settings.handler_class(os.devnull, config=settings.config, **kwargs)
        validate = getattr(handler, "_validate_and_freeze_params", None)  # what HandlerBase.run() checks first
        if callable(validate) and not inspect.signature(validate).parameters:
            validate()
    except (TypeError, ValueError) as error:
        return str(error)
    return None
