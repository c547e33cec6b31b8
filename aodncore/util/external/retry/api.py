"""``retry(exceptions, tries, delay, max_delay, backoff, jitter, logger)`` and ``retry_call(f, fargs, fkwargs, ...)``:
the classic names of :func:`aodncore.util.external.retry_decorator` and :func:`aodncore.util.external.retry_call`."""

from aodncore.util.external import retry_call
from aodncore.util.external import retry_decorator as retry

__all__ = ["retry", "retry_call"]
