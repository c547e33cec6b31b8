"""Small general-purpose helpers: validators, regex helpers, a write-once mapping and context managers.

Nothing here performs I/O at import time; Jinja2 is imported only when a :class:`TemplateRenderer` is built.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import string
import sys
import types
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum, EnumMeta
from typing import Any

__all__ = [
    "CaptureStdIO",
    "LoggingContext",
    "Pattern",
    "TemplateRenderer",
    "WriteOnceOrderedDict",
    "discover_entry_points",
    "ensure_regex",
    "ensure_regex_list",
    "ensure_writeonceordereddict",
    "format_exception",
    "generate_id",
    "get_pattern_subgroups_from_string",
    "get_regex_subgroups_from_string",
    "is_function",
    "is_nonstring_iterable",
    "is_valid_email_address",
    "iter_public_attributes",
    "list_not_empty",
    "matches_regexes",
    "merge_dicts",
    "slice_sequence",
    "str_to_list",
    "validate_bool",
    "validate_callable",
    "validate_dict",
    "validate_int",
    "validate_mandatory_elements",
    "validate_mapping",
    "validate_membership",
    "validate_nonstring_iterable",
    "validate_regex",
    "validate_regexes",
    "validate_relative_path",
    "validate_relative_path_attr",
    "validate_string",
    "validate_type",
]

#: The type of a compiled regular expression.
Pattern = re.Pattern

#: A callable that returns ``None`` for an acceptable value and raises (TypeError/ValueError) otherwise.
Validator = Callable[[Any], None]

_EMAIL_REGEX = re.compile(r"^[A-Z0-9_.+-]+@(localhost|[A-Z0-9-]+\.[A-Z0-9-.]+)$", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------------------------------

def discover_entry_points(entry_point_group: str, working_set: Iterable[Any] | None = None) -> tuple[dict, list]:
    """Load every entry point of a group.

    :param entry_point_group: the entry-point group name, e.g. ``pipeline.handlers``
    :param working_set: optional iterable of entry-point objects (``name``, ``load()``, optionally ``group``) to use
        instead of the installed distributions (handy for tests)
    :return: ``(loaded, failed)`` where ``loaded`` maps names to loaded objects and ``failed`` lists the names whose
        loading raised :class:`ImportError` (any other exception propagates)
    """
    if working_set is None:
        import importlib.metadata

        candidates = importlib.metadata.entry_points(group=entry_point_group)
    else:
        candidates = [ep for ep in working_set if getattr(ep, "group", entry_point_group) == entry_point_group]

    loaded: dict[str, Any] = {}
    failed: list[str] = []
    for entry_point in candidates:
        if entry_point.name in loaded or entry_point.name in failed:
            continue
        try:
            loaded[entry_point.name] = entry_point.load()
        except ImportError:
            failed.append(entry_point.name)
    return loaded, failed


# ---------------------------------------------------------------------------------------------------------------------
# type / value validators
# ---------------------------------------------------------------------------------------------------------------------

def validate_type(t: type | tuple[type, ...]) -> Validator:
    """Return a validator raising :class:`TypeError` unless its argument is an instance of ``t``."""

    def validator(o: Any) -> None:
        if not isinstance(o, t):
            raise TypeError(f"object '{o}' must be of type '{t}'")

    return validator


validate_bool: Validator = validate_type(bool)
validate_dict: Validator = validate_type(dict)
validate_int: Validator = validate_type(int)
validate_mapping: Validator = validate_type(Mapping)
validate_string: Validator = validate_type(str)


def validate_callable(o: Any) -> None:
    """Raise :class:`TypeError` unless ``o`` is callable."""
    if not callable(o):
        raise TypeError(f"object '{o}' must be callable")


def is_nonstring_iterable(o: Any) -> bool:
    """True for iterables other than strings, bytes and mappings."""
    return isinstance(o, Iterable) and not isinstance(o, (str, bytes, bytearray, Mapping))


def validate_nonstring_iterable(o: Any) -> None:
    """Raise :class:`TypeError` unless ``o`` is a non-string, non-mapping iterable."""
    if not is_nonstring_iterable(o):
        raise TypeError(f"object '{o}' must be a non-string iterable")


def validate_membership(container: Any) -> Validator:
    """Return a validator checking that a value belongs to ``container``.

    When ``container`` is an Enum class (or member), a value that is not an Enum member at all raises
    :class:`TypeError`; any value not contained raises :class:`ValueError`.
    """
    enum_container = isinstance(container, (EnumMeta, Enum))

    def validator(o: Any) -> None:
        if enum_container and not isinstance(o, Enum):
            raise TypeError(f"object '{o}' must be an Enum member")
        if isinstance(container, EnumMeta):
            contained = isinstance(o, container)
        else:
            try:
                contained = o in container
            except TypeError:  # e.g. an unhashable value tested against a set
                contained = False
        if not contained:
            raise ValueError(f"value '{o}' must be a member of '{container}'")

    return validator


def validate_relative_path(path: str) -> None:
    """Raise :class:`ValueError` if ``path`` is absolute (``None`` gives the :class:`TypeError` of ``os.path``)."""
    if os.path.isabs(path):
        raise ValueError(f"path '{path}' must be a relative path")


def validate_relative_path_attr(path: str, attribute_name: str) -> None:
    """Like :func:`validate_relative_path`, with the attribute name in the error message."""
    try:
        validate_relative_path(path)
    except ValueError as e:
        raise ValueError(f"error validating '{attribute_name}': {e}") from e


def validate_mandatory_elements(mandatory: Iterable[Any], actual: Iterable[Any], name: str = "item") -> None:
    """Raise :class:`ValueError` listing the elements of ``mandatory`` missing from ``actual``."""
    actual = list(actual)
    missing = [element for element in mandatory if element not in actual]
    if missing:
        raise ValueError(f"missing mandatory {name}(s): {missing}")


# ---------------------------------------------------------------------------------------------------------------------
# regular expressions
# ---------------------------------------------------------------------------------------------------------------------

def validate_regex(o: Any) -> None:
    """Accept a compiled pattern or a string compiling to one; :class:`TypeError`/:class:`ValueError` otherwise."""
    if isinstance(o, Pattern):
        return
    if not isinstance(o, str):
        raise TypeError(f"regex '{o}' must be a string or compiled pattern")
    try:
        re.compile(o)
    except re.error as e:
        raise ValueError(f"invalid regex '{o}'. {format_exception(e)}") from e


def validate_regexes(o: Any) -> None:
    """Validate a non-string iterable of regexes."""
    validate_nonstring_iterable(o)
    for regex in o:
        validate_regex(regex)


def ensure_regex(o: str | Pattern) -> Pattern:
    """Return ``o`` compiled (the same object if it already is a pattern)."""
    validate_regex(o)
    return o if isinstance(o, Pattern) else re.compile(o)


def ensure_regex_list(o: Any) -> list[Pattern]:
    """Normalise ``None``, a single regex or an iterable of regexes into a list of compiled patterns."""
    if o is None:
        return []
    if isinstance(o, (str, Pattern)):
        return [ensure_regex(o)]
    validate_nonstring_iterable(o)
    return [ensure_regex(regex) for regex in o]


def matches_regexes(input_string: str, include_regexes: Any, exclude_regexes: Any = None) -> bool:
    """True if some include regex matches the start of ``input_string`` and no exclude regex does."""
    wanted, unwanted = ensure_regex_list(include_regexes), ensure_regex_list(exclude_regexes)
    return any(r.match(input_string) for r in wanted) and not any(r.match(input_string) for r in unwanted)


def get_regex_subgroups_from_string(string: str, regex: str | Pattern) -> dict[str, Any]:
    """Return the named groups of ``regex`` matched at the start of ``string`` (``{}`` if it does not match)."""
    match = ensure_regex(regex).match(string)
    return match.groupdict() if match else {}


#: the name used by handler code
get_pattern_subgroups_from_string = get_regex_subgroups_from_string


def is_valid_email_address(address: Any) -> re.Match | None:
    """Return a match object if ``address`` looks like an e-mail address, else ``None``."""
    if not isinstance(address, str):
        return None
    return _EMAIL_REGEX.match(address)


# ---------------------------------------------------------------------------------------------------------------------
# WriteOnceOrderedDict
# ---------------------------------------------------------------------------------------------------------------------

class WriteOnceOrderedDict(OrderedDict):
    """An :class:`OrderedDict` whose keys can be set exactly once and never removed or updated."""

    _READ_ONLY_MESSAGE = "updates or deletions not permitted on WriteOnceOrderedDict"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        if len(args) > 1:
            raise TypeError(f"expected at most 1 positional argument, got {len(args)}")
        if args:
            source = args[0]
            pairs = source.items() if isinstance(source, Mapping) else source
            for pair in pairs:
                key, value = pair
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __setitem__(self, key: Any, value: Any, *args: Any, **kwargs: Any) -> None:
        if key in self:
            raise RuntimeError(f"key '{key}' has already been set")
        super().__setitem__(key, value, *args, **kwargs)

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(self._READ_ONLY_MESSAGE)

    __delitem__ = _read_only
    __ior__ = _read_only
    clear = _read_only
    pop = _read_only
    popitem = _read_only
    setdefault = _read_only
    update = _read_only
    move_to_end = _read_only


def ensure_writeonceordereddict(o: Any, empty_on_fail: bool = True) -> WriteOnceOrderedDict:
    """Return ``o`` as a :class:`WriteOnceOrderedDict` (an empty one when conversion fails and ``empty_on_fail``)."""
    if isinstance(o, WriteOnceOrderedDict):
        return o
    try:
        return WriteOnceOrderedDict(o)
    except (TypeError, ValueError):
        if empty_on_fail:
            return WriteOnceOrderedDict()
        raise


# ---------------------------------------------------------------------------------------------------------------------
# misc helpers
# ---------------------------------------------------------------------------------------------------------------------

def format_exception(exception: BaseException) -> str:
    """Return ``"<ExceptionClassName>: <message>"``."""
    return f"{type(exception).__name__}: {exception}"


def generate_id() -> str:
    """Return a random 33 character identifier: a lowercase letter followed by a UUID4 hex string."""
    return secrets.choice(string.ascii_lowercase) + uuid.uuid4().hex


_FUNCTION_TYPES = (types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.BuiltinMethodType)


def is_function(o: Any) -> bool:
    """True for functions, lambdas and bound methods (not for classes or other callables)."""
    return isinstance(o, _FUNCTION_TYPES)


def _public_slot_names(cls: type) -> list[str]:
    slots = cls.__dict__.get("__slots__", ())
    if isinstance(slots, str):
        slots = (slots,)
    return list(slots)


def iter_public_attributes(instance: Any, ignored_attributes: Iterable[str] | None = None) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, value)`` for the public slots/instance attributes and all public properties of ``instance``.

    Slots are taken from the most-derived class only. Names are yielded in sorted order.
    """
    ignored = set(ignored_attributes or ())
    cls = type(instance)
    if "__slots__" in cls.__dict__:
        names = set(_public_slot_names(cls))
    else:
        names = set(getattr(instance, "__dict__", {}).keys())
    names.update(name for name in dir(cls) if isinstance(getattr(cls, name, None), property))
    for name in sorted(names):
        if name.startswith("_") or name in ignored:
            continue
        yield name, getattr(instance, name)


