"""Tests for aodncore.util.misc (validators, regex helpers, WriteOnceOrderedDict, small helpers)."""

from __future__ import annotations

import logging
import re
import sys
from collections import OrderedDict
from enum import Enum

import pytest

from aodncore.util import misc
from aodncore.util.misc import (
    CaptureStdIO,
    LoggingContext,
    Pattern,
    TemplateRenderer,
    WriteOnceOrderedDict,
    discover_entry_points,
    ensure_regex,
    ensure_regex_list,
    ensure_writeonceordereddict,
    format_exception,
    generate_id,
    get_pattern_subgroups_from_string,
    get_regex_subgroups_from_string,
    is_function,
    is_nonstring_iterable,
    is_valid_email_address,
    iter_public_attributes,
    list_not_empty,
    matches_regexes,
    merge_dicts,
    slice_sequence,
    str_to_list,
    validate_bool,
    validate_callable,
    validate_dict,
    validate_int,
    validate_mandatory_elements,
    validate_mapping,
    validate_membership,
    validate_nonstring_iterable,
    validate_regex,
    validate_regexes,
    validate_relative_path,
    validate_relative_path_attr,
    validate_string,
    validate_type,
)


class Colour(Enum):
    RED = 1
    GREEN = 2


class Shape(Enum):
    SQUARE = 1


# ---------------------------------------------------------------------------------------------------------------------
# validators
# ---------------------------------------------------------------------------------------------------------------------

def test_validate_type_message_and_acceptance():
    validator = validate_type(float)
    validator(1.5)
    with pytest.raises(TypeError, match=r"object 'x' must be of type"):
        validator("x")


@pytest.mark.parametrize(
    "validator, good, bad",
    [
        (validate_bool, True, 1),
        (validate_dict, {}, []),
        (validate_int, 3, "3"),
        (validate_mapping, OrderedDict(), [("a", 1)]),
        (validate_string, "s", b"s"),
        (validate_callable, len, 42),
        (validate_nonstring_iterable, [1], "abc"),
    ],
)
def test_simple_validators(validator, good, bad):
    validator(good)
    with pytest.raises(TypeError):
        validator(bad)


def test_validate_int_accepts_bool_because_bool_is_int():
    validate_int(True)


def test_validate_nonstring_iterable_rejects_mappings_and_bytes():
    for value in ({"a": 1}, b"bytes", 5):
        with pytest.raises(TypeError):
            validate_nonstring_iterable(value)
    validate_nonstring_iterable(x for x in ())


def test_validate_membership_enum_class_type_vs_value_errors():
    validator = validate_membership(Colour)
    validator(Colour.RED)
    with pytest.raises(TypeError):
        validator("RED")
    with pytest.raises(TypeError):
        validator(1)
    with pytest.raises(ValueError, match="must be a member of"):
        validator(Shape.SQUARE)


def test_validate_membership_set_container_gives_value_errors_only():
    validator = validate_membership({Colour.RED})
    validator(Colour.RED)
    for bad in ("RED", Colour.GREEN, None, []):
        with pytest.raises(ValueError, match=r"value '.*' must be a member of"):
            validator(bad)


def test_validate_relative_path():
    validate_relative_path("a/b.nc")
    with pytest.raises(ValueError, match=r"path '/abs' must be a relative path"):
        validate_relative_path("/abs")
    with pytest.raises(TypeError):
        validate_relative_path(None)


def test_validate_relative_path_attr_names_attribute():
    validate_relative_path_attr("x/y", "dest_path")
    with pytest.raises(ValueError, match=r"^error validating 'dest_path': path '/x' must be a relative path$"):
        validate_relative_path_attr("/x", "dest_path")


def test_validate_mandatory_elements():
    validate_mandatory_elements(["a", "b"], ["b", "a", "c"])
    with pytest.raises(ValueError, match=r"missing mandatory key\(s\): \['b'\]"):
        validate_mandatory_elements(["a", "b"], {"a": 1}, name="key")


# ---------------------------------------------------------------------------------------------------------------------
# regex helpers
# ---------------------------------------------------------------------------------------------------------------------

