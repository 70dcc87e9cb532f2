"""ASGI middleware shared by the Django and FastAPI apps (and the router in front of both)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from simlab.core.context import (
    REQUEST_ID_HEADER,
    clean_request_id,
    reset_request_id,
    set_request_id,
)
from simlab.core.metrics import LIVE_SOCKETS, observe_request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = REQUEST_ID_HEADER.lower().encode()

access_log = structlog.get_logger("simlab.access")


def route_of(scope: Scope) -> str:
    """The matched route's template (`/compute/runs/{run_id}`), never the raw path: a label
    of bounded cardinality. Django's side writes it into the scope's state
    (simlab.platform.middleware.RouteLabelMiddleware); on FastAPI's, a matched route leaves
    its path parameters in the scope, and each segment holding one becomes its name."""
    route = scope.get("state", {}).get("route")
    if route:
        return str(route)
    if scope.get("route") is None:
        return "unmatched"
    by_value = {str(value): name for name, value in scope.get("path_params", {}).items()}
    segments = str(scope.get("path", "")).split("/")
    return "/".join(f"{{{by_value[s]}}}" if s in by_value else s for s in segments)


def _status_of(message: Message) -> int | None:
    kind = message["type"]
    if kind == "http.response.start":
        return int(message["status"])
    if kind == "websocket.accept":
        return 101
    if kind == "websocket.close":
        return 403  # closed before it was accepted (an accepted socket keeps 101)
    return None


class RequestIdMiddleware:
    """Takes `X-Request-ID` (or makes one), binds it for logs, and returns it; writes one
    access line per request (a socket: when it closes) with its status, route and latency.

    Idempotent: when an outer app already set the id, an inner one keeps it and leaves
    the access line to the outer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        request_id = state.get("request_id")
        outermost = request_id is None
        if request_id is None:
            incoming = next((v for k, v in scope.get("headers", []) if k == _HEADER), None)
            request_id = clean_request_id(incoming.decode("latin-1") if incoming else None)
            state["request_id"] = request_id
        token = set_request_id(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status: int | None = None
        open_socket: str | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, open_socket
            if status is None:
                status = _status_of(message)
                if status == 101 and outermost:
                    open_socket = route_of(scope)
                    LIVE_SOCKETS.labels(open_socket).inc()
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                headers.append((_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if open_socket is not None:
                LIVE_SOCKETS.labels(open_socket).dec()
            if outermost:
                self._record(scope, status, time.perf_counter() - started, open_socket)
            structlog.contextvars.unbind_contextvars("request_id")
            reset_request_id(token)

    @staticmethod
    def _record(scope: Scope, status: int | None, seconds: float, route: str | None) -> None:
        # No response started: the app raised (uvicorn answers 500) or the client left.
        final = status if status is not None else 500
        route = route or route_of(scope)  # a socket's route was found when it opened
        method = scope.get("method", "WS")
        observe_request(method, route, final, seconds)
        access_log.info(
            "request",
            method=method,
            path=scope.get("path", ""),
            route=route,
            status=final,
            duration_ms=round(seconds * 1000, 2),
            client=(scope.get("client") or ("",))[0],
        )