def merge_dicts(*dicts: Mapping) -> dict:
    """Merge mappings left to right into a new dict (an :class:`OrderedDict` if the first is one).

    Nested mappings are merged recursively and lists are concatenated; other values are replaced by later ones.
    QUIRK kept for compatibility: a list in the first argument is extended in place.
    """
    if not dicts:
        return {}
    result: dict = OrderedDict() if isinstance(dicts[0], OrderedDict) else {}
    for mapping in dicts:
        validate_mapping(mapping)
        for key, value in mapping.items():
            current = result.get(key)
            if isinstance(current, Mapping) and isinstance(value, Mapping):
                result[key] = merge_dicts(current, value)
            elif isinstance(current, list) and isinstance(value, list):
                current.extend(value)
            else:
                result[key] = value
    return result


def slice_sequence(sequence: Any, slice_size: int) -> list:
    """Split ``sequence`` into consecutive slices of at most ``slice_size`` elements."""
    validate_int(slice_size)
    if slice_size < 1:
        raise ValueError("slice_size must be a positive integer")
    return [sequence[i:i + slice_size] for i in range(0, len(sequence), slice_size)]


def str_to_list(s: Any, delimiter: str = ",", strip_method: str | None = "strip", include_empty: bool = False) -> list:
    """Split a delimited string into a list, stripping elements and dropping empty ones.

    A list argument is returned unchanged (the same object). ``strip_method`` is ``'strip'``, ``'lstrip'`` or
    ``'rstrip'``; any other value disables stripping.
    """
    if isinstance(s, list):
        return s
    elements = s.split(delimiter)
    if strip_method in ("strip", "lstrip", "rstrip"):
        elements = [getattr(element, strip_method)() for element in elements]
    if not include_empty:
        elements = [element for element in elements if element]
    return elements


