"""Per-dataset memoisation of compliance-checker's derived facts (``compliance_checker.cf.util`` and friends).

compliance-checker's CF checks re-derive the same facts about a dataset hundreds of times per file (e.g.
``get_auxiliary_coordinate_variables`` ~400 calls, each a pass over every variable's attributes through the
netCDF-C library). :func:`install` replaces the functions named in :data:`MEMOISED_FUNCTIONS` and the checker
helper methods in :data:`MEMOISED_CHECKER_METHODS` by wrappers that, inside a run scope (:mod:`.scope`), compute
each answer once per (function, arguments) and hand every caller its own copy; outside a scope they call the
original directly.

What makes this exact:

* every memoised function is a pure function of the (read-only) dataset and its other arguments — it reads
  attributes, dimensions and names, never variable data, and has no side effect other than ``warnings.warn``
  (warnings are not part of check results; a memoised call warns once instead of each time);
* answers are copied on the way out (lists, sets and dicts, recursively), because callers extend and edit them;
* a call that raises is not memoised (the next call raises afresh);
* the memo lives in the scope of one dataset's run and is discarded when the scope closes.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from .scope import current_memo

__all__ = ["MEMOISED_CHECKER_METHODS", "MEMOISED_FUNCTIONS", "copy_answer", "install", "installed", "memoised",
           "memoised_method"]

#: ``compliance_checker.cf.util`` functions answered once per run scope (all pure functions of the dataset)
MEMOISED_FUNCTIONS: tuple[str, ...] = (
    # variable classification
    "is_unitless", "is_geophysical", "get_auxiliary_coordinate_variables", "get_forecast_metadata_variables",
    "get_cell_boundary_map", "get_cell_boundary_variables", "get_bounds_variables", "get_geophysical_variables",
    "get_z_variable", "get_z_variables", "get_lat_variable", "get_latitude_variables", "get_true_latitude_variables",
    "get_lon_variable", "get_longitude_variables", "get_true_longitude_variables", "get_platform_variables",
    "get_instrument_variables", "get_time_variable", "get_time_variables", "get_axis_variables",
    "get_climatology_variable", "_find_standard_name_modifier_variables", "get_flag_variables",
    "get_grid_mapping_variables", "get_axis_map", "is_coordinate_variable", "is_compression_coordinate",
    "coordinate_dimension_matrix", "find_coord_vars",
    # discrete sampling geometries and grids
    "is_dataset_valid_ragged_array_repr_featureType", "is_variable_valid_ragged_array_repr_featureType",
    "is_point", "is_timeseries", "is_multi_timeseries_orthogonal", "is_multi_timeseries_incomplete", "isTimeSeries",
    "is_cf_trajectory", "is_single_trajectory", "isTrajectory", "is_profile_orthogonal", "is_profile_incomplete",
    "isProfile", "is_timeseries_profile_single_station", "is_timeseries_profile_multi_station",
    "is_timeseries_profile_single_ortho_time", "is_timeseries_profile_multi_ortho_time",
    "is_timeseries_profile_ortho_depth", "is_timeseries_profile_incomplete", "isTimeSeriesProfile",
    "is_trajectory_profile_orthogonal", "is_trajectory_profile_incomplete", "isTrajectoryProfile",
    "is_2d_regular_grid", "is_2d_static_grid", "is_3d_regular_grid", "is_3d_static_grid", "is_mapped_grid",
    "is_reduced_grid", "guess_feature_type",
    # units (pure functions of strings)
    "units_convertible", "units_known", "units_temporal",
)

#: modules that bind some of those functions under their own names (``from compliance_checker.cf.util import …``)
_REBINDING_MODULES = ("compliance_checker.cf.cf_1_8", "compliance_checker.cf.cf_1_9", "compliance_checker.cf.cf_1_11")

_install_lock = threading.Lock()
_installed = False
_MISSING = object()


def copy_answer(value: Any) -> Any:
    """A copy of a memoised answer that a caller may mutate: containers are rebuilt, leaves are shared.

    Leaves (names, tuples of names, netCDF4 ``Variable`` objects, booleans) are immutable or are the dataset's own
    objects, exactly what the original function would have returned.
    """
    if isinstance(value, list):
        return [copy_answer(item) for item in value]
    if isinstance(value, dict):
        duplicate = value.copy()  # keeps the type (defaultdict and its factory, OrderedDict)
        for key, item in value.items():
            if isinstance(item, (list, dict, set)):
                duplicate[key] = copy_answer(item)
        return duplicate
    if isinstance(value, set):
        return set(value)
    return value


def memoised(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``function`` so that inside a run scope each distinct call is computed once and copied out."""
    if getattr(function, "_aodncore_ccfast_original", None) is not None:
        return function

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        memo = current_memo()
        if memo is None:
            return function(*args, **kwargs)
        # argument types are part of the key: 1, 1.0, True and numpy scalars are equal but may be answered apart
        key = (name, args, tuple(map(type, args)))
        if kwargs:
            key += (tuple(kwargs.items()), tuple(map(type, kwargs.values())))
        try:
            answer = memo.get(key, _MISSING)
        except TypeError:  # an unhashable argument: compute as usual
            return function(*args, **kwargs)
        if answer is _MISSING:
            answer = function(*args, **kwargs)
            memo[key] = answer
        return copy_answer(answer)

    wrapper._aodncore_ccfast_original = function
    return wrapper


