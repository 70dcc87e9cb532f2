"""The proxy's pooled HTTP client to the compute service, behind one small interface.

One client per process, opened and closed with the application's lifespan (or on first
use where no lifespan runs). Two implementations, chosen by `SIMLAB_PROXY_CLIENT`:
aiohttp (the default) and httpx. `benchmarks/proxy.py` measures both: httpx's async pool
is known to slow down under high concurrency (encode/httpx#3215), and there it was the
slower one and failed most of 1,000 concurrent streams, where aiohttp kept them all.

Responses are streamed: bodies are relayed as raw bytes (no decompression), chunk by
chunk, and closing the response releases the upstream connection.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Protocol

from django.conf import settings

from simlab.core.errors import ApplicationError


class UpstreamUnavailable(ApplicationError):
    status_code = 502
    code = "bad_gateway"


class UpstreamTimeout(ApplicationError):
    status_code = 504
    code = "gateway_timeout"


@dataclass(frozen=True)
class ClientSettings:
    max_connections: int
    connect_timeout_s: float
    read_timeout_s: float
    pool_timeout_s: float

    @classmethod
    def from_settings(cls) -> ClientSettings:
        options: dict[str, Any] = settings.SIMLAB_PROXY
        return cls(**options)


class UpstreamResponse(Protocol):
    status_code: int
    headers: list[tuple[str, str]]

    def iter_raw(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> UpstreamResponse:
        """Send a request; the response's headers are in, its body not yet read.

        Raises UpstreamUnavailable (cannot connect, connection broken) or UpstreamTimeout.
        """
        ...

    async def aclose(self) -> None: ...


def _unavailable(exc: Exception) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        "The compute service cannot be reached.", details={"reason": type(exc).__name__}
    )


def _timeout(exc: Exception) -> UpstreamTimeout:
    return UpstreamTimeout(
        "The compute service did not answer in time.", details={"reason": type(exc).__name__}
    )


# --- httpx ------------------------------------------------------------------------------------
class _HttpxResponse:
    def __init__(self, response: Any) -> None:
        self._response = response
        self.status_code: int = response.status_code
        self.headers: list[tuple[str, str]] = list(response.headers.multi_items())

    async def iter_raw(self) -> AsyncIterator[bytes]:
        import httpx

        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TimeoutException as exc:
            raise _timeout(exc) from exc
        except httpx.TransportError as exc:
            raise _unavailable(exc) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxUpstream:
    def __init__(self, options: ClientSettings) -> None:
        import httpx

        self._httpx = httpx
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(
                # Every pooled connection may stay open, as with aiohttp's connector.
                max_connections=options.max_connections,
                max_keepalive_connections=options.max_connections,
            ),
            timeout=httpx.Timeout(
                connect=options.connect_timeout_s,
                read=options.read_timeout_s,
                write=options.read_timeout_s,  # aiohttp has no write timeout: one knob
                pool=options.pool_timeout_s,
            ),
            # Upstream cookies are not the proxy's to keep (they would reach other users).
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            follow_redirects=False,
            trust_env=False,  # loopback/internal hop: never via an environment proxy
        )

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> UpstreamResponse:
        httpx = self._httpx
        request = self._client.build_request(method, url, headers=dict(headers), content=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise _timeout(exc) from exc
        except httpx.TransportError as exc:
            raise _unavailable(exc) from exc
        return _HttpxResponse(response)

    async def aclose(self) -> None:
        await self._client.aclose()


# --- aiohttp ----------------------------------------------------------------------------------
class _AiohttpResponse:
    def __init__(self, response: Any, on_close: Callable[[], None]) -> None:
        self._response = response
        self._on_close: Callable[[], None] | None = on_close
        self.status_code: int = response.status
        self.headers: list[tuple[str, str]] = list(response.headers.items())

    async def iter_raw(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise _timeout(exc) from exc
        except aiohttp.ClientError as exc:
            raise _unavailable(exc) from exc

    async def aclose(self) -> None:
        # release(), not close(): a fully read response gives its connection back to the
        # pool (keep-alive); one abandoned mid-body has its connection closed.
        self._response.release()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


# Memory per relayed body against speed of one body. The loop reads whatever the kernel
# holds into aiohttp's buffer, and while the client is slower than compute, each stream
# holds about one such read: so a socket's receive buffer sets both the memory a
# stream costs and the size of the chunks relayed (each chunk costs the same CPU, so
# bigger chunks move more bytes per second). Measured on 1,000 concurrent 256 KiB
# streams and one 1 GiB body: a 16 KiB buffer held ~65 MB in all but relayed 1 GiB at
# ~23 % of direct speed; 64 KiB relayed it at ~60-70 % but held ~150-200 MB.
# So there are two lanes, each a pool whose sockets keep their buffer for life: while
# the process relays only a few bodies, a new request takes the bulk lane; beyond
# that, the narrow one. (Resizing a pooled socket's buffer per request instead stalled
# connections: a TCP window cannot shrink under data already in flight.)
READ_BUFFER_BYTES = 16 * 1024
NARROW_RECEIVE_BUFFER_BYTES = 16 * 1024
BULK_RECEIVE_BUFFER_BYTES = 128 * 1024
BULK_LANE_MAX_ACTIVE = 4


def _socket_factory(receive_buffer_bytes: int) -> Callable[[tuple[Any, ...]], socket.socket]:
    def make_socket(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, *_ = addr_info
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
        return sock

    return make_socket


class AiohttpUpstream:
    def __init__(self, options: ClientSettings) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._options = options
        self._lanes: tuple[Any, Any] | None = None  # (narrow, bulk) sessions
        self._active = 0  # responses sent and not yet closed

    def _session(self, receive_buffer_bytes: int, max_connections: int) -> Any:
        aiohttp = self._aiohttp
        options = self._options
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=max_connections,
                limit_per_host=0,
                force_close=False,
                socket_factory=_socket_factory(receive_buffer_bytes),
            ),
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=options.pool_timeout_s + options.connect_timeout_s,
                sock_connect=options.connect_timeout_s,
                sock_read=options.read_timeout_s,
            ),
            # Upstream cookies are not the proxy's to keep (they would reach other users).
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            read_bufsize=READ_BUFFER_BYTES,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

    def _lane(self) -> Any:
        # aiohttp binds a session to the running loop: create them inside one.
        if self._lanes is None:
            self._lanes = (
                self._session(NARROW_RECEIVE_BUFFER_BYTES, self._options.max_connections),
                self._session(BULK_RECEIVE_BUFFER_BYTES, BULK_LANE_MAX_ACTIVE),
            )
        narrow, bulk = self._lanes
        return bulk if self._active < BULK_LANE_MAX_ACTIVE else narrow

    def _closed(self) -> None:
        self._active -= 1

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> UpstreamResponse:
        aiohttp = self._aiohttp
        session = self._lane()
        self._active += 1  # counted from the choice of lane, so concurrent sends see it
        try:
            try:
                response = await session.request(
                    method, url, headers=dict(headers), data=body or None, allow_redirects=False
                )
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                raise _timeout(exc) from exc
            except aiohttp.ClientError as exc:
                raise _unavailable(exc) from exc
        except BaseException:
            self._closed()  # no response to close later
            raise
        return _AiohttpResponse(response, self._closed)

    async def aclose(self) -> None:
        if self._lanes is not None:
            for session in self._lanes:
                await session.close()
            self._lanes = None


# --- the process's client ---------------------------------------------------------------------
IMPLEMENTATIONS: dict[str, type[HttpxUpstream] | type[AiohttpUpstream]] = {
    "httpx": HttpxUpstream,
    "aiohttp": AiohttpUpstream,
}

_clients: dict[asyncio.AbstractEventLoop, Upstream] = {}


def open_upstream(kind: str | None = None) -> Upstream:
    chosen: str = kind or settings.SIMLAB_PROXY_CLIENT
    return IMPLEMENTATIONS[chosen](ClientSettings.from_settings())


def get_upstream() -> Upstream:
    """The pooled client of the running event loop (one per process under a server)."""
    loop = asyncio.get_running_loop()
    for stale in [other for other in _clients if other.is_closed()]:
        del _clients[stale]  # loops that ended without a lifespan (tests, scripts)
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = open_upstream()
    return client


async def close_upstream() -> None:
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


@asynccontextmanager
async def upstream_lifespan() -> AsyncIterator[None]:
    """Open the client with the application, close its pool with it."""
    get_upstream()
    try:
        yield
    finally:
        await close_upstream()
