"""Small descriptors and helpers built on third-party libraries.

* :class:`IndexedSet` is boltons' insertion-ordered, indexable set.
* :func:`retry_decorator` / :func:`retry_call` are thin wrappers around tenacity (imported on first use).
* :class:`classproperty` and :class:`lazyproperty` are descriptors written for this package.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from boltons.setutils import IndexedSet

__all__ = ["IndexedSet", "classproperty", "lazyproperty", "retry_call", "retry_decorator"]

_LOGGER = logging.getLogger(__name__)

_MISSING = object()


class classproperty:
    """A read-only property evaluated on the class (also reachable through instances).

    Usable as ``@classproperty`` or ``@classproperty(lazy=True)``; a lazy class property is computed once per class
    and cached. ``fget`` receives the class.
    """

    def __init__(self, fget: Callable[[type], Any] | None = None, doc: str | None = None, lazy: bool = False) -> None:
        if isinstance(fget, (classmethod, staticmethod)):
            fget = fget.__func__
        self.fget = fget
        self.lazy = lazy
        self._cache: dict[type, Any] = {}
        self._lock = threading.Lock()
        self.__doc__ = doc if doc is not None else getattr(fget, "__doc__", None)

    def __call__(self, fget: Callable[[type], Any]) -> classproperty:
        """Decorator form after ``classproperty(doc=..., lazy=...)``."""
        if self.fget is not None:
            raise TypeError("classproperty already has a getter")
        return type(self)(fget, doc=self.__doc__, lazy=self.lazy)

    def __set_name__(self, owner: type, name: str) -> None:
        self.__name__ = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        cls = objtype if objtype is not None else type(obj)
        if not self.lazy:
            return self.fget(cls)
        with self._lock:
            value = self._cache.get(cls, _MISSING)
        if value is _MISSING:
            value = self.fget(cls)
            with self._lock:
                value = self._cache.setdefault(cls, value)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError("can't set a classproperty")

    def __delete__(self, obj: Any) -> None:
        raise AttributeError("can't delete a classproperty")

    def getter(self, fget: Callable[[type], Any]) -> classproperty:
        return type(self)(fget, doc=self.__doc__, lazy=self.lazy)

    def setter(self, fset: Any) -> None:
        raise NotImplementedError("classproperty is read-only")

    def deleter(self, fdel: Any) -> None:
        raise NotImplementedError("classproperty is read-only")


class lazyproperty(property):
    """A read-only property computed on first access and cached in the instance ``__dict__``.

    If the instance ``__dict__`` already holds a value under the property's name, that value is returned; this lets
    callers (and tests) inject values. Accessed on the class, the descriptor itself is returned.
    """

    def __init__(self, fget: Callable[[Any], Any], doc: str | None = None) -> None:
        super().__init__(fget, None, None, doc)
        self._key = fget.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        cache = obj.__dict__
        value = cache.get(self._key, _MISSING)
        if value is _MISSING:
            value = self.fget(obj)
            value = cache.setdefault(self._key, value)
        return value


def _build_retrying(exceptions: type[BaseException] | tuple[type[BaseException], ...], tries: int, delay: float,
                    max_delay: float | None, backoff: float, jitter: float | tuple[float, float],
                    logger: logging.Logger | None) -> Any:
    import tenacity

    if tries == 0:
        raise ValueError("tries must be -1 (forever) or a positive number of attempts")

    def wait(retry_state: tenacity.RetryCallState) -> float:
        # the n-th sleep is delay * backoff**(n-1), plus jitter (a fixed amount accumulated per retry, or a random
        # amount drawn from a (low, high) range), capped by max_delay
        retries = retry_state.attempt_number - 1
        sleep = delay * backoff ** retries
        if isinstance(jitter, tuple):
            sleep += random.uniform(*jitter)
        else:
            sleep += jitter * retries
        if max_delay is not None:
            sleep = min(sleep, max_delay)
        return max(sleep, 0)

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        if logger is not None:
            exception = retry_state.outcome.exception()
            logger.warning("%s, retrying in %s seconds...", exception, retry_state.next_action.sleep)

    return tenacity.Retrying(
        stop=tenacity.stop_never if tries < 0 else tenacity.stop_after_attempt(tries),
        wait=wait,
        retry=tenacity.retry_if_exception_type(exceptions),
        before_sleep=before_sleep,
        reraise=True,
    )


def retry_decorator(exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception, tries: int = -1,
                    delay: float = 0, max_delay: float | None = None, backoff: float = 1,
                    jitter: float | tuple[float, float] = 0, logger: logging.Logger | None = _LOGGER) -> Callable:
    """Decorator retrying the wrapped function when it raises one of ``exceptions``.

    :param exceptions: exception class (or tuple) that triggers a retry; others propagate at once
    :param tries: total number of attempts; -1 retries forever
    :param delay: first sleep between attempts, in seconds
    :param max_delay: upper bound of a sleep (None = unbounded)
    :param backoff: multiplier applied to the sleep after each attempt
    :param jitter: seconds added per retry, or a ``(low, high)`` range for a random addition
    :param logger: logger warned before each sleep (None = silent)
    :return: a decorator; the decorated function re-raises the last exception once attempts are exhausted
    """

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            retrying = _build_retrying(exceptions, tries, delay, max_delay, backoff, jitter, logger)
            return retrying(func, *args, **kwargs)

        return wrapper

    return decorator


def retry_call(f: Callable, fargs: Any = None, fkwargs: dict[str, Any] | None = None,
               exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception, tries: int = -1,
               delay: float = 0, max_delay: float | None = None, backoff: float = 1,
               jitter: float | tuple[float, float] = 0, logger: logging.Logger | None = _LOGGER) -> Any:
    """Call ``f(*fargs, **fkwargs)`` with the retry policy of :func:`retry_decorator` and return its result."""
    retrying = _build_retrying(exceptions, tries, delay, max_delay, backoff, jitter, logger)
    return retrying(f, *(fargs or ()), **(fkwargs or {}))
