"""Serve an ASGI app with uvicorn on a free loopback port, in a background thread.

A real server and real sockets: tests talk HTTP to it exactly as clients do.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class ServedApp:
    url: str
    server: uvicorn.Server


@contextlib.contextmanager
def serve(app: Any, *, lifespan: str = "on") -> Iterator[ServedApp]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # As `simlab up` serves (simlab.cli.platform.WS_SERVER_ARGS): no per-message deflate.
    config = uvicorn.Config(
        app, lifespan=lifespan, log_level="warning", ws="auto", ws_per_message_deflate=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield ServedApp(url=f"http://127.0.0.1:{port}", server=server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def scripted_log(server: ServedApp) -> list[dict[str, Any]]:
    """The requests the scripted model server (simlab.assistant.scripted) has seen."""
    import httpx

    entries: list[dict[str, Any]] = httpx.get(f"{server.url}/scripted/log").json()
    return entries
