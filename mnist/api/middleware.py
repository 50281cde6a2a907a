"""Pure ASGI middleware: the access log and request metrics, security headers, cross-origin writes, body limits."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import anyio
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
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

    CACHED_PATHS = 4096  # route names remembered by path (ids make many paths: the cache is emptied when full)

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        self._route_of: dict[str, str] = {}

    def route_name(self, scope: Scope) -> str:
        """The template of the route whose path matches (before the app runs: a Mount rewrites the scope's paths)."""
        path = scope["path"]
        name = self._route_of.get(path)
        if name is None:
            matched = routes_for(self.routes, scope)
            name = getattr(matched[0], "path", "unmatched") if matched else "unmatched"
            if len(self._route_of) >= self.CACHED_PATHS:
                self._route_of.clear()
            self._route_of[path] = name
        return name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering
        route = self.route_name(scope)

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            seconds = time.perf_counter() - started
            metrics.REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(seconds)
            logs.event(log, "request", method=scope["method"], route=route, status=status, ms=round(seconds * 1000, 1))


# Every response, API and dashboard alike (deploy/nginx.conf sends the same values; a test keeps them equal).
# SAMEORIGIN, not DENY: the drawing canvas is a same-origin iframe. No script-src/style-src: Streamlit
# injects inline styles and its charts compile expressions at run time, which a strict policy blocks.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": "frame-ancestors 'self'; object-src 'none'; base-uri 'self'",
}
_SECURITY_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


class SecurityHeaders:
    """Add SECURITY_HEADERS to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in _SECURITY_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _host_port(netloc: str, scheme: str) -> str:
    """host[:port] with the scheme's default port dropped, lower-cased: how two origins are compared."""
    netloc = netloc.lower()
    default = _DEFAULT_PORTS.get(scheme)
    return netloc[: -len(default) - 1] if default and netloc.endswith(f":{default}") else netloc


class CrossOriginWrites:
    """Refuse (403) a write whose Origin is neither this server's nor in `allowed` ("*": any origin).

    A browser sends a multipart or form POST to another site without asking first (a "simple" request):
    CORS only stops it reading the answer, not the server acting on it. Requests without an Origin
    (scripts, curl, the original client) are not from a browser page and pass.
    """

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = set(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._allowed(origin, headers.get("host", "")):
                metrics.CROSS_ORIGIN_REFUSED.inc()
                logs.event(
                    log, "cross_origin_refused", level=logging.WARNING, origin=origin[:200], path=scope["path"][:200]
                )
                detail = f"cross-origin {scope['method']} from {origin[:200]} refused; see MNIST_ALLOWED_ORIGINS"
                await JSONResponse({"detail": detail}, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _allowed(self, origin: str, host: str) -> bool:
        if "*" in self.allowed or origin.rstrip("/") in self.allowed:
            return True
        scheme, _, netloc = origin.partition("://")
        return bool(host) and _host_port(netloc, scheme) == _host_port(host, scheme)


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes the limit; FastAPI passes HTTPExceptions through body parsing."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the {limit:,}-byte limit")


class BodyStalled(HTTPException):
    """Raised from `receive` when a body stops arriving (a lying Content-Length, a client gone quiet)."""

    def __init__(self, why: str) -> None:
        super().__init__(408, f"request body timed out: {why}", headers={"Connection": "close"})


class BodyLimit:
    """Bodies over `limit` bytes (None: any size) are refused, up front from Content-Length and while they
    stream; bodies that stall for `stall_seconds`, or take longer than TOTAL_SECONDS in all, are cut off.

    A stalled body would otherwise hold its connection for as long as the client likes.
    """

    TOTAL_SECONDS = 60.0  # a whole body: 10 MB at about 1.4 Mbit/s

    def __init__(self, app: ASGIApp, limit: int | None, stall_seconds: float) -> None:
        self.app = app
        self.limit = limit
        self.stall_seconds = stall_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or (self.limit is not None and int(length) > self.limit)):
            status = 413 if length.isdigit() else 400
            detail = BodyTooLarge(self.limit or 0).detail if status == 413 else "invalid Content-Length header"
            await JSONResponse({"detail": detail}, status, headers={"Connection": "close"})(scope, receive, send)
            return
        received = 0
        complete = False
        started = False
        deadline = time.monotonic() + self.TOTAL_SECONDS

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body, receive() waits for the client to go away: no limit on that
                return await receive()
            wait = min(self.stall_seconds, deadline - time.monotonic())
            try:
                with anyio.fail_after(max(wait, 0)):
                    message = await receive()
            except TimeoutError:
                why = f"no data for {self.stall_seconds:g} s" if wait == self.stall_seconds else "it took over 60 s"
                metrics.BODY_TIMEOUTS.inc()
                logs.event(log, "request_body_stalled", level=logging.WARNING, path=scope["path"][:200], why=why)
                raise BodyStalled(why) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if self.limit is not None and received > self.limit:  # chunked bodies carry no Content-Length
                    raise BodyTooLarge(self.limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, watching_send)
        except (BodyTooLarge, BodyStalled) as exc:  # raised outside FastAPI's own body parsing (a raw stream read)
            if started:
                raise
            await JSONResponse({"detail": exc.detail}, exc.status_code, headers={"Connection": "close"})(
                scope, receive, send
            )
