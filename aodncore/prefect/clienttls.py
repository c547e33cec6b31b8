"""One verified TLS context for all of this process's Prefect API clients, instead of one per client.

Prefect builds a new ``ssl.SSLContext`` for every API client it makes, loading the whole CA bundle each time
(``ssl.create_default_context(cafile=certifi.where())``: 25-50 ms of CPU), and a flow run makes at least one client
— also against a plain ``http://`` local server, which never uses it. An ``SSLContext`` is made to be shared by
connections and threads, so :func:`install` hands Prefect's client module a stand-in for the ``ssl`` module whose
``create_default_context(cafile=...)`` returns the context already built for that CA file (rebuilt when the file
changes). Everything else is the real ``ssl`` module; the context Prefect builds for
``PREFECT_API_TLS_INSECURE_SKIP_VERIFY`` (made without a CA file, then changed) is never shared. Verification is
exactly as before: same CA file, same defaults. ``AODNCORE_SHARED_TLS_CONTEXT=0`` turns it off.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

__all__ = ["install"]

_lock = threading.Lock()
_contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}


class _SharedContexts:
    """Stands in for the ``ssl`` module in ``prefect.client.orchestration`` (only there)."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def create_default_context(self, purpose: Any = ssl.Purpose.SERVER_AUTH, *, cafile: str | None = None,
                               capath: str | None = None, cadata: Any = None) -> ssl.SSLContext:
        if cafile is None or capath is not None or cadata is not None:
            return self._real.create_default_context(purpose, cafile=cafile, capath=capath, cadata=cadata)
        try:
            found = os.stat(cafile)
        except OSError:
            return self._real.create_default_context(purpose, cafile=cafile)  # the real error, if any
        key = (purpose, os.path.realpath(cafile), found.st_mtime_ns, found.st_size)
        with _lock:
            context = _contexts.get(key)
            if context is None:
                context = self._real.create_default_context(purpose, cafile=cafile)
                _contexts.clear()  # only the newest per process
                _contexts[key] = context
            return context


def install() -> None:
    """Share verified TLS contexts between Prefect's API clients in this process (idempotent)."""
    if os.environ.get("AODNCORE_SHARED_TLS_CONTEXT", "1").strip() == "0":
        return
    from prefect.client import orchestration

    current = getattr(orchestration, "ssl", None)
    if current is ssl:
        orchestration.ssl = _SharedContexts(ssl)  # type: ignore[attr-defined]
