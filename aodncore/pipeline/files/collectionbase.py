"""`PipelineFileCollectionBase`: the insertion-ordered set of files with filters, bulk setters and validation."""

from __future__ import annotations

import abc
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableSet
from typing import Any

from aodncore.pipeline.exceptions import AttributeValidationError, DuplicatePipelineFileError
from aodncore.util.external import IndexedSet
from aodncore.util.misc import (
    Validator,
    ensure_regex_list,
    matches_regexes,
    validate_bool,
    validate_int,
    validate_nonstring_iterable,
    validate_regexes,
)


def _attribute_names(names: str | Iterable[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _already_used_error(attribute: str, value: Any, owner_name: str | None) -> AttributeValidationError:
    return AttributeValidationError(f"{attribute} '{value}' is already used by '{owner_name}' in the collection")


class PipelineFileCollectionBase(MutableSet, abc.ABC):
    """An insertion-ordered set of files with filtering, bulk-setting and validation helpers.

    Subclasses provide :attr:`member_class`, :attr:`member_validator`, :attr:`member_from_string_method` and
    :attr:`unique_attributes`.
    """

    def __init__(self, data: Any = None, validate_unique: bool = True) -> None:
        self._s: IndexedSet = IndexedSet()
        if data is None:
            return
        elements = [data] if isinstance(data, (self.member_class, str)) else data
        for element in elements:
            self.add(element, validate_unique=validate_unique)

    # -- subclass hooks ----------------------------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def member_class(self) -> type:
        """The class of the members."""

    @property
    @abc.abstractmethod
    def member_validator(self) -> Callable[[Any], None]:
        """Validator accepting a member or a string."""

    @property
    @abc.abstractmethod
    def member_from_string_method(self) -> Callable[[str], Any]:
        """Bound method finding a member from a string (path)."""

    @property
    @abc.abstractmethod
    def unique_attributes(self) -> tuple[str, ...]:
        """Attributes whose non-None values must be unique within the collection."""

    def _member_from_string(self, value: str, **kwargs: Any) -> Any:
        return self.member_class(value, **kwargs)

    # -- container protocol ------------------------------------------------------------------------------------------

    def __contains__(self, element: object) -> bool:
        if isinstance(element, str):
            element = self.member_from_string_method(element)
            if element is None:
                return False
        return element in self._s

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)(self._s[index])
        return self._s[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._s)

    def __len__(self) -> int:
        return len(self._s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._s)!r})"

    __hash__ = None  # mutable collection

    @classmethod
    def _from_iterable(cls, iterable: Iterable[Any]) -> PipelineFileCollectionBase:
        # used by the Set mixins (``&``, ``|``, ``-``, ``^``): equal elements are set-merged, not duplicates
        collection = cls()
        for element in iterable:
            if element not in collection._s:
                collection.add(element)
        return collection

    def __ior__(self, other: Iterable[Any]) -> PipelineFileCollectionBase:
        for element in other:
            if element not in self._s:
                self.add(element)
        return self

    # -- mutation ----------------------------------------------------------------------------------------------------

    def add(self, pipeline_file: Any, overwrite: bool = False, validate_unique: bool = True, **kwargs: Any) -> bool:
        """Add a member (or a string converted with the member class).

        :raises DuplicatePipelineFileError: an equal member exists and ``overwrite`` is False
        :raises AttributeValidationError: a unique attribute value clashes (when ``validate_unique``)
        :return: True
        """
        self.member_validator(pipeline_file)
        validate_bool(overwrite)
        if isinstance(pipeline_file, str):
            pipeline_file = self._member_from_string(pipeline_file, **kwargs)

        if pipeline_file in self._s:
            if not overwrite:
                raise DuplicatePipelineFileError(f"{pipeline_file.name} already in collection")
            self._s.remove(pipeline_file)

        if validate_unique:
            candidate_values = {name: getattr(pipeline_file, name) for name in self.unique_attributes}
            for name, value in candidate_values.items():
                if value is not None:
                    self.validate_unique_attribute_value(name, value)

        self._s.add(pipeline_file)
        return True

    def append(self, pipeline_file: Any, *args: Any, **kwargs: Any) -> bool:
        """Alias of :meth:`add`."""
        return self.add(pipeline_file, *args, **kwargs)

    def discard(self, pipeline_file: Any) -> bool:
        """Remove a member (or the member matching a path string); return whether it was present."""
        self.member_validator(pipeline_file)
        if isinstance(pipeline_file, str):
            pipeline_file = self.member_from_string_method(pipeline_file)
            if pipeline_file is None:
                return False
        if pipeline_file in self._s:
            self._s.remove(pipeline_file)
            return True
        return False

    def update(self, sequence: Iterable[Any], overwrite: bool = False, validate_unique: bool = True) -> bool:
        """Add every element of ``sequence``; return True if anything was added."""
        validate_nonstring_iterable(sequence)
        results = [self.add(element, overwrite=overwrite, validate_unique=validate_unique) for element in sequence]
        return any(results)

    # -- set operations ----------------------------------------------------------------------------------------------

    def difference(self, sequence: Iterable[Any]) -> PipelineFileCollectionBase:
        """New collection of the members not in ``sequence``."""
        sequence = sequence if isinstance(sequence, PipelineFileCollectionBase) else list(sequence)
        return type(self)(element for element in self._s if element not in sequence)

    def issubset(self, sequence: Iterable[Any]) -> bool:
        sequence = sequence if isinstance(sequence, PipelineFileCollectionBase) else list(sequence)
        return all(element in sequence for element in self._s)

    def issuperset(self, sequence: Iterable[Any]) -> bool:
        return all(element in self for element in sequence)

    def union(self, sequence: Iterable[Any]) -> PipelineFileCollectionBase:
        """New collection of the members of both (``sequence`` must hold member instances only)."""
        sequence = list(sequence)
        for element in sequence:
            if not isinstance(element, self.member_class):
                raise TypeError(f"object '{element}' must be of type '{self.member_class}'")
        result = type(self)(self._s)
        for element in sequence:
            if element not in result:
                result.add(element)
        return result

    # -- look-ups ----------------------------------------------------------------------------------------------------

    def get_pipelinefile_from_dest_path(self, dest_path: str) -> Any:
        """First member whose ``dest_path`` equals ``dest_path``, else None."""
        return next((element for element in self._s if element.dest_path == dest_path), None)

    def get_pipelinefile_from_src_path(self, src_path: str) -> Any:
        """First member whose ``local_path`` equals ``src_path``, else None."""
        return next((element for element in self._s if element.local_path == src_path), None)

    def get_slices(self, slice_size: int) -> list[PipelineFileCollectionBase]:
        """Consecutive sub-collections of at most ``slice_size`` members."""
        validate_int(slice_size)
        if slice_size < 1:
            raise ValueError("slice_size must be a positive integer")
        return [self[i:i + slice_size] for i in range(0, len(self._s), slice_size)]

    def get_attribute_list(self, attribute: str) -> list[Any]:
        """Values of ``attribute`` for every member, in order."""
        return [getattr(element, attribute) for element in self._s]

    def get_table_data(self) -> tuple[list[str], list[OrderedDict]]:
        """``(columns, rows)`` with one :class:`OrderedDict` per member (used for notification tables)."""
        rows = [OrderedDict(dict(element)) for element in self._s]
        columns = list(rows[0].keys()) if rows else []
        return columns, rows

    # -- filters -----------------------------------------------------------------------------------------------------

    def _filtered(self, predicate: Callable[[Any], bool]) -> PipelineFileCollectionBase:
        return type(self)((element for element in self._s if predicate(element)), validate_unique=False)

    def filter_by_attribute_id(self, attribute: str, value: Any) -> PipelineFileCollectionBase:
        """Members whose attribute *is* ``value`` (identity; for enums, None and bools)."""
        return self._filtered(lambda element: getattr(element, attribute) is value)

    def filter_by_attribute_id_not(self, attribute: str, value: Any) -> PipelineFileCollectionBase:
        """Members whose attribute is not ``value`` (identity)."""
        return self._filtered(lambda element: getattr(element, attribute) is not value)

    def filter_by_attribute_value(self, attribute: str, value: Any) -> PipelineFileCollectionBase:
        """Members whose attribute equals ``value``."""
        return self._filtered(lambda element: getattr(element, attribute) == value)

    def filter_by_attribute_regexes(self, attribute: str, regexes: Any) -> PipelineFileCollectionBase:
        """Members whose attribute value matches (``re.match``) any of ``regexes``."""
        patterns = ensure_regex_list(regexes)
        return self._filtered(lambda element: any(p.match(getattr(element, attribute)) for p in patterns))

    filter_by_attribute_regex = filter_by_attribute_regexes

    def filter_by_bool_attribute(self, attribute: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: bool(getattr(element, attribute)))

    def filter_by_bool_attribute_not(self, attribute: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: not getattr(element, attribute))

    def filter_by_bool_attributes_and(self, *attributes: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: all(getattr(element, a) for a in attributes))

    def filter_by_bool_attributes_and_not(self, true_attributes: str | Iterable[str],
                                          false_attributes: str | Iterable[str]) -> PipelineFileCollectionBase:
        """Members with all of ``true_attributes`` truthy and none of ``false_attributes`` truthy."""
        trues = _attribute_names(true_attributes)
        falses = _attribute_names(false_attributes)
        return self._filtered(lambda element: all(getattr(element, a) for a in trues)
                              and not any(getattr(element, a) for a in falses))

    def filter_by_bool_attributes_not(self, *attributes: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: not any(getattr(element, a) for a in attributes))

    def filter_by_bool_attributes_or(self, *attributes: str) -> PipelineFileCollectionBase:
        return self._filtered(lambda element: any(getattr(element, a) for a in attributes))

    # -- validation --------------------------------------------------------------------------------------------------

    def validate_unique_attribute_value(self, attribute: str, value: Any) -> None:
        """Raise :class:`AttributeValidationError` if any member already has ``attribute == value``."""
        for element in self._s:
            if getattr(element, attribute) == value:
                raise _already_used_error(attribute, value, element.name)

    def validate_attribute_value_matches_regexes(self, attribute: str, include_regexes: Iterable[Any]) -> None:
        """Raise :class:`AttributeValidationError` listing members whose attribute matches none of the regexes."""
        validate_regexes(include_regexes)
        patterns = ensure_regex_list(include_regexes)
        mismatches = {}
        for element in self._s:
            value = getattr(element, attribute)
            if not isinstance(value, str) or not matches_regexes(value, patterns):
                mismatches[element.name] = value
        if mismatches:
            raise AttributeValidationError(
                f"invalid '{attribute}' values (must match one of {list(include_regexes)}): {mismatches}")

    def validate_attribute_uniqueness(self, attribute: str) -> None:
        """Raise :class:`AttributeValidationError` if a non-None value of ``attribute`` is shared by members."""
        counts = Counter(value for value in self.get_attribute_list(attribute) if value is not None)
        duplicates = [value for value, count in counts.items() if count > 1]
        if duplicates:
            raise AttributeValidationError(f"duplicate '{attribute}' values found: {duplicates}")


def _as_collection(o: Any, collection_class: type, validator: Validator) -> Any:
    """Validate ``o`` and wrap a single file in a new ``collection_class``; a collection is returned as is."""
    validator(o)
    if isinstance(o, collection_class):
        return o
    return collection_class(o)
