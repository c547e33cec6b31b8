"""The per-dataset run scope: the one place that says whether memoised answers may be used right now.

A scope is opened around the checks of one dataset (all requested suites of one file) by the thread that runs them,
and closed afterwards; its memo dictionary dies with it, so nothing memoised for one dataset is ever seen by
another. Outside a scope — in another thread, in a forked child, or when the fast path is off — every patched
function behaves exactly like compliance-checker's own.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["RunScope", "current_memo", "run_scope", "scope_active"]


class RunScope:
    """State of one dataset's run: the memo of derived facts, owned by one thread of one process."""

    __slots__ = ("memo", "thread", "pid", "depth")

    def __init__(self) -> None:
        self.memo: dict[Any, Any] = {}
        self.thread = threading.get_ident()
        self.pid = os.getpid()
        self.depth = 0


_active: RunScope | None = None


def current_memo() -> dict | None:
    """The memo of the scope open in this thread, or None (then callers must compute as usual)."""
    scope = _active
    if scope is None or scope.thread != threading.get_ident():
        return None
    return scope.memo


def scope_active() -> bool:
    """True if this thread is inside a run scope."""
    return current_memo() is not None


@contextlib.contextmanager
def run_scope() -> Iterator[RunScope]:
    """Open the run scope of one dataset (re-entrant in the owning thread).

    Only one thread of a process may hold a scope at a time; the check step serialises netCDF work anyway
    (netCDF-C/HDF5 are not thread-safe), so another thread asking for one is a programming error.
    """
    global _active
    scope = _active
    if scope is not None and scope.thread == threading.get_ident() and scope.pid == os.getpid():
        scope.depth += 1
        try:
            yield scope
        finally:
            scope.depth -= 1
        return
    if scope is not None and scope.pid == os.getpid():
        raise RuntimeError("a compliance-check run scope is already open in another thread")
    scope = RunScope()
    _active = scope
    try:
        yield scope
    finally:
        _active = None
        scope.memo.clear()


def _forget_scope_in_child() -> None:
    # A child forked while the parent was inside a run must not see the parent's dataset facts.
    global _active
    _active = None


os.register_at_fork(after_in_child=_forget_scope_in_child)
