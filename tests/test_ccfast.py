"""The compliance-checker fast path's machinery: run scopes, memo copies, the shared standard-name table, version
pins and off switches, warm-up and fork. Result identity over real and generated files: test_ccfast_identity.py."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import warnings

import netCDF4
import numpy as np
import pytest
from ccfast_helpers import comparable, fast_run_all, plain_run_all
from compliance_checker.cf import util as cfutil
from compliance_checker.cf.cf_1_6 import CF1_6Check
from compliance_checker.runner import CheckSuite, ComplianceChecker

from aodncore.checks import ccfast
from aodncore.checks.ccfast import memo, nametable, scope, versions
from aodncore.pipeline.schema import validate_check_params
from aodncore.pipeline.steps.check import ComplianceCheckerCheckRunner

SRSALT = "IMOS_SRSALT_PT_20160919T020500Z_BASS3A_FV01_SBE26d49m.nc"
MET_BAD = "IMOS_ANMN-NRS_MT_20161109T231108Z_NRSMAI_FV00_NRSMAI-Surface-21-2016-11-MET-BAD.nc"


@pytest.fixture(autouse=True)
def installed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ccfast.ENV_SWITCH, raising=False)
    assert ccfast.install()
    CheckSuite.load_all_available_checkers()


def _write(path, coordinates: str, axis_var: str) -> str:
    """A small file whose classification depends on ``coordinates`` and on which variable carries ``axis``."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("obs", 3)
        for name in ("a", "b", "c", "temp"):
            var = ds.createVariable(name, "f4", ("obs",))
            var[:] = np.arange(3)
        ds["a"].standard_name = "latitude"
        ds["a"].units = "degrees_north"
        ds["b"].units = "days since 2000-01-01"
        ds["temp"].coordinates = coordinates
        ds["temp"].units = "K"
        ds[axis_var].axis = "T"
    return str(path)


# ---------------------------------------------------------------------------------------------------------------
# scope and memo
# ---------------------------------------------------------------------------------------------------------------

def test_helpers_are_wrapped_and_pass_through_outside_a_scope(tmp_path):
    path = _write(tmp_path / "a.nc", "a b", "b")
    for name in memo.MEMOISED_FUNCTIONS:
        assert getattr(getattr(cfutil, name), "_aodncore_ccfast_original", None) is not None, name
    assert scope.current_memo() is None
    with netCDF4.Dataset(path) as ds:
        original = cfutil.get_auxiliary_coordinate_variables._aodncore_ccfast_original
        first = cfutil.get_auxiliary_coordinate_variables(ds)
        assert first == original(ds) == ["a", "b"]
        assert cfutil.get_auxiliary_coordinate_variables(ds) is not first


def test_memoised_answers_are_copies_callers_may_mutate(tmp_path):
    path = _write(tmp_path / "a.nc", "a b", "b")
    with netCDF4.Dataset(path) as ds, ccfast.run_scope() as run:
        aux = cfutil.get_auxiliary_coordinate_variables(ds)
        aux.append("junk")
        assert cfutil.get_auxiliary_coordinate_variables(ds) == ["a", "b"]
        axis_map = cfutil.get_axis_map(ds, "temp")
        axis_map["T"].append("junk")
        axis_map["new"] = ["x"]
        again = cfutil.get_axis_map(ds, "temp")
        assert dict(again) == {"Y": ["a"], "T": ["b"]} and type(again) is type(axis_map)
        assert again.default_factory is list
        times = cfutil.get_time_variables(ds)
        times.add("junk")
        assert cfutil.get_time_variables(ds) == {"b"}
        assert len(run.memo) >= 3
    assert run.memo == {} and scope.current_memo() is None