def test_validate_regex():
    validate_regex(r"\d+")
    validate_regex(re.compile("x"))
    with pytest.raises(ValueError, match=r"invalid regex '\['"):
        validate_regex("[")
    with pytest.raises(TypeError):
        validate_regex(5)


def test_validate_regexes():
    validate_regexes([r"a", re.compile("b")])
    with pytest.raises(TypeError):
        validate_regexes("a")
    with pytest.raises(ValueError):
        validate_regexes(["a", "("])


def test_ensure_regex_returns_same_compiled_object():
    pattern = re.compile("abc")
    assert ensure_regex(pattern) is pattern
    compiled = ensure_regex("abc")
    assert isinstance(compiled, Pattern)
    assert compiled.pattern == "abc"


def test_ensure_regex_list():
    assert ensure_regex_list(None) == []
    assert ensure_regex_list([]) == []
    single = ensure_regex_list("a.c")
    assert [p.pattern for p in single] == ["a.c"]
    assert [p.pattern for p in ensure_regex_list(("a", re.compile("b")))] == ["a", "b"]
    with pytest.raises(ValueError):
        ensure_regex_list(["("])
    with pytest.raises(TypeError):
        ensure_regex_list(5)


def test_matches_regexes():
    assert matches_regexes("IMOS_file.nc", r"IMOS_")
    assert matches_regexes("IMOS_file.nc", [r"foo", r"IMOS_.*\.nc"])
    # start-anchored, not end-anchored
    assert matches_regexes("IMOS_file.nc.bak", r"IMOS_.*\.nc")
    assert not matches_regexes("x_IMOS_file.nc", r"IMOS_")
    assert matches_regexes("anything", "")
    assert not matches_regexes("anything", None)
    assert not matches_regexes("anything", [])
    assert not matches_regexes("IMOS_file.nc", r"IMOS_", exclude_regexes=[r".*\.nc"])
    assert matches_regexes("IMOS_file.csv", r"IMOS_", exclude_regexes=r".*\.nc")
    with pytest.raises(TypeError):
        matches_regexes("x", 5)
    with pytest.raises(ValueError):
        matches_regexes("x", "(")


def test_get_regex_subgroups_from_string():
    regex = r"IMOS_(?P<facility>[A-Z]+)_(?P<code>\w)_"
    assert get_regex_subgroups_from_string("IMOS_ANMN_T_2019.nc", regex) == {"facility": "ANMN", "code": "T"}
    assert get_regex_subgroups_from_string("nope.nc", regex) == {}
    assert get_pattern_subgroups_from_string is get_regex_subgroups_from_string
    full_path = "/tmp/x/IMOS_ACORN_V_1.nc"
    assert get_pattern_subgroups_from_string(full_path, r".*/IMOS_(?P<f>[A-Z]+)_") == {"f": "ACORN"}
    with pytest.raises(TypeError):
        get_regex_subgroups_from_string("x", 1)
    with pytest.raises(ValueError):
        get_regex_subgroups_from_string("x", "(")


@pytest.mark.parametrize(
    "address, valid",
    [
        ("owner1@example.com", True),
        ("First.Last+tag@Sub-Domain.Example.org", True),
        ("root@localhost", True),
        ("nobody", False),
        ("no@dots", False),
        ("two@@example.com", False),
        ("", False),
    ],
)
def test_is_valid_email_address(address, valid):
    assert bool(is_valid_email_address(address)) is valid


def test_is_valid_email_address_returns_match_or_none():
    assert isinstance(is_valid_email_address("a@b.cd"), re.Match)
    assert is_valid_email_address("nope") is None
    assert is_valid_email_address(None) is None


# ---------------------------------------------------------------------------------------------------------------------
# WriteOnceOrderedDict
# ---------------------------------------------------------------------------------------------------------------------

def test_writeonceordereddict_sets_once():
    d = WriteOnceOrderedDict()
    d["a"] = 1
    with pytest.raises(RuntimeError, match=r"key 'a' has already been set"):
        d["a"] = 2
    assert d["a"] == 1


