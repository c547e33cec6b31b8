"""The background server's routing shortcut routes every request as FastAPI's own routing does.

* Every path of Prefect's API app (each route's own path with its parameters filled in, with and without a trailing
  slash, and paths of no route), under each method, as HTTP and as websocket scopes: every router of the app
  answers the same (match kind and child scope) with the shortcut as without it, and most routers take it.
* Version gating, the off switch, installing twice.
"""

from __future__ import annotations

import copy
import re

import pytest

pytestmark = pytest.mark.prefect

_PARAM = re.compile(r"\{[^}]+\}")


@pytest.fixture(scope="module")
def api_app(tmp_path_factory):
    home = tmp_path_factory.mktemp("fastroutes-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_HOME", str(home))
        from prefect.server.api.server import create_app

        app = create_app(ignore_cache=True)
    return next(route.app for route in app.router.routes if getattr(route, "path", None) == "/api")


def _route_paths(routes) -> list[str]:
    from fastapi.routing import _IncludedRouter

    paths = []
    for route in routes:
        if isinstance(route, _IncludedRouter):
            paths.extend(_route_paths(route.original_router.routes))
        elif isinstance(getattr(route, "path", None), str):
            paths.append(route.path)
    return paths


def _scopes(api_app) -> list[dict]:
    paths = set()
    for path in _route_paths(api_app.router.routes):
        for value in ("0190a2b3-0000-7000-8000-00000000002a", "x"):
            concrete = _PARAM.sub(value, path)
            paths.update({concrete, concrete.rstrip("/") or "/", concrete.rstrip("/") + "/"})
    paths.update({"/", "", "/nothing", "/eventsX", "/events/", "/flow_runsfoo", "/flow_runs", "/ui", "/admin",
                  "/api/events", "/logs", "/v2", "/v2/", "/csrf-token/", "/health/"})
    scopes = []
    for path in sorted(paths):
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            scopes.append({"type": "http", "method": method, "path": "/api" + path, "root_path": "/api",
                           "headers": [], "query_string": b""})
        scopes.append({"type": "websocket", "path": "/api" + path, "root_path": "/api", "headers": [],
                       "query_string": b""})
    return scopes


def test_every_router_answers_every_path_as_without_the_shortcut(api_app):
    from fastapi.routing import _IncludedRouter

    from aodncore.prefect.localserver import fastroutes

    original = _IncludedRouter.matches
    original = getattr(original, "__wrapped__", original)
    shortcut = fastroutes._with_shortcut(original)
    routers = [route for route in api_app.router.routes if isinstance(route, _IncludedRouter)]
    taking_it = [router for router in routers if fastroutes.router_prefix(router) is not None]
    assert len(taking_it) >= 20, "the shortcut would hardly ever be taken"
    scopes = _scopes(api_app)
    assert len(scopes) > 1000
    full_matches = 0
    for scope in scopes:
        for router in routers:
            expected_scope, got_scope = copy.deepcopy(scope), copy.deepcopy(scope)
            expected = original(router, expected_scope)
            got = shortcut(router, got_scope)
            assert got == expected, (scope["type"], scope.get("method"), scope["path"])
            assert got_scope == expected_scope, scope["path"]  # and leaves the scope as FastAPI's does
            full_matches += expected[0].name == "FULL"
    assert full_matches > 200  # the scopes reach real endpoints, not only misses


def test_the_prefix_is_worked_out_again_when_a_router_changes():
    from fastapi import APIRouter, FastAPI
    from fastapi.routing import _IncludedRouter
    from starlette.routing import Match

    from aodncore.prefect.localserver import fastroutes

    def endpoint() -> None:
        return None

    inner = APIRouter()
    inner.add_api_route("/things/{thing}", endpoint, methods=["GET"])
    inner.add_api_route("/things/", endpoint, methods=["POST"])
    app = FastAPI()
    app.include_router(inner)
    included = next(route for route in app.router.routes if isinstance(route, _IncludedRouter))
    shortcut = fastroutes._with_shortcut(getattr(_IncludedRouter.matches, "__wrapped__", _IncludedRouter.matches))

    def scope(path: str) -> dict:
        return {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": [], "query_string": b""}

    assert fastroutes.router_prefix(included) == "/things/"
    assert shortcut(included, scope("/stuff"))[0] == Match.NONE
    assert shortcut(included, scope("/things/7"))[0] == Match.FULL
    inner.add_api_route("/stuff", endpoint, methods=["GET"])  # added after the router was included
    assert fastroutes.router_prefix(included) is None
    assert shortcut(included, scope("/stuff"))[0] == Match.FULL


def test_install_only_for_verified_versions_and_not_when_switched_off(monkeypatch, caplog):
    import fastapi
    import prefect
    from fastapi import routing

    from aodncore.prefect.localserver import fastroutes
    from aodncore.prefect.localserver.fastevents import VERIFIED_PREFECT_VERSIONS

    original = routing._IncludedRouter.matches
    monkeypatch.setattr(routing._IncludedRouter, "matches", getattr(original, "__wrapped__", original))
    plain = routing._IncludedRouter.matches
    caplog.set_level("INFO", logger="aodncore.prefect.localserver")

    monkeypatch.setenv(fastroutes.ENV_FAST_ROUTES, "0")
    assert fastroutes.install() is False and routing._IncludedRouter.matches is plain
    monkeypatch.delenv(fastroutes.ENV_FAST_ROUTES)
    with monkeypatch.context() as versions:
        versions.setattr(fastapi, "__version__", "0.1.0")
        assert fastroutes.install() is False and routing._IncludedRouter.matches is plain
        versions.setattr(fastapi, "__version__", sorted(fastroutes.VERIFIED_FASTAPI_VERSIONS)[0])
        versions.setattr(prefect, "__version__", "3.0.0")
        assert fastroutes.install() is False and routing._IncludedRouter.matches is plain
    assert "FastAPI's own request routing kept" in caplog.text
    if fastapi.__version__ not in fastroutes.VERIFIED_FASTAPI_VERSIONS or \
            prefect.__version__ not in VERIFIED_PREFECT_VERSIONS:
        pytest.skip(f"FastAPI {fastapi.__version__} / Prefect {prefect.__version__} not verified")
    assert fastroutes.install() is True
    installed = routing._IncludedRouter.matches
    assert installed is not plain and installed.__wrapped__ is plain
    assert fastroutes.install() is True and routing._IncludedRouter.matches is installed  # not wrapped twice
