"""Path function resolution with plain fake handlers (only the attributes ``get_path_function`` reads)."""

from __future__ import annotations

import pytest

from aodncore.pipeline.configlib import LazyConfigManager
from aodncore.pipeline.destpath import PathFunctionResolver, get_path_function
from aodncore.pipeline.exceptions import InvalidPathFunctionError
from aodncore.pipeline.pathfunctions import imos_dest_path

GROUP = "pipeline.path_functions"


def named_dest(path):
    return f"NAMED/{path}"


def named_archive(path):
    return f"ARCHIVE/{path}"


def make_config(loaded=None, failed=None) -> LazyConfigManager:
    config = LazyConfigManager()
    config.__dict__["discovered_dest_path_functions"] = (
        loaded if loaded is not None else {"named_dest": named_dest, "named_archive": named_archive},
        failed if failed is not None else ["broken_function"],
    )
    return config


class FakeHandler:
    """Stands in for HandlerBase: path function parameters plus a config."""

    def __init__(self, dest_path_function=None, archive_path_function=None, config=None):
        self.dest_path_function, self.archive_path_function = dest_path_function, archive_path_function
        self.config = config if config is not None else make_config()


class StaticMethodHandler(FakeHandler):
    @staticmethod
    def dest_path(path):
        return f"STATIC/{path}"


class BoundMethodHandler(FakeHandler):
    prefix = "BOUND"

    def dest_path(self, path):
        return f"{self.prefix}/{path}"

    def archive_path(self, path):
        return f"BOUND-ARCHIVE/{path}"


class NotCallableHandler(FakeHandler):
    dest_path = "not callable"


def test_static_method():
    function, name = get_path_function(StaticMethodHandler(), GROUP)
    assert function("a.nc") == "STATIC/a.nc"
    assert name == "StaticMethodHandler.dest_path"


def test_bound_method():
    handler = BoundMethodHandler()
    function, name = get_path_function(handler, GROUP)
    assert function("a.nc") == "BOUND/a.nc"
    assert name == "BoundMethodHandler.dest_path"


def test_callable_instance_attribute():
    handler = FakeHandler()
    handler.dest_path = named_dest
    function, name = get_path_function(handler, GROUP)
    assert function is named_dest
    assert name == "FakeHandler.named_dest"


def test_missing_method():
    with pytest.raises(InvalidPathFunctionError, match="missing path function"):
        get_path_function(FakeHandler(), GROUP)


def test_method_not_callable():
    with pytest.raises(InvalidPathFunctionError, match="not callable"):
        get_path_function(NotCallableHandler(), GROUP)


def test_callable_parameter_wins_over_method():
    function, name = get_path_function(StaticMethodHandler(dest_path_function=named_dest), GROUP)
    assert function is named_dest
    assert name == f"{__name__}.named_dest"


def test_lambda_parameter():
    function, name = get_path_function(FakeHandler(dest_path_function=lambda p: "L/" + p), GROUP)
    assert function("x") == "L/x"
    assert name == f"{__name__}.<lambda>"


def test_entry_point_name_looked_up_in_config():
    function, name = get_path_function(FakeHandler(dest_path_function="named_dest"), GROUP)
    assert function is named_dest
    assert name == f"{__name__}.named_dest"


def test_entry_point_name_failed_to_load():
    with pytest.raises(InvalidPathFunctionError, match="'broken_function' failed to load"):
        get_path_function(FakeHandler(dest_path_function="broken_function"), GROUP)


def test_entry_point_name_not_found():
    with pytest.raises(InvalidPathFunctionError, match="'nowhere' not found in entry point group 'pipeline.path_f"):
        get_path_function(FakeHandler(dest_path_function="nowhere"), GROUP)


@pytest.mark.parametrize("bad", [1, ["named_dest"], b"named_dest"])
def test_invalid_parameter_type(bad):
    with pytest.raises(InvalidPathFunctionError):
        get_path_function(StaticMethodHandler(dest_path_function=bad), GROUP)


def test_real_entry_point_without_config():
    """A handler without a config falls back to scanning the named entry-point group."""

    class NoConfigHandler:
        dest_path_function = "imos_dest_path"
        archive_path_function = None

    function, name = get_path_function(NoConfigHandler(), GROUP)
    assert function is imos_dest_path
    assert name == "aodncore.pipeline.pathfunctions.imos_dest_path"


# --- archive mode ----------------------------------------------------------------------------------------------------


def test_archive_parameter():
    handler = FakeHandler(dest_path_function=named_dest, archive_path_function="named_archive")
    function, name = get_path_function(handler, GROUP, archive_mode=True)
    assert function is named_archive
    assert name == f"{__name__}.named_archive"


def test_archive_method():
    function, name = get_path_function(BoundMethodHandler(), GROUP, archive_mode=True)
    assert function("a.nc") == "BOUND-ARCHIVE/a.nc"
    assert name == "BoundMethodHandler.archive_path"


def test_archive_falls_back_to_dest_function():
    handler = FakeHandler(dest_path_function=named_dest)
    assert get_path_function(handler, GROUP, archive_mode=True) == get_path_function(handler, GROUP)
    function, _ = get_path_function(StaticMethodHandler(), GROUP, archive_mode=True)
    assert function("a.nc") == "STATIC/a.nc"


@pytest.mark.parametrize("bad_archive", ["nowhere", "broken_function", 42])
def test_invalid_archive_parameter_silently_replaced_by_dest(bad_archive):
    handler = FakeHandler(dest_path_function=named_dest, archive_path_function=bad_archive)
    function, _ = get_path_function(handler, GROUP, archive_mode=True)
    assert function is named_dest


def test_archive_mode_fails_when_dest_also_fails():
    with pytest.raises(InvalidPathFunctionError, match="dest_path"):
        get_path_function(FakeHandler(), GROUP, archive_mode=True)


def test_resolver_does_not_fall_back():
    resolver = PathFunctionResolver(FakeHandler(dest_path_function=named_dest), GROUP, archive_mode=True)
    assert resolver.parameter_name == "archive_path_function"
    assert resolver.method_name == "archive_path"
    with pytest.raises(InvalidPathFunctionError, match="archive_path"):
        resolver.resolve()
