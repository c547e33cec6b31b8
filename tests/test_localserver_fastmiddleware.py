"""The background server's plain ``default_content_type`` middleware does what Prefect's function does.

* The same requests (each method; with and without a body, a ``Content-Type``, a ``Content-Length``) sent through
  Prefect's own ``default_content_type`` (taken from the app Prefect builds, run in Starlette's
  ``BaseHTTPMiddleware`` as Prefect registers it) and through :class:`DefaultContentType`: the app behind sees the
  same headers and body, the client gets the same status, headers and body; a ``Content-Length`` that is not a
  number fails the same way.
* The app Prefect builds, with :func:`install`: its one ``BaseHTTPMiddleware`` entry replaced, the others kept.
* Version gating, the off switch.
"""

from __future__ import annotations

import asyncio
import json

import pytest

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def prefect_api_app(tmp_path_factory):
    home = tmp_path_factory.mktemp("fastmiddleware-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_HOME", str(home))
        from prefect.server.api import server

        create = getattr(server.create_api_app, "__wrapped__", server.create_api_app)  # Prefect's own
        return create(ignore_cache=True)


def _echo_app(seen: list):
    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append((scope["method"], list(scope["headers"]), body))
        payload = json.dumps({"headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                              "body": body.decode()}).encode()
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"x-echo", b"1"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


REQUESTS = [
    (method, headers, body)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    for headers, body in (
        ({}, b""),
        ({}, b'{"a": 1}'),
        ({"Content-Type": "text/plain"}, b"plain"),
        ({"content-type": "application/json"}, b"[]"),
        ({"Content-Length": "0"}, b""),
        ({"X-Other": "y"}, b"x" * 3000),
    )
]


async def _send_all(app) -> list:
    import httpx

    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for method, headers, body in REQUESTS:
            response = await client.request(method, "/anything", headers=headers, content=body or None)
            answers.append((response.status_code, sorted(response.headers.multi_items()), response.content))
    return answers


def test_the_plain_middleware_changes_and_answers_requests_as_prefects_function(prefect_api_app):
    from starlette.middleware.base import BaseHTTPMiddleware

    from aodncore.prefect.localserver.fastmiddleware import DefaultContentType, _is_prefects_default_content_type

    entry = next(entry for entry in prefect_api_app.user_middleware if _is_prefects_default_content_type(entry))
    prefects_seen: list = []
    ours_seen: list = []
    prefects = BaseHTTPMiddleware(_echo_app(prefects_seen), dispatch=entry.kwargs["dispatch"])
    ours = DefaultContentType(_echo_app(ours_seen))
    expected, got = asyncio.run(_send_all(prefects)), asyncio.run(_send_all(ours))
    assert got == expected
    assert ours_seen == prefects_seen and len(ours_seen) == len(REQUESTS)
    added = [(method, body) for (method, headers, body), (_, sent, _) in zip(ours_seen, REQUESTS)
             if (b"content-type", b"application/json") in headers and "content-type" not in map(str.lower, sent)]
    # the default really was added where Prefect adds it: a body-carrying method with a body and no content type
    assert sorted(added) == sorted((method, body) for method in ("POST", "PUT", "PATCH")
                                   for body in (b'{"a": 1}', b"x" * 3000))


def test_a_content_length_that_is_not_a_number_fails_as_in_prefects_function(prefect_api_app):
    from starlette.middleware.base import BaseHTTPMiddleware

    from aodncore.prefect.localserver.fastmiddleware import DefaultContentType, _is_prefects_default_content_type

    entry = next(entry for entry in prefect_api_app.user_middleware if _is_prefects_default_content_type(entry))
    scope = {"type": "http", "method": "POST", "path": "/x", "raw_path": b"/x", "root_path": "", "scheme": "http",
             "query_string": b"", "headers": [(b"content-length", b"abc")], "server": ("test", 80),
             "client": ("test", 1), "http_version": "1.1", "asgi": {"version": "3.0"}}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    def failure(app) -> type:
        try:
            asyncio.run(app(dict(scope), receive, send))
        except Exception as error:  # noqa: BLE001 - the type is what is compared
            while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
                error = error.exceptions[0]
            return type(error)
        return type(None)

    assert failure(DefaultContentType(_echo_app([]))) is ValueError
    assert failure(BaseHTTPMiddleware(_echo_app([]), dispatch=entry.kwargs["dispatch"])) is ValueError


def test_install_replaces_only_prefects_entry_and_only_when_verified(monkeypatch, caplog, tmp_path):
    import prefect
    from prefect.server.api import server

    from aodncore.prefect.localserver import fastmiddleware
    from aodncore.prefect.localserver.fastevents import VERIFIED_PREFECT_VERSIONS

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    original = getattr(server.create_api_app, "__wrapped__", server.create_api_app)
    monkeypatch.setattr(server, "create_api_app", original)
    caplog.set_level("INFO", logger="aodncore.prefect.localserver")

    monkeypatch.setenv(fastmiddleware.ENV_FAST_MIDDLEWARE, "0")
    assert fastmiddleware.install() is False and server.create_api_app is original
    monkeypatch.delenv(fastmiddleware.ENV_FAST_MIDDLEWARE)
    with monkeypatch.context() as versions:
        versions.setattr(prefect, "__version__", "3.0.0")
        assert fastmiddleware.install() is False and server.create_api_app is original
    assert "its default_content_type runs in BaseHTTPMiddleware" in caplog.text
    if prefect.__version__ not in VERIFIED_PREFECT_VERSIONS:
        pytest.skip(f"Prefect {prefect.__version__} not verified")
    assert fastmiddleware.install() is True
    wrapped = server.create_api_app
    assert fastmiddleware.install() is True and server.create_api_app is wrapped  # not wrapped twice
    before = [entry.cls for entry in original(ignore_cache=True).user_middleware]
    after = [entry.cls for entry in wrapped(ignore_cache=True).user_middleware]
    assert [cls.__name__ for cls in before] == ["BaseHTTPMiddleware", "GZipMiddleware"]
    assert after == [fastmiddleware.DefaultContentType, *before[1:]]