@pytest.mark.parametrize(
    "operation",
    [
        lambda d: d.__delitem__("a"),
        lambda d: d.clear(),
        lambda d: d.pop("a"),
        lambda d: d.popitem(),
        lambda d: d.setdefault("z", 1),
        lambda d: d.update({"z": 1}),
    ],
)
def test_writeonceordereddict_rejects_updates_and_deletions(operation):
    d = WriteOnceOrderedDict(a=1)
    with pytest.raises(RuntimeError, match="updates or deletions not permitted on WriteOnceOrderedDict"):
        operation(d)
    assert d == {"a": 1}


def test_writeonceordereddict_construction_and_copy():
    d = WriteOnceOrderedDict([("b", 2), ("a", 1)])
    assert list(d) == ["b", "a"]
    assert WriteOnceOrderedDict({"x": 1}) == {"x": 1}
    copied = d.copy()
    assert isinstance(copied, WriteOnceOrderedDict) and copied == d
    assert dict(d) == {"a": 1, "b": 2}
    with pytest.raises(RuntimeError):
        WriteOnceOrderedDict([("a", 1), ("a", 2)])


def test_ensure_writeonceordereddict():
    existing = WriteOnceOrderedDict(a=1)
    assert ensure_writeonceordereddict(existing) is existing
    converted = ensure_writeonceordereddict({"k": "v"})
    assert isinstance(converted, WriteOnceOrderedDict) and converted == {"k": "v"}
    assert ensure_writeonceordereddict(None) == WriteOnceOrderedDict()
    assert ensure_writeonceordereddict("str") == WriteOnceOrderedDict()
    with pytest.raises(TypeError):
        ensure_writeonceordereddict(None, empty_on_fail=False)
    with pytest.raises(ValueError):
        ensure_writeonceordereddict("str", empty_on_fail=False)


# ---------------------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------------------

def test_format_exception():
    assert format_exception(ValueError("bad thing")) == "ValueError: bad thing"


def test_generate_id_shape_and_uniqueness():
    ids = {generate_id() for _ in range(50)}
    assert len(ids) == 50
    for value in ids:
        assert re.fullmatch(r"[a-z][0-9a-f]{32}", value)


class _Thing:
    def method(self):
        return 1

    @staticmethod
    def static():
        return 2


def _plain():
    return 3


def test_is_function():
    assert is_function(_plain)
    assert is_function(lambda: None)
    assert is_function(_Thing.static)
    assert is_function(_Thing.method)
    assert is_function(_Thing().method)
    for value in (_Thing, 1, [], {}, "s"):
        assert not is_function(value)


def test_is_nonstring_iterable():
    assert is_nonstring_iterable([1])
    assert is_nonstring_iterable(())
    assert is_nonstring_iterable({1})
    assert is_nonstring_iterable(x for x in ())
    for value in ("s", b"b", {"a": 1}, 1, None):
        assert not is_nonstring_iterable(value)


class _Slotted:
    __slots__ = ("public", "_private")

    def __init__(self):
        self.public = "p"
        self._private = "x"

    @property
    def prop(self):
        return "q"


class _Plain:
    def __init__(self):
        self.a = 1
        self._b = 2

    @property
    def c(self):
        return 3


def test_iter_public_attributes():
    assert dict(iter_public_attributes(_Slotted())) == {"public": "p", "prop": "q"}
    assert dict(iter_public_attributes(_Plain())) == {"a": 1, "c": 3}
    assert dict(iter_public_attributes(_Plain(), ignored_attributes=["a"])) == {"c": 3}


def test_merge_dicts_recursive_lists_and_override():
    first = {"a": 1, "nested": {"x": 1, "y": {"deep": 1}}, "lst": [1]}
    second = {"a": 2, "nested": {"y": {"other": 2}}, "lst": [1, 2], "new": "n"}
    merged = merge_dicts(first, second)
    assert merged == {"a": 2, "nested": {"x": 1, "y": {"deep": 1, "other": 2}}, "lst": [1, 1, 2], "new": "n"}
    assert type(merged) is dict
    # QUIRK: the first argument's list object is extended in place
    assert first["lst"] == [1, 1, 2]
    assert first["a"] == 1 and "new" not in first


def test_merge_dicts_keeps_ordereddict_type():
    merged = merge_dicts(OrderedDict([("b", 1)]), {"a": 2})
    assert isinstance(merged, OrderedDict)
    assert list(merged) == ["b", "a"]


