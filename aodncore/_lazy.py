"""Lazy re-exports for package ``__init__`` modules (PEP 562), so importing one sub-module stays cheap."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, namespace: dict[str, Any], locations: Mapping[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package`` importing ``name`` from ``package.<locations[name]>`` on use."""

    def __getattr__(name: str) -> Any:
        try:
            module = locations[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(locations))

    return __getattr__, __dir__
