"""Pure ASGI middleware: the access log and request metrics, and the request body limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist import logs, metrics

log = logging.getLogger("mnist.access")


def routes_for(routes: Sequence[BaseRoute], scope: Scope) -> list[BaseRoute]:
    """The routes whose path matches the request's, whatever their methods (FULL or PARTIAL matches)."""
    return [route for route in routes if route.matches(scope)[0] != Match.NONE]


class AccessLog:
    """One structured line and one histogram sample per request: method, route template, status, latency.

    The route is the template (/api/v1/predictions/{record_id}), never the path, so the metric keeps a
    few series; paths no route takes count as "unmatched". No header, query or body is logged.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            seconds = time.perf_counter() - started
            matched = routes_for(self.routes, scope)
            route = getattr(matched[0], "path", "unmatched") if matched else "unmatched"
            metrics.REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(seconds)
            logs.event(log, "request", method=scope["method"], route=route, status=status, ms=round(seconds * 1000, 1))


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes the limit; FastAPI passes HTTPExceptions through body parsing."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the {limit:,}-byte limit")


class BodyLimit:
    """Refuse bodies over `limit` bytes from Content-Length up front and while they stream."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            status = 413 if length.isdigit() else 400
            detail = BodyTooLarge(self.limit).detail if status == 413 else "invalid Content-Length header"
            await JSONResponse({"detail": detail}, status, headers={"Connection": "close"})(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # chunked bodies carry no Content-Length: count what arrives
                    raise BodyTooLarge(self.limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge as exc:  # raised outside FastAPI's own body parsing (e.g. a raw stream read)
            if started:
                raise
            await JSONResponse({"detail": exc.detail}, 413, headers={"Connection": "close"})(scope, receive, send)
