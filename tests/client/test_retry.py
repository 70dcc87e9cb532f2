"""The client waits out 429/503 answers that carry Retry-After, where a retry is safe.

The server is a real HTTP server on loopback that plays a busy platform: it refuses the
first requests with 429 and Retry-After, then answers (a stand-in for the platform's
edge, which is outside what the client can control)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from simlab.client import AsyncSimLabClient, SimLabClient, SimLabError

SIMULATION = {"id": 9, "project": 1, "algorithm": "dla", "status": "QUEUED", "seed": 1}


class BusyServer(ThreadingHTTPServer):
    refusals = 2  # answers of 429 before a success, per path
    retry_after = "0.1"
    seen: list[tuple[str, str, str | None]]
    counts: dict[str, int]


class Handler(BaseHTTPRequestHandler):
    server: BusyServer

    def _answer(self, body: Any, status: int = 200) -> None:
        self.server.seen.append((self.command, self.path, self.headers.get("Idempotency-Key")))
        count = self.server.counts.get(self.path, 0)
        self.server.counts[self.path] = count + 1
        if count < self.server.refusals:
            payload = b'{"error": {"code": "throttled", "message": "slow down", "details": {}}}'
            self.send_response(429)
            if self.server.retry_after:
                self.send_header("Retry-After", self.server.retry_after)
        else:
            payload = json.dumps(body).encode()
            self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer({"id": 1, "username": "ada", "scopes": ["read"]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(SIMULATION, 201)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def busy() -> Iterator[BusyServer]:
    server = BusyServer(("127.0.0.1", 0), Handler)
    server.seen, server.counts = [], {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: BusyServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_reads_and_creates_are_sent_again_after_retry_after(busy: BusyServer) -> None:
    with SimLabClient(_url(busy), api_key="slk_test_key") as client:
        assert client.me().username == "ada"
        assert client.create_simulation(1, "dla", {"n_particles": 10}).id == 9
    gets = [s for s in busy.seen if s[0] == "GET"]
    posts = [s for s in busy.seen if s[0] == "POST"]
    assert len(gets) == 3
    assert len(posts) == 3
    keys = {key for _, _, key in posts}  # one create, sent three times with one key
    assert len(keys) == 1
    assert None not in keys


def test_the_async_client_retries_alike(busy: BusyServer) -> None:
    import asyncio

    async def scenario() -> str:
        async with AsyncSimLabClient(_url(busy), api_key="slk_test_key") as client:
            return (await client.me()).username

    assert asyncio.run(scenario()) == "ada"
    assert len(busy.seen) == 3


def test_it_gives_up_after_its_attempts_and_without_retry_after(busy: BusyServer) -> None:
    busy.refusals = 100
    with SimLabClient(_url(busy), api_key="slk_test_key") as client, pytest.raises(SimLabError):
        client.me()
    assert len(busy.seen) == 4  # RETRY_ATTEMPTS

    busy.seen.clear()
    busy.counts.clear()
    busy.retry_after = ""
    with SimLabClient(_url(busy), api_key="slk_test_key") as client, pytest.raises(SimLabError):
        client.me()
    assert len(busy.seen) == 1
