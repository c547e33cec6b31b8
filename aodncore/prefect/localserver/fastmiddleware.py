"""Prefect's one ``@app.middleware("http")`` function as plain ASGI middleware in the background server.

Prefect 3.9.1's API app has one function middleware, ``default_content_type``: a ``POST``/``PUT``/``PATCH`` with a
body but no ``Content-Type`` (older Prefect clients) gets ``Content-Type: application/json`` added to its scope.
Registered with ``@app.middleware("http")``, it runs inside Starlette's ``BaseHTTPMiddleware``, which hands each
request to the rest of the app in a task of its own and streams the response back through memory channels: ~0.5 ms
of server CPU per request (~30 % of a small request's), on every call a run makes. :class:`DefaultContentType`
makes the same change to the same requests as a plain ASGI middleware, in the same place of the middleware stack.

:func:`install` wraps ``prefect.server.api.server.create_api_app`` so that the app it builds carries
:class:`DefaultContentType` in place of that one ``BaseHTTPMiddleware`` entry (any other middleware, and the
entry if its function is not Prefect's ``default_content_type``, stay as they are). Version-gated
(:data:`aodncore.prefect.localserver.patchgate.VERIFIED_PREFECT_VERSIONS`: the function copied is Prefect's), off
with ``AODNCORE_SERVER_FAST_MIDDLEWARE=0``; ``server.log`` says which. ``tests/test_localserver_fastmiddleware.py``
sends the same requests through Prefect's own function (in ``BaseHTTPMiddleware``) and through this one and compares
what the app behind sees and what the client gets back.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from aodncore.prefect.localserver import patchgate
from aodncore.prefect.localserver.settings import ENV_FAST_MIDDLEWARE

__all__ = ["ENV_FAST_MIDDLEWARE", "DefaultContentType", "install", "replace_default_content_type"]

logger = logging.getLogger("aodncore.prefect.localserver")


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class DefaultContentType:
    """``Content-Type: application/json`` for a ``POST``/``PUT``/``PATCH`` with a body and no content type, as
    Prefect's ``default_content_type`` (a ``Content-Length`` that is not a number fails as it does there)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in _BODY_METHODS:
            from starlette.datastructures import Headers

            headers = Headers(scope=scope)
            if "content-type" not in headers and int(headers.get("content-length", "0")) > 0:
                scope["headers"] = [*scope["headers"], (b"content-type", b"application/json")]
        await self.app(scope, receive, send)


def _is_prefects_default_content_type(entry: Any) -> bool:
    from starlette.middleware.base import BaseHTTPMiddleware

    dispatch = getattr(entry, "kwargs", {}).get("dispatch")
    return entry.cls is BaseHTTPMiddleware and getattr(dispatch, "__name__", "") == "default_content_type" and \
        getattr(dispatch, "__module__", "") == "prefect.server.api.server"


def replace_default_content_type(app: Any) -> bool:
    """Put :class:`DefaultContentType` in place of Prefect's ``default_content_type`` entry in ``app``'s middleware
    (before its middleware stack is built); True if it was there."""
    from starlette.middleware import Middleware

    for index, entry in enumerate(app.user_middleware):
        if _is_prefects_default_content_type(entry):
            app.user_middleware[index] = Middleware(DefaultContentType)
            return True
    return False


def _wrap_create_api_app(original: Any) -> Any:
    @functools.wraps(original)
    def create_api_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        if app.middleware_stack is None and not replace_default_content_type(app):
            logger.info("Prefect's API app has no default_content_type middleware: nothing replaced")
        return app

    create_api_app.aodncore_fast_middleware = True  # type: ignore[attr-defined]
    return create_api_app


def install() -> bool:
    """Wrap Prefect's ``create_api_app`` in this (server) process when the installed Prefect was verified."""
    import prefect

    def fits() -> bool:
        from prefect.server.api import server

        return callable(getattr(server, "create_api_app", None))

    def patch() -> str:
        from prefect.server.api import server

        if not getattr(server.create_api_app, "aodncore_fast_middleware", False):
            server.create_api_app = _wrap_create_api_app(server.create_api_app)
        return f"Prefect {prefect.__version__}: default_content_type as plain ASGI middleware"

    return patchgate.install(
        logger, ENV_FAST_MIDDLEWARE, off="Prefect's default_content_type runs in BaseHTTPMiddleware",
        fits=fits, patch=patch,
        kept=patchgate.prefect_line("its default_content_type runs in BaseHTTPMiddleware (aodncore's plain "
                                    "middleware was verified for {versions})"))