def test_two_datasets_never_share_answers(tmp_path):
    first = _write(tmp_path / "first.nc", "a b", "b")
    second = _write(tmp_path / "second.nc", "a", "c")  # same structure, other facts
    with netCDF4.Dataset(first) as a, netCDF4.Dataset(second) as b, ccfast.run_scope():
        assert cfutil.get_auxiliary_coordinate_variables(a) == ["a", "b"]
        assert cfutil.get_auxiliary_coordinate_variables(b) == ["a", "c"]
        assert cfutil.get_time_variable(a) == "b" and cfutil.get_time_variable(b) == "c"
    # and one run after the other in one process, on the whole CF suite
    for path in (first, second, first):
        assert fast_run_all(path, ["cf:1.6"])[1] == plain_run_all(path, ["cf:1.6"])[1]


def test_arguments_of_equal_value_but_other_type_are_answered_apart():
    with ccfast.run_scope() as run:
        assert cfutil.units_convertible("m", "km") is True
        cfutil.units_convertible(np.str_("m"), "km")
        assert len({key for key in run.memo if key[0] == "units_convertible"}) == 2


def test_raising_calls_are_not_memoised(tmp_path):
    path = _write(tmp_path / "a.nc", "a", "b")
    with netCDF4.Dataset(path) as ds, ccfast.run_scope() as run:
        for _ in range(2):
            with pytest.raises(KeyError):
                cfutil.is_geophysical(ds, "no_such_variable")
        assert not any(key[0] == "is_geophysical" for key in run.memo)


def test_scope_belongs_to_the_thread_that_opened_it():
    seen = {}

    def other_thread():
        seen["memo"] = scope.current_memo()
        try:
            with ccfast.run_scope():
                seen["opened"] = True
        except RuntimeError as e:
            seen["error"] = str(e)

    with ccfast.run_scope() as outer:
        with ccfast.run_scope() as inner:  # re-entrant in the owning thread
            assert inner is outer
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert scope.current_memo() is outer.memo
    assert seen == {"memo": None, "error": "a compliance-check run scope is already open in another thread"}
    with ccfast.run_scope():  # closed scopes leave nothing behind
        pass


def test_checker_helper_methods_memoised_per_checker_and_dataset(imos_dir):
    suite = CheckSuite()
    ds = suite.load_dataset(str(imos_dir / SRSALT))
    try:
        with warnings.catch_warnings(), ccfast.run_scope():
            warnings.simplefilter("ignore")
            checker = CF1_6Check()
            coords = checker._find_coord_vars(ds)
            assert checker._find_coord_vars(ds) is coords  # compliance-checker hands out one shared list
            geo = checker._find_geophysical_vars(ds)
            geo.append("junk")
            assert "junk" not in checker._find_geophysical_vars(ds)
            other = CF1_6Check()
            assert other._find_metadata_vars(ds) == checker._find_metadata_vars(ds)
        plain = CF1_6Check()
        assert plain._find_geophysical_vars(ds) == checker._find_geophysical_vars(ds)
    finally:
        ds.close()


# ---------------------------------------------------------------------------------------------------------------
# standard-name table
# ---------------------------------------------------------------------------------------------------------------

def test_standard_name_table_shared_only_inside_a_scope():
    outside = cfutil.StandardNameTable(), cfutil.StandardNameTable()
    assert outside[0]._root is not outside[1]._root  # compliance-checker's own behaviour: parsed each time
    with ccfast.run_scope():
        table, again = cfutil.StandardNameTable(), cfutil.StandardNameTable()
    assert table._root is again._root
    assert table._names == again._names == outside[0]._names and table._names is not again._names
    assert table._version == outside[0]._version
    assert isinstance(table, type(outside[0])) and type(table).__name__ == "StandardNameTable"


def test_standard_name_lookups_identical_inside_and_outside_a_scope():
    plain = cfutil.StandardNameTable()
    with ccfast.run_scope():
        shared = cfutil.StandardNameTable()
        names = ["sea_water_temperature", plain._aliases[0], plain._aliases[-1], plain._names[-1]]
        for name in names:
            inside, outside = shared[name], plain[name]
            assert vars(inside) == vars(outside), name
        with pytest.raises(KeyError) as inside_error:
            shared["not_a_standard_name"]
        assert shared.get("not_a_standard_name", "default") == "default"
    with pytest.raises(KeyError) as outside_error:
        plain["not_a_standard_name"]
    assert str(inside_error.value) == str(outside_error.value)


