"""ASGI middleware in front of the Prefect app: answers the identity probe and keeps track of API activity."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aodncore.prefect.localserver.state import IDENTITY_PATH

__all__ = ["ActivityTracker"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ActivityTracker:
    """Wraps an ASGI app; ``GET /aodncore/identity`` returns ``identity()`` as JSON without touching the app.

    Every other HTTP request and websocket counts as activity: :attr:`in_flight` is the number open now and
    :meth:`idle_for` the seconds since the last one ended (0 while any is open). Identity probes do not count, so
    ``aodncore server status`` does not keep an idle server alive.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], identity: Callable[[], dict]) -> None:
        self.app = app
        self.identity = identity
        self.in_flight = 0
        self._last = time.monotonic()

    def idle_for(self) -> float:
        return 0.0 if self.in_flight else time.monotonic() - self._last

    @property
    def last_active(self) -> float:
        """When (``time.monotonic()``) the last request or websocket ended."""
        return self._last

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope.get("path") == IDENTITY_PATH:
            await self._send_identity(send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self._last = time.monotonic()

    async def _send_identity(self, send: Send) -> None:
        body = json.dumps(self.identity()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
