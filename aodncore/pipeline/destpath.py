"""Resolution of a handler's destination and archive path functions.

A handler names its path function either through a parameter (``dest_path_function`` /
``archive_path_function``: a callable, or the name of an entry point in the configured path function group) or,
when the parameter is ``None``, through a method or callable attribute (``dest_path`` / ``archive_path``).
Archive resolution falls back to the destination function when it fails for any reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aodncore.pipeline.exceptions import InvalidPathFunctionError

__all__ = ["get_path_function"]

PathFunction = Callable[[str], str]


class PathFunctionResolver:
    """Resolves one kind of path function (destination, or archive with ``archive_mode``) for a handler.

    :param handler: object with ``dest_path_function`` / ``archive_path_function`` attributes, optionally
        ``dest_path`` / ``archive_path`` callables, and (for entry-point names) a ``config`` whose
        ``discovered_dest_path_functions`` is a ``(loaded_dict, failed_names)`` pair
    :param entry_point_group: the entry-point group the names refer to (used when the handler has no ``config``,
        and in messages)
    :param archive_mode: resolve the archive path function instead of the destination one
    """

    def __init__(self, handler: Any, entry_point_group: str, archive_mode: bool = False) -> None:
        self.handler = handler
        self.entry_point_group: str = entry_point_group
        self.archive_mode = archive_mode

    @property
    def parameter_name(self) -> str:
        return "archive_path_function" if self.archive_mode else "dest_path_function"

    @property
    def method_name(self) -> str:
        return "archive_path" if self.archive_mode else "dest_path"

    # the classic attribute names
    @property
    def handler_instance(self) -> Any:
        """The handler (classic name of :attr:`handler`)."""
        return self.handler

    @property
    def attribute_name(self) -> str:
        """``archive_path`` or ``dest_path`` (classic name of :attr:`method_name`)."""
        return self.method_name

    @property
    def param_name(self) -> str:
        """``archive_path_function`` or ``dest_path_function`` (classic name of :attr:`parameter_name`)."""
        return self.parameter_name

    @property
    def function_param(self) -> Any:
        """The handler's value of :attr:`param_name`."""
        return getattr(self.handler, self.parameter_name, None)

    def resolve(self) -> tuple[PathFunction, str]:
        """Return ``(function, printable qualified name)`` or raise :class:`InvalidPathFunctionError`."""
        parameter = getattr(self.handler, self.parameter_name, None)
        if parameter is None:
            return self._from_handler_attribute()
        if isinstance(parameter, str):
            return self._from_entry_point(parameter)
        if callable(parameter):
            return parameter, _qualified_name(parameter)
        raise InvalidPathFunctionError(
            f"{self.parameter_name} must be a callable or the name of an entry point, not {type(parameter).__name__}"
        )

    def _from_handler_attribute(self) -> tuple[PathFunction, str]:
        handler_class = type(self.handler).__name__
        function = getattr(self.handler, self.method_name, None)
        if function is None:
            raise InvalidPathFunctionError(
                f"missing path function: {handler_class} has no '{self.parameter_name}' parameter "
                f"and no '{self.method_name}' method"
            )
        if not callable(function):
            raise InvalidPathFunctionError(f"{handler_class}.{self.method_name} is not callable")
        name = getattr(function, "__name__", self.method_name)
        return function, f"{handler_class}.{name}"

    def _discovered_functions(self) -> tuple[dict[str, Any], list[str]]:
        config = getattr(self.handler, "config", None)
        if config is not None:
            return config.discovered_dest_path_functions
        from aodncore.util.misc import discover_entry_points

        return discover_entry_points(self.entry_point_group)

    def _from_entry_point(self, name: str) -> tuple[PathFunction, str]:
        loaded, failed = self._discovered_functions()
        try:
            function = loaded[name]
        except KeyError:
            if name in failed:
                reason = f"failed to load from entry point group '{self.entry_point_group}'"
            else:
                reason = f"not found in entry point group '{self.entry_point_group}'"
            raise InvalidPathFunctionError(f"{self.parameter_name} '{name}' {reason}") from None
        if not callable(function):
            raise InvalidPathFunctionError(f"{self.parameter_name} '{name}' is not callable")
        return function, _qualified_name(function)


def _qualified_name(function: Any) -> str:
    module = getattr(function, "__module__", None)
    name = getattr(function, "__name__", None) or type(function).__name__
    return f"{module}.{name}" if module else name


def get_path_function(handler: Any, entry_point_group: str, archive_mode: bool = False) -> tuple[PathFunction, str]:
    """Resolve a handler's destination (or, with ``archive_mode``, archive) path function.

    Returns ``(function, qualified_name)``. If the archive function cannot be resolved for any reason, the
    destination function is used instead (compatible behaviour, including for an invalid archive parameter).
    Raises :class:`InvalidPathFunctionError` when the destination function cannot be resolved.
    """
    if archive_mode:
        try:
            return PathFunctionResolver(handler, entry_point_group, archive_mode=True).resolve()
        except InvalidPathFunctionError:
            pass
    return PathFunctionResolver(handler, entry_point_group).resolve()