def _outcome(function, *args):
    try:
        return function(*args)
    except Exception as e:
        return "raised", type(e).__name__


def test_dimensionless_lookups_identical_inside_and_outside_a_scope():
    original = cfutil.is_dimensionless_standard_name._aodncore_ccfast_original.__wrapped__  # no lru_cache
    with ccfast.run_scope():
        table = cfutil.StandardNameTable()
        names = table._names[::97] + table._aliases[::50] + [
            "sea_water_practical_salinity", "mole_fraction_of_ozone_in_air", "air_temperature", "",
            "not_a_name", "it's", "a]b", "x' or '1'='1", np.str_("sea_water_temperature"), 42, None]
        inside = [_outcome(cfutil.is_dimensionless_standard_name, table._root, name) for name in names]
    outside = [_outcome(original, table._root, name) for name in names]
    assert inside == outside
    assert True in inside and False in inside and ("raised", "SyntaxError") in inside
    assert nametable.entry_index(table._root) is not None
    assert nametable.entry_index(cfutil.StandardNameTable()._root) is None  # a table parsed outside a scope


def test_an_extended_name_list_is_honoured():
    # the IOOS checker extends its table's name list; that instance must keep answering like compliance-checker
    with ccfast.run_scope():
        table = cfutil.StandardNameTable()
        table._names.extend(["aodncore_made_up_quality_flag"])
        assert "aodncore_made_up_quality_flag" in table
        with pytest.raises(IndexError):
            table["aodncore_made_up_quality_flag"]  # compliance-checker's own answer for a name without an entry
        assert "aodncore_made_up_quality_flag" not in cfutil.StandardNameTable()


# ---------------------------------------------------------------------------------------------------------------
# version pin and switches
# ---------------------------------------------------------------------------------------------------------------

def test_verified_versions_are_exact_and_include_the_installed_one():
    assert versions.VERIFIED_VERSIONS == ("6.1.0",)
    assert versions.installed_version() in versions.VERIFIED_VERSIONS
    assert ccfast.enabled()
    assert not versions.is_verified_version("6.1.1", log=False)
    assert not versions.is_verified_version("6.1", log=False)


def test_unverified_version_falls_back_with_one_log_line(monkeypatch, caplog, imos_dir):
    monkeypatch.setattr(versions, "installed_version", lambda: "6.2.0")
    monkeypatch.setattr(versions, "_noticed", set())
    with caplog.at_level(logging.INFO, logger="aodncore.checks.ccfast"):
        assert not ccfast.enabled()
        assert not ccfast.install()
        runner = ComplianceCheckerCheckRunner(None, None, {"checks": ["cf:1.6"]})
        assert not ccfast.warm_up(["cf:1.6"])
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("aodncore.checks.ccfast")]
    assert lines == ["compliance-checker 6.2.0 is not verified for the fast check path (verified: 6.1.0); "
                     "running plain compliance-checker"]
    assert runner.fast_path is False
    assert runner.check_file(str(imos_dir / SRSALT)).compliant is False


@pytest.mark.parametrize(("env", "params", "expected"), [
    (None, None, True), ("1", {}, True), ("0", None, False), ("off", {}, False), ("FALSE", None, False),
    ("no", None, False), (None, {"cc_fast_path": False}, False), (None, {"cc_fast_path": True}, True),
    ("0", {"cc_fast_path": True}, False),
])
def test_off_switches(monkeypatch, env, params, expected):
    if env is not None:
        monkeypatch.setenv(ccfast.ENV_SWITCH, env)
    assert ccfast.enabled(params) is expected
    runner = ComplianceCheckerCheckRunner(None, None, dict(params or {}, checks=["cf:1.6"]))
    assert runner.fast_path is expected


