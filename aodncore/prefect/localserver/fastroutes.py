"""Cheaper request routing inside the background server, with every request routed as before.

FastAPI 0.150 finds a request's endpoint by asking each of the API's 30-odd included routers in turn whether one
of its routes matches, and each router asks each of its routes (a regular expression and a scope look-up per
route): ~1–1.3 ms of server CPU for a ``POST /api/events`` (the events router comes 29th), ~0.3–1 ms for most other
calls, on every request a run makes. Every route of one of Prefect's routers starts with that router's prefix
(``/flow_runs``, ``/events``, …), so a router none of whose paths can start the way the request's path starts
cannot match it. :func:`install` gives each included router a first look at that: when the request's path does
not begin with the literal text that all of the router's route paths begin with (the text before the first
``{param}``), the router answers "no match" at once — what asking each of its routes would have answered; otherwise
it asks its routes as before. The shortcut is only taken for routers whose routes are all plain path routes
(FastAPI's ``APIRoute`` and websocket routes, Starlette's ``Route``) included without a further prefix, and is
worked out again when a router's routes change.

``tests/test_localserver_fastroutes.py`` routes every path of Prefect's API (each route's own path, with and
without a trailing slash, under each method, as HTTP and websocket scopes, and paths of no route) through every
router with and without the shortcut and compares the answers.

The method replaced belongs to FastAPI's private ``_IncludedRouter``, so this is installed only for the FastAPI and
Prefect versions it was checked against (:data:`VERIFIED_FASTAPI_VERSIONS`,
:data:`aodncore.prefect.localserver.patchgate.VERIFIED_PREFECT_VERSIONS`); any other keeps FastAPI's routing and
``server.log`` says so. ``AODNCORE_SERVER_FAST_ROUTES=0`` keeps it too.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aodncore.prefect.localserver import patchgate
from aodncore.prefect.localserver.settings import ENV_FAST_ROUTES

__all__ = ["ENV_FAST_ROUTES", "VERIFIED_FASTAPI_VERSIONS", "install", "router_prefix"]

logger = logging.getLogger("aodncore.prefect.localserver")

VERIFIED_FASTAPI_VERSIONS = frozenset({"0.150.0"})
"""FastAPI versions whose ``_IncludedRouter.matches`` the shortcut was checked against."""

_CACHE = "_aodncore_route_prefix"


def _plain_route_types() -> tuple[type, ...]:
    from fastapi.routing import APIRoute, APIWebSocketRoute
    from starlette.routing import Route, WebSocketRoute

    return APIRoute, APIWebSocketRoute, Route, WebSocketRoute


def _is_plain(route: Any, path: str, plain: tuple[type, ...]) -> bool:
    """A route matched by the regular expression of ``path`` alone, as FastAPI's and Starlette's own route types
    are (a subclass such as Prefect's ``PrefectAPIRoute`` counts when it keeps its base's ``matches``)."""
    from starlette.routing import compile_path

    base = next((kind for kind in plain if isinstance(route, kind)), None)
    if base is None or type(route).matches is not base.matches:
        return False
    regex = getattr(route, "path_regex", None)
    return regex is not None and regex.pattern == compile_path(path)[0].pattern


def router_prefix(included: Any) -> str | None:
    """The literal start all route paths of an included router share (None: no shortcut for this router)."""
    router = included.original_router
    version = router._get_routes_version()
    cached = included.__dict__.get(_CACHE)
    if cached is not None and cached[0] == version:
        return cached[1]
    prefix: str | None = None
    plain = _plain_route_types()
    routes = list(router.routes)
    paths = [getattr(route, "path", None) for route in routes]
    if routes and included.include_context.prefix == "" and \
            all(isinstance(path, str) and _is_plain(route, path, plain) for route, path in zip(routes, paths)):
        literal = [path.split("{", 1)[0] for path in paths]
        prefix = os.path.commonprefix(literal)
        if len(prefix) <= 1:  # "" or "/": every path may start so
            prefix = None
    included.__dict__[_CACHE] = (version, prefix)
    return prefix


def _with_shortcut(original: Any) -> Any:
    from starlette._utils import get_route_path
    from starlette.routing import Match

    def matches(self: Any, scope: Any) -> tuple[Any, Any]:
        prefix = router_prefix(self)
        if prefix is not None and not get_route_path(scope).startswith(prefix):
            scope.setdefault("fastapi", {})  # as FastAPI's own matches leaves the scope (its keys restored)
            return Match.NONE, {}
        return original(self, scope)

    matches.aodncore_fast_routes = True  # type: ignore[attr-defined]
    matches.__wrapped__ = original  # type: ignore[attr-defined]
    return matches


def install() -> bool:
    """Install the routing shortcut in this (server) process for verified FastAPI/Prefect versions; True if done."""
    import fastapi
    import prefect

    def fits() -> bool:
        from fastapi import routing

        included = getattr(routing, "_IncludedRouter", None)
        return included is not None and callable(getattr(included, "matches", None))

    def patch() -> str:
        from fastapi import routing

        included = routing._IncludedRouter
        if not getattr(included.matches, "aodncore_fast_routes", False):
            included.matches = _with_shortcut(included.matches)
        return f"FastAPI {fastapi.__version__}: requests routed past routers whose paths cannot match"

    return patchgate.install(
        logger, ENV_FAST_ROUTES, off="FastAPI's own request routing kept", fits=fits, patch=patch,
        verified=fastapi.__version__ in VERIFIED_FASTAPI_VERSIONS and patchgate.prefect_verified(),
        kept=lambda: f"FastAPI {fastapi.__version__}, Prefect {prefect.__version__}: FastAPI's own request routing "
                     f"kept (aodncore's shortcut was verified for FastAPI "
                     f"{patchgate.versions(VERIFIED_FASTAPI_VERSIONS)})")