def list_not_empty(lst: Iterable[Any]) -> bool:
    """False for an empty list or one holding only ``None``."""
    return any(element is not None for element in lst)


# ---------------------------------------------------------------------------------------------------------------------
# context managers and rendering
# ---------------------------------------------------------------------------------------------------------------------

class CaptureStdIO:
    """Context manager capturing ``sys.stdout``/``sys.stderr`` into two lists of lines (filled on exit)."""

    def __init__(self, merge_streams: bool = False) -> None:
        self.merge_streams = merge_streams
        self._stdout_lines: list[str] = []
        self._stderr_lines: list[str] = []

    def __enter__(self) -> tuple[list[str], list[str]]:
        self._saved = (sys.stdout, sys.stderr)
        self._stdout_buffer = io.StringIO()
        self._stderr_buffer = self._stdout_buffer if self.merge_streams else io.StringIO()
        sys.stdout = self._stdout_buffer
        sys.stderr = self._stderr_buffer
        return self._stdout_lines, self._stderr_lines

    def __exit__(self, *exc_info: Any) -> None:
        sys.stdout, sys.stderr = self._saved
        self._stdout_lines.extend(self._stdout_buffer.getvalue().splitlines())
        if not self.merge_streams:
            self._stderr_lines.extend(self._stderr_buffer.getvalue().splitlines())