def test_check_params_schema_accepts_the_switch():
    validate_check_params({"checks": ["cf:1.6"], "cc_fast_path": False})
    with pytest.raises(Exception):
        validate_check_params({"checks": ["cf:1.6"], "cc_fast_path": "no"})


def test_both_paths_raise_the_same_error_for_a_broken_file(tmp_path, imos_dir):
    broken = tmp_path / "broken.nc"
    broken.write_bytes((imos_dir / SRSALT).read_bytes()[:2000])
    errors = []
    for run in (ComplianceChecker.run_checker, lambda *a, **k: ccfast.run_checker(ComplianceChecker, *a, **k)):
        with pytest.raises(Exception) as raised:
            run(str(broken), ["cf:1.6"], 0, "normal", output_filename=str(tmp_path / "report.txt"))
        errors.append((type(raised.value), str(raised.value)))
    assert errors[0] == errors[1]
    step = [ComplianceCheckerCheckRunner(None, None, {"checks": ["cf:1.6"], "cc_fast_path": fast}).check_file(
        str(broken)) for fast in (False, True)]
    assert comparable(step[0]) == comparable(step[1])
    assert comparable(step[0])[0] is False and comparable(step[0])[2][0].startswith("invalid NetCDF file")


# ---------------------------------------------------------------------------------------------------------------
# warm-up and fork
# ---------------------------------------------------------------------------------------------------------------

def test_warm_up_parses_the_table_once_and_is_idempotent():
    assert ccfast.warm_up(["cf:1.6", "imos:1.4", "no_such_suite"])
    sources = nametable.shared_table_sources()
    assert sources
    assert ccfast.warm_up(["cf:1.6"])
    assert nametable.shared_table_sources() == sources
    with ccfast.run_scope():
        first, second = CF1_6Check(), CF1_6Check()
    assert first._std_names._root is second._std_names._root
    assert scope.current_memo() is None
    # derived look-up data is built in the warming process, so that forked children inherit it
    assert first._std_names.__dict__["_aodncore_derived"].get("entry_index")
    assert set(first._std_names.__dict__["_aodncore_nodes"]) >= {"entry", "alias"}


def _child_result(write_fd: int, path: str) -> None:
    try:
        state = {"scope_in_child": scope.current_memo() is not None,
                 "warm_table": bool(nametable.shared_table_sources())}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runner = ComplianceCheckerCheckRunner(None, None, {"checks": ["cf:1.6", "imos:1.4"]})
            state["fast_path"] = runner.fast_path
            state["result"] = comparable(runner.check_file(path))
            with ccfast.run_scope():
                state["scope_opens"] = True
        os.write(write_fd, json.dumps(state).encode())
    finally:
        os._exit(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("inside_parent_scope", [False, True])
def test_forked_child_inherits_warm_state_but_no_scope(imos_dir, tmp_path, inside_parent_scope):
    path = str(shutil.copy(imos_dir / MET_BAD, tmp_path / MET_BAD))
    assert ccfast.warm_up(["cf:1.6", "imos:1.4"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = ComplianceCheckerCheckRunner(None, None, {"checks": ["cf:1.6", "imos:1.4"], "cc_fast_path": False})
        expected = comparable(plain.check_file(path))
    read_fd, write_fd = os.pipe()
    parent_scope = ccfast.run_scope()
    if inside_parent_scope:  # fork in the middle of a parent's run: the child must not see the parent's memo
        parent_scope.__enter__()
        with netCDF4.Dataset(path) as ds:
            cfutil.get_auxiliary_coordinate_variables(ds)
    try:
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_result(write_fd, path)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            state = json.loads(pipe.read().decode() or "{}")
        os.waitpid(pid, 0)
    finally:
        if inside_parent_scope:
            parent_scope.__exit__(None, None, None)
    assert state["scope_in_child"] is False and state["warm_table"] is True and state["fast_path"] is True
    assert state["scope_opens"] is True
    assert tuple(state["result"]) == (expected[0], expected[1], expected[2])
