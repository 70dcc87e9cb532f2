"""Small helpers for tests that speak WebSocket to a served app (`websockets` client)."""

from __future__ import annotations

import json
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.server import ServedApp


def open_ws(server: ServedApp, path: str, **kwargs: Any) -> ClientConnection:
    url = server.url.replace("http://", "ws://") + path
    return connect(url, proxy=None, open_timeout=10, **kwargs)


def recv(ws: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


def send(ws: ClientConnection, **message: Any) -> None:
    ws.send(json.dumps(message))


def recv_until_closed(
    ws: ClientConnection, timeout: float = 120
) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes; with the close code it sent."""
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            messages.append(recv(ws, timeout=max(0.1, deadline - time.monotonic())))
        except ConnectionClosed as closed:
            return messages, closed.rcvd.code if closed.rcvd is not None else None
