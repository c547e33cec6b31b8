"""One parsed CF standard-name table per process, shared by every checker built inside a run scope.

compliance-checker parses its ~4 MB standard-name XML each time a CF checker is instantiated (twice per
``run_all``: once to ask the checker which dataset types it supports, once to run it), and looks names up by
scanning Python lists and rebuilding XPath node lists. Inside a run scope, :class:`SharedStandardNameTable`
(installed as ``compliance_checker.cf.util.StandardNameTable``) instead:

* parses each table source once per process and gives every instance the same parsed tree, with its own copies
  of the name lists (the IOOS checker extends its instance's list);
* answers ``table[name]`` with the same algorithm but reuses the ``entry`` / ``alias`` node lists of the tree;
* lets the CF 1.11 temperature-name set be derived once per parsed tree instead of once per checker instance;
* answers ``is_dimensionless_standard_name(tree, name)`` from an index of the tree's ``entry`` elements by id
  instead of an ElementPath search of the whole tree (compliance-checker's ``lru_cache`` on it is lost in every
  capped child process, where each search costs milliseconds).

Outside a scope every instance is built and answers exactly as compliance-checker's own class does. The parsed
state is plain Python data: a process forked after :func:`aodncore.checks.ccfast.warm_up` inherits it.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

from .scope import scope_active

__all__ = ["entry_index", "install", "shared_table_sources", "warm_shared_tables"]

_install_lock = threading.Lock()
_state_lock = threading.Lock()
_shared_states: dict[tuple, dict[str, Any]] = {}
#: id(parsed tree) -> the derived-data dict of its shared state (which keeps the tree alive)
_derived_by_root: dict[int, dict[str, Any]] = {}
_installed = False


def _source_key(cached_location: str | None) -> tuple:
    env_location = os.environ.get("CF_STANDARD_NAME_TABLE")
    source = cached_location or (env_location if env_location and os.path.exists(env_location) else None)
    try:
        stat = os.stat(source) if source else None
    except OSError:
        stat = None
    stamp = (stat.st_mtime_ns, stat.st_size) if stat is not None else None
    return cached_location, env_location, stamp


def shared_table_sources() -> list[tuple]:
    """The table sources parsed and shared in this process (for tests and diagnostics)."""
    return list(_shared_states)


def _make_shared_class(original: type) -> type:
    class SharedStandardNameTable(original):
        _aodncore_shared = True

        def __init__(self, cached_location=None):
            if not scope_active():
                super().__init__(cached_location)
                return
            key = _source_key(cached_location)
            state = _shared_states.get(key)
            if state is None:
                super().__init__(cached_location)
                state = dict(self.__dict__)
                # derived, read-only data shared by every instance built from this parse
                state["_aodncore_nodes"] = {}
                state["_aodncore_derived"] = {"root": state["_root"]}
                with _state_lock:
                    if key not in _shared_states:
                        _shared_states[key] = state
                        _derived_by_root[id(state["_root"])] = state["_aodncore_derived"]
                    state = _shared_states[key]
            self.__dict__.update(state)
            for name, value in state.items():
                if isinstance(value, list):
                    self.__dict__[name] = list(value)

        def _aodncore_node_list(self, tag: str) -> list:
            nodes = self.__dict__["_aodncore_nodes"]
            found = nodes.get(tag)
            if found is None:
                found = nodes[tag] = self._root.xpath(tag)
            return found

        def __getitem__(self, key):
            if not scope_active() or "_aodncore_nodes" not in self.__dict__:
                return super().__getitem__(key)
            names, aliases = self._names, self._aliases
            if not (key in names or key in aliases):
                return super().__getitem__(key)  # raises compliance-checker's own KeyError
            name = key
            if key in aliases:
                entry_ids = self._aodncore_node_list("alias")[aliases.index(key)].xpath("entry_id")
                if len(entry_ids) != 1:
                    return super().__getitem__(key)  # raises compliance-checker's own inconsistency error
                name = entry_ids[0].text
                if name not in names:
                    return super().__getitem__(key)  # raises compliance-checker's own KeyError
            return self.NameEntry(self._aodncore_node_list("entry")[names.index(name)])

    SharedStandardNameTable.__name__ = original.__name__
    SharedStandardNameTable.__qualname__ = original.__qualname__
    SharedStandardNameTable.__module__ = original.__module__
    return SharedStandardNameTable


def _shared_temperature_names(original):
    """Wrap CF 1.11's ``_temperature_standard_names(table)`` (an ``lru_cache`` keyed by table *instance*)."""
    compute = getattr(original, "__wrapped__", original)

    @functools.wraps(compute)
    def _temperature_standard_names(standard_name_table):
        derived = getattr(standard_name_table, "__dict__", {}).get("_aodncore_derived")
        if derived is None or not scope_active():
            return original(standard_name_table)
        names = derived.get("temperature_standard_names")
        if names is None:
            names = derived["temperature_standard_names"] = compute(standard_name_table)
        return names

    _temperature_standard_names._aodncore_ccfast_original = original
    return _temperature_standard_names