def test_slice_sequence():
    assert slice_sequence([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert slice_sequence("abcd", 3) == ["abc", "d"]
    assert slice_sequence([], 3) == []


def test_str_to_list_spec_example():
    assert str_to_list("str1,str2,str3, str4,str5 ,,str6, ,") == ["str1", "str2", "str3", "str4", "str5", "str6"]


def test_str_to_list_options():
    original = ["a", "b"]
    assert str_to_list(original) is original
    assert str_to_list(" a; b ", delimiter=";", strip_method="lstrip") == ["a", "b "]
    assert str_to_list(" a; b ", delimiter=";", strip_method="rstrip") == [" a", " b"]
    assert str_to_list(" a, b", strip_method=None) == [" a", " b"]
    assert str_to_list("a,,b", include_empty=True) == ["a", "", "b"]


def test_list_not_empty():
    assert not list_not_empty([])
    assert not list_not_empty([None, None])
    assert list_not_empty([None, 0])
    assert list_not_empty(["x"])


# ---------------------------------------------------------------------------------------------------------------------
# context managers, templates, entry points
# ---------------------------------------------------------------------------------------------------------------------

def test_capture_stdio_separate_and_merged():
    with CaptureStdIO() as (out, err):
        print("hello")
        print("world")
        print("oops", file=sys.stderr)
    assert out == ["hello", "world"]
    assert err == ["oops"]

    with CaptureStdIO(merge_streams=True) as (out, err):
        print("one")
        print("two", file=sys.stderr)
    assert out == ["one", "two"]
    assert err == []


def test_logging_context_level_handler_and_format():
    logger = logging.getLogger("aodncore.test.loggingcontext")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    records: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

        def close(self):
            records.append("closed")
            super().close()

    handler = ListHandler()
    adapter = logging.LoggerAdapter(logger, {})
    with LoggingContext(adapter, level=logging.DEBUG, format_="F:%(message)s", handler=handler):
        logger.debug("inside")
    logger.debug("outside")
    assert records == ["F:inside", "closed"]
    assert logger.level == logging.WARNING
    assert handler not in logger.handlers


def test_template_renderer_renders_package_templates(tmp_path, monkeypatch):
    package = tmp_path / "tplpkg"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "templates" / "t.txt.j2").write_text("Hello {{ name }}")
    (package / "templates" / "t.html.j2").write_text("<p>{{ name }}</p>")
    monkeypatch.syspath_prepend(str(tmp_path))
    renderer = TemplateRenderer(package="tplpkg", package_path="templates")
    assert renderer.render("t.txt.j2", {"name": "<b>"}) == "Hello <b>"
    assert renderer.render("t.html.j2", {"name": "<b>"}) == "<p>&lt;b&gt;</p>"
    with pytest.raises(TypeError):
        renderer.render("t.txt.j2", ["name"])


class _FakeEntryPoint:
    def __init__(self, name, target, group="grp"):
        self.name = name
        self.group = group
        self._target = target

    def load(self):
        if isinstance(self._target, BaseException):
            raise self._target
        return self._target


def test_discover_entry_points_shape_and_failures():
    working_set = [
        _FakeEntryPoint("good", 42),
        _FakeEntryPoint("broken", ImportError("nope")),
        _FakeEntryPoint("other-group", 1, group="different"),
    ]
    loaded, failed = discover_entry_points("grp", working_set=working_set)
    assert loaded == {"good": 42}
    assert failed == ["broken"]

    with pytest.raises(RuntimeError):
        discover_entry_points("grp", working_set=[_FakeEntryPoint("bad", RuntimeError("boom"))])


def test_discover_entry_points_installed_group():
    loaded, failed = discover_entry_points("pipeline.module_versions")
    assert isinstance(loaded, dict) and isinstance(failed, list)
    assert "compliance-checker" in loaded
    assert isinstance(loaded["compliance-checker"], str)


def test_module_all_is_resolvable():
    for name in misc.__all__:
        assert hasattr(misc, name), name


def test_util_package_reexports():
    import aodncore.util as util

    for name in util.__all__:
        assert getattr(util, name) is not None, name
    assert util.get_s3_bucket("s3://bucket/key") == "bucket"
