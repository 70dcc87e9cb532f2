"""A scripted external service for tests, benchmarks and demos: one aiohttp server that
answers as many fake services as there are paths, each behaving as told (healthy
after a delay, hanging, malformed, any status), plus a webhook receiver. Real sockets on
loopback: the checker talks to it exactly as to a real service.

    /s/<mode>/<delay ms>/<n>[/service-info|/health]   mode: ok, hang, malformed, status<code>
    /named/<name>[/...]       behaves as last set by POST /control/<name> {"mode", "delay_ms"}
    /auth/<token>[/...]       healthy with "Authorization: Bearer <token>", else 401
    GET /hits/<name>          how many checks /named/<name> has answered
    POST /hooks/<name>        records a webhook body; GET /hooks/<name> lists them

`python -m simlab.registry.scripted --port N [M ...]` serves it alone (benchmarks)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import ssl
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

SERVICE_INFO: dict[str, Any] = {
    "id": "org.example.fake",
    "name": "Fake WES",
    "type": {"group": "org.ga4gh", "artifact": "wes", "version": "1.1.0"},
    "organization": {"name": "Example", "url": "https://example.org"},
    "version": "1.0.0",
    "status": "ok",
    "workflow_type_versions": {"SimLab": {"workflow_type_version": ["1"]}},
    "supported_wes_versions": ["1.1.0"],
}


class _State:
    def __init__(self) -> None:
        self.modes: dict[str, dict[str, Any]] = {}
        self.hits: dict[str, int] = defaultdict(int)
        self.hooks: dict[str, list[Any]] = defaultdict(list)


async def _behave(mode: str, delay_ms: float) -> web.StreamResponse:
    if mode == "hang":
        await asyncio.sleep(3_600)
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)
    if mode == "malformed":
        return web.Response(text='{"id": "broken", ', content_type="application/json")
    if mode.startswith("status"):
        return web.json_response(SERVICE_INFO, status=int(mode.removeprefix("status") or 500))
    return web.json_response(SERVICE_INFO)


def create_app() -> web.Application:
    state = _State()

    async def fixed(request: web.Request) -> web.StreamResponse:
        info = request.match_info
        return await _behave(info["mode"], float(info["delay"]))

    async def named(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        state.hits[name] += 1
        mode = state.modes.get(name, {})
        return await _behave(str(mode.get("mode", "ok")), float(mode.get("delay_ms", 0)))

    async def guarded(request: web.Request) -> web.StreamResponse:
        wanted = f"Bearer {request.match_info['token']}"
        if request.headers.get("Authorization") != wanted:
            return web.json_response({"msg": "unauthorised"}, status=401)
        return await _behave("ok", 0)

    async def control(request: web.Request) -> web.StreamResponse:
        state.modes[request.match_info["name"]] = await request.json()
        return web.json_response({"ok": True})

    async def hits(request: web.Request) -> web.StreamResponse:
        return web.json_response(state.hits[request.match_info["name"]])

    async def hook(request: web.Request) -> web.StreamResponse:
        state.hooks[request.match_info["name"]].append(await request.json())
        return web.json_response({"ok": True})

    async def hook_list(request: web.Request) -> web.StreamResponse:
        return web.json_response(state.hooks[request.match_info["name"]])

    app = web.Application()
    app.router.add_get("/s/{mode}/{delay}/{n}{tail:.*}", fixed)
    app.router.add_get("/named/{name}{tail:.*}", named)
    app.router.add_get("/auth/{token}{tail:.*}", guarded)
    app.router.add_post("/control/{name}", control)
    app.router.add_get("/hits/{name}", hits)
    app.router.add_post("/hooks/{name}", hook)
    app.router.add_get("/hooks/{name}", hook_list)
    return app


@dataclass
class Served:
    url: str
    port: int


def free_port() -> int:
    """A loopback port nothing listens on (a "dead" service refuses connections there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def serve_in_thread(
    tls: ssl.SSLContext | None = None,
    app_factory: Callable[[], web.Application] | None = None,
) -> Iterator[Served]:
    """The scripted server (or `app_factory`'s) on a free loopback port, on its own event
    loop in a thread (HTTPS with `tls`)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    served: dict[str, Any] = {}

    async def start() -> web.AppRunner:
        # Handlers end with their client (a hanging answer must not outlive its check).
        runner = web.AppRunner(
            (app_factory or create_app)(),
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=0.5,
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096, ssl_context=tls)
        await site.start()
        served["port"] = runner.addresses[0][1]
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        served["runner"] = loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(served["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True, name="scripted-service")
    thread.start()
    if not ready.wait(20):
        raise RuntimeError("scripted service did not start")
    try:
        port = served["port"]
        scheme = "https" if tls is not None else "http"
        yield Served(url=f"{scheme}://127.0.0.1:{port}", port=port)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, nargs="+", default=[8099], help="one or more")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve_forever(args.port))
    else:
        uvloop.run(_serve_forever(args.port))


async def _serve_forever(ports: list[int]) -> None:
    """One app on several ports (many fake hosts for per-host limits), until killed."""
    runner = web.AppRunner(
        create_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
    )
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