def entry_index(root: Any) -> dict[str, Any] | None:
    """``{standard name: first entry element with that id}`` of a shared parsed tree (None for other trees)."""
    derived = _derived_by_root.get(id(root))
    if derived is None or derived.get("root") is not root:
        return None
    index = derived.get("entry_index")
    if index is None:
        index = {}
        for entry in root.iterdescendants("entry"):  # what ".//entry" searches, in document order
            index.setdefault(entry.get("id"), entry)
        derived["entry_index"] = index
    return index


def _indexed_dimensionless(original):
    """Wrap ``is_dimensionless_standard_name(standard_name_table, standard_name)`` (its first argument is the
    parsed tree): same answer, looked up in :func:`entry_index` inside a run scope."""

    @functools.wraps(getattr(original, "__wrapped__", original))
    def is_dimensionless_standard_name(standard_name_table, standard_name):
        if not scope_active() or not isinstance(standard_name, str) or "'" in standard_name:
            return original(standard_name_table, standard_name)
        index = entry_index(standard_name_table)
        if index is None:
            return original(standard_name_table, standard_name)
        found = index.get(standard_name)
        if found is None:
            return False
        from compliance_checker.cf import util as cf_util

        return cf_util.Unit(found.find("canonical_units").text).is_dimensionless()

    is_dimensionless_standard_name._aodncore_ccfast_original = original
    return is_dimensionless_standard_name


def warm_shared_tables() -> None:
    """Build the derived data of every shared table now (before forking, so that children inherit it)."""
    for state in list(_shared_states.values()):
        root = state["_root"]
        entry_index(root)
        nodes = state["_aodncore_nodes"]
        for tag in ("entry", "alias"):
            if tag not in nodes:
                nodes[tag] = root.xpath(tag)


def install() -> None:
    """Install the shared table class (and the CF 1.11 helper) into compliance-checker, once per process."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        from compliance_checker.cf import cf_1_11
        from compliance_checker.cf import util as cf_util

        if not getattr(cf_util.StandardNameTable, "_aodncore_shared", False):
            cf_util.StandardNameTable = _make_shared_class(cf_util.StandardNameTable)
        helper = cf_1_11._temperature_standard_names
        if getattr(helper, "_aodncore_ccfast_original", None) is None:
            cf_1_11._temperature_standard_names = _shared_temperature_names(helper)
        dimensionless = cf_util.is_dimensionless_standard_name
        if getattr(dimensionless, "_aodncore_ccfast_original", None) is None:
            cf_util.is_dimensionless_standard_name = _indexed_dimensionless(dimensionless)
        _installed = True


def _renew_locks_in_child() -> None:
    global _install_lock, _state_lock
    _install_lock = threading.Lock()
    _state_lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_locks_in_child)
