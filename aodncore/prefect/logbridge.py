"""Make the library's own log records appear in the Prefect run they belong to.

Prefect only ships records of its own loggers (and of ``PREFECT_LOGGING_EXTRA_LOGGERS``) to the API, only at or
above the logger's effective level, and only from code running in the run's ``contextvars`` context.
:func:`forward_library_logs` fixes the first two for the duration of a block; :func:`submit_with_context` and
:func:`context_thread_pool` fix the third for threads the library starts itself.

Records emitted where no flow or task run is active (e.g. in a thread without the copied context) are dropped
quietly by our handler instead of producing Prefect's "attempted to send logs to the API without a flow run id"
warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

from prefect.logging.handlers import APILogHandler

__all__ = ["LibraryAPILogHandler", "context_thread_pool", "forward_library_logs", "submit_with_context"]

T = TypeVar("T")

_lock = threading.Lock()
# logger name -> [handler, reference count, level before we changed it (or None)]
_active: dict[str, list[Any]] = {}


def _in_run_context() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _has_api_handler(logger: logging.Logger) -> bool:
    return any(isinstance(handler, APILogHandler) for handler in logger.handlers)


class LibraryAPILogHandler(APILogHandler):
    """Prefect's API handler for a library logger tree, without duplicates and without out-of-run warnings.

    A record is skipped when no flow/task run is active, or when a logger between the record's own logger and
    ``root_name`` already carries a Prefect API handler (it was sent there, e.g. through
    ``PREFECT_LOGGING_EXTRA_LOGGERS=aodncore.sub``).
    """

    def __init__(self, root_name: str, level: int = logging.NOTSET):
        super().__init__(level)
        self.root_name = root_name

    def filter(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if not super().filter(record):
            return False
        if getattr(record, "flow_run_id", None) is None and not _in_run_context():
            return False
        name = record.name
        while name and name != self.root_name:
            logger = logging.Logger.manager.loggerDict.get(name)
            if isinstance(logger, logging.Logger):
                if _has_api_handler(logger):
                    return False
                if not logger.propagate:
                    return False
            name = name.rpartition(".")[0]
        return True


def _already_forwarded(logger: logging.Logger) -> bool:
    """True when records of ``logger`` already reach a Prefect API handler on it or on an ancestor."""
    current: logging.Logger | None = logger
    while current is not None:
        if _has_api_handler(current):
            return True
        if not current.propagate:
            return False
        current = current.parent  # type: ignore[assignment]
    return False


@contextlib.contextmanager
def forward_library_logs(logger_name: str = "aodncore", level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Within the block, send every record of the ``logger_name`` tree at ``level`` or above to the current
    Prefect flow/task run's logs.

    Attaches a Prefect API handler to the logger unless one is already there (``PREFECT_LOGGING_EXTRA_LOGGERS``)
    and lowers the logger's level to ``level`` if it is stricter; both are undone on exit (reference-counted, so
    nested and concurrent uses are safe). Yields the logger.
    """
    logger = logging.getLogger(logger_name)
    with _lock:
        state = _active.get(logger_name)
        if state is None:
            handler = None
            if not _already_forwarded(logger):
                handler = LibraryAPILogHandler(logger_name)
                logger.addHandler(handler)
            previous_level = None
            if logger.getEffectiveLevel() > level:
                previous_level = logger.level
                logger.setLevel(level)
            state = _active[logger_name] = [handler, 0, previous_level]
        state[1] += 1
    try:
        yield logger
    finally:
        with _lock:
            state[1] -= 1
            if state[1] == 0:
                del _active[logger_name]
                handler, _, previous_level = state
                if handler is not None:
                    logger.removeHandler(handler)
                if previous_level is not None:
                    logger.setLevel(previous_level)


def submit_with_context(executor: Executor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """``executor.submit(fn, *args, **kwargs)`` run inside a copy of the caller's ``contextvars`` context, so the
    Prefect run context (and thus log forwarding) follows the work into the worker thread."""
    context = contextvars.copy_context()
    return executor.submit(context.run, fn, *args, **kwargs)


class _ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A thread pool whose every submission runs in a copy of the submitter's context."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:  # type: ignore[override]
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)


def context_thread_pool(max_workers: int | None = None, thread_name_prefix: str = "aodncore") -> ThreadPoolExecutor:
    """A ``ThreadPoolExecutor`` (usable as a context manager) that carries the caller's context into each task.

    ``map`` and ``submit`` both copy the context at submission time.
    """
    return _ContextThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