class LoggingContext:
    """Temporarily change a logger's level, its handlers' format and/or add a handler."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter, level: int | str | None = None,
                 format_: str | None = None, handler: logging.Handler | None = None, close: bool = True) -> None:
        while isinstance(logger, logging.LoggerAdapter):
            logger = logger.logger
        self.logger = logger
        self.level = level
        self.format_ = format_
        self.handler = handler
        self.close = close
        self._old_level: int | None = None
        self._old_formatters: list[tuple[logging.Handler, logging.Formatter | None]] = []

    def __enter__(self) -> LoggingContext:
        if self.level is not None:
            self._old_level = self.logger.level
            self.logger.setLevel(self.level)
        if self.handler is not None:
            self.logger.addHandler(self.handler)
        if self.format_ is not None:
            formatter = logging.Formatter(self.format_)
            for handler in self.logger.handlers:
                self._old_formatters.append((handler, handler.formatter))
                handler.setFormatter(formatter)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for handler, formatter in self._old_formatters:
            handler.setFormatter(formatter)
        self._old_formatters = []
        if self._old_level is not None:
            self.logger.setLevel(self._old_level)
        if self.handler is not None:
            self.logger.removeHandler(self.handler)
            if self.close:
                self.handler.close()


class TemplateRenderer:
    """Render Jinja2 templates shipped inside a Python package.

    Autoescaping is enabled for templates whose names end in ``.html``, ``.htm``, ``.xml`` or ``.html.j2``, so that
    untrusted values such as file names cannot inject markup into HTML notifications.
    """

    def __init__(self, package: str = "aodncore.pipeline", package_path: str = "templates") -> None:
        import jinja2

        self.package = package
        self.package_path = package_path
        self.environment = jinja2.Environment(
            loader=jinja2.PackageLoader(package, package_path),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml", "html.j2"),
                                                default_for_string=False),
        )

    def render(self, name: str, values: Mapping[str, Any]) -> str:
        """Render template ``name`` with the mapping ``values``."""
        validate_mapping(values)
        return self.environment.get_template(name).render(dict(values))