#: ``CFBaseCheck`` helper methods answered once per (checker, dataset) inside a run scope. Each keys its own cache
#: by ``ds.__str__()`` — the whole CDL-like description of the file, about 1 ms to build — and is called ~60 times
#: per file. All but ``_find_coord_vars`` rebuild their list on every call (their cache test never hits), so callers
#: get a copy of the first answer; ``_find_coord_vars`` returns one shared list (``get_coordinate_variables``'s
#: ``lru_cache`` entry), so it keeps returning that same object. ``_find_clim_vars`` (appends on every call) is
#: left alone.
MEMOISED_CHECKER_METHODS: dict[str, bool] = {
    "_find_coord_vars": False,  # False: hand out the same object, as compliance-checker does
    "_find_aux_coord_vars": True,  # True: hand out copies
    "_find_boundary_vars": True,
    "_find_ancillary_vars": True,
    "_find_geophysical_vars": True,
    "_find_metadata_vars": True,
}


def memoised_method(name: str, original: Callable[..., Any], copies: bool) -> Callable[..., Any]:
    """Wrap a ``CFBaseCheck._find_*`` method: inside a run scope, compute once per (checker, dataset)."""
    if getattr(original, "_aodncore_ccfast_original", None) is not None:
        return original
    tag = f"CFBaseCheck.{name}"

    @functools.wraps(original)
    def method(self, ds, refresh=False):
        memo = current_memo()
        if memo is None:
            return original(self, ds, refresh)
        key = (tag, self, ds)
        try:
            answer = memo.get(key, _MISSING)
        except TypeError:  # an unhashable dataset object: compute as usual
            return original(self, ds, refresh)
        if answer is _MISSING:
            answer = original(self, ds, refresh)
            if not copies:
                memo[key] = answer
                return answer
            memo[key] = answer = copy_answer(answer)
        return copy_answer(answer) if copies else answer

    method._aodncore_ccfast_original = original
    return method


def install() -> None:
    """Install the memoising wrappers into compliance-checker's modules (once per process, idempotent)."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        import importlib

        from compliance_checker.cf import cf_base
        from compliance_checker.cf import util as cf_util

        wrappers: dict[str, Callable[..., Any]] = {}
        for name in MEMOISED_FUNCTIONS:
            original = getattr(cf_util, name)
            wrappers[name] = memoised(name, original)
            setattr(cf_util, name, wrappers[name])
        for module_name in _REBINDING_MODULES:
            module = importlib.import_module(module_name)
            for name, wrapper in wrappers.items():
                bound = module.__dict__.get(name)
                if bound is not None and bound is wrapper._aodncore_ccfast_original:
                    setattr(module, name, wrapper)

        for name, copies in MEMOISED_CHECKER_METHODS.items():
            original = cf_base.CFBaseCheck.__dict__[name]
            setattr(cf_base.CFBaseCheck, name, memoised_method(name, original, copies))
        _installed = True


def installed() -> bool:
    """True once :func:`install` has run in this process."""
    return _installed


def _renew_lock_in_child() -> None:
    global _install_lock
    _install_lock = threading.Lock()


os.register_at_fork(after_in_child=_renew_lock_in_child)
