"""Tests for aodncore.util.external: IndexedSet, classproperty, lazyproperty and the tenacity-based retries."""

from __future__ import annotations

import logging

import pytest

from aodncore.util.external import IndexedSet, classproperty, lazyproperty, retry_call, retry_decorator


def test_indexedset_basics():
    s = IndexedSet(["b", "a", "b", "c"])
    assert list(s) == ["b", "a", "c"]
    assert s[1] == "a"
    assert isinstance(s[0:2], IndexedSet) and list(s[0:2]) == ["b", "a"]
    assert s.index("c") == 2
    assert s.pop(0) == "b"
    assert list(s | {"z"}) == ["a", "c", "z"]


class _Counter:
    calls = 0


class _WithClassProperty:
    base = 10

    @classproperty
    def doubled(cls):
        return cls.base * 2

    @classproperty(lazy=True)
    def computed_once(cls):
        _Counter.calls += 1
        return cls.base + 1


class _Sub(_WithClassProperty):
    base = 20


def test_classproperty_on_class_and_instance():
    assert _WithClassProperty.doubled == 20
    assert _WithClassProperty().doubled == 20
    assert _Sub.doubled == 40


def test_classproperty_lazy_caches_per_class():
    _Counter.calls = 0
    assert _WithClassProperty.computed_once == 11
    assert _WithClassProperty().computed_once == 11
    assert _Counter.calls == 1
    assert _Sub.computed_once == 21
    assert _Counter.calls == 2


def test_classproperty_is_read_only():
    with pytest.raises(NotImplementedError):
        _WithClassProperty.__dict__["doubled"].setter(lambda cls, v: None)
    with pytest.raises(NotImplementedError):
        _WithClassProperty.__dict__["doubled"].deleter(lambda cls: None)
    with pytest.raises(AttributeError):
        _WithClassProperty().doubled = 5


class _Lazy:
    def __init__(self):
        self.calls = 0

    @lazyproperty
    def value(self):
        """The doc."""
        self.calls += 1
        return object()


def test_lazyproperty_computes_once_and_caches_in_dict():
    obj = _Lazy()
    first = obj.value
    assert obj.value is first
    assert obj.calls == 1
    assert obj.__dict__["value"] is first
    assert isinstance(_Lazy.value, lazyproperty) and isinstance(_Lazy.value, property)
    assert _Lazy.value.__doc__ == "The doc."


def test_lazyproperty_dict_injection_and_read_only():
    obj = _Lazy()
    obj.__dict__["value"] = "injected"
    assert obj.value == "injected"
    assert obj.calls == 0
    with pytest.raises(AttributeError):
        obj.value = 1
    with pytest.raises(AttributeError):
        del obj.value


def _flaky(failures, exc=ValueError):
    state = {"calls": 0}

    def f(x=1):
        state["calls"] += 1
        if state["calls"] <= failures:
            raise exc(f"failure {state['calls']}")
        return x * 2

    return f, state


def test_retry_decorator_retries_then_succeeds(caplog):
    f, state = _flaky(2)
    decorated = retry_decorator(exceptions=ValueError, tries=5)(f)
    with caplog.at_level(logging.WARNING, logger="aodncore.util.external"):
        assert decorated(x=4) == 8
    assert state["calls"] == 3
    warnings = [r.getMessage() for r in caplog.records if r.name == "aodncore.util.external"]
    assert warnings == ["failure 1, retrying in 0.0 seconds...", "failure 2, retrying in 0.0 seconds..."]


def test_retry_decorator_reraises_last_exception_after_tries():
    f, state = _flaky(10)
    with pytest.raises(ValueError, match="failure 3"):
        retry_decorator(exceptions=ValueError, tries=3, logger=None)(f)()
    assert state["calls"] == 3


def test_retry_decorator_ignores_other_exceptions():
    f, state = _flaky(1, exc=KeyError)
    with pytest.raises(KeyError):
        retry_decorator(exceptions=ValueError, tries=3)(f)()
    assert state["calls"] == 1


def test_retry_forever_by_default():
    f, state = _flaky(25)
    assert retry_decorator(logger=None)(f)() == 2
    assert state["calls"] == 26


def test_retry_delays_backoff_and_cap(monkeypatch):
    import time

    sleeps = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    f, _ = _flaky(4)
    assert retry_call(f, fargs=(3,), tries=5, delay=1, backoff=2, max_delay=5, logger=None) == 6
    assert sleeps == [1, 2, 4, 5]


def test_retry_call_kwargs_and_jitter(monkeypatch):
    import time

    sleeps = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    f, _ = _flaky(2)
    assert retry_call(f, fkwargs={"x": 5}, tries=3, delay=1, jitter=0.5, logger=None) == 10
    assert sleeps == [1, 1.5]
