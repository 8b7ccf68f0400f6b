"""ASGI middleware: a trace id per request, and the HTTP metrics (requests, durations, in flight).

The trace id is the client's ``X-Request-ID`` when it is a plausible id (a proxy or the caller chose it),
else a new one; it is bound in the request's context variables, so every log line written while the
request is answered carries it (``kefu.obs.logs`` merges them), and it is returned in ``X-Request-ID``.
Requests are counted by their route template (``/v1/conversations/{conversation_id}/messages``), never by
their raw path: a path holds ids, and a scan of random URLs would add a series per URL.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Protocol

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode()
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{8,128}")
UNMATCHED_ROUTE = "unmatched"  # no route answered the path (404s of any URL)


class HttpObserver(Protocol):
    def http_started(self) -> None: ...

    def http_finished(self, route: str, method: str, status: int, seconds: float) -> None: ...


def request_id(scope: Scope) -> str:
    """The client's X-Request-ID when valid (8-128 of letters, digits and ``._:-``), else a new one."""
    for key, value in scope.get("headers") or ():
        if key == _HEADER_KEY and _VALID_ID.fullmatch(value):
            return bytes(value).decode("ascii")
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)  # {p:path} -> {p}
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class ObservedRequests:
    """``observer`` returns the metrics to report to, or None before the app's runtime is built."""

    def __init__(self, app: ASGIApp, observer: Callable[[], HttpObserver | None]) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        trace_id = request_id(scope)
        tokens = structlog.contextvars.bind_contextvars(trace_id=trace_id)
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send, trace_id)
            else:
                await self.app(scope, receive, send)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _http(self, scope: Scope, receive: Receive, send: Send, trace_id: str) -> None:
        observer = self.observer()
        status = 500  # what the server answers when the app raises before it starts a response
        header = (_HEADER_KEY, trace_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        if observer is None:
            await self.app(scope, receive, send_with_id)
            return
        started = time.perf_counter()
        observer.http_started()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            observer.http_finished(
                route_template(scope), scope.get("method", ""), status, time.perf_counter() - started
            )
