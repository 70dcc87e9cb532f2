"""The proxy's pooled upstream clients (`simlab.proxy.upstream`), each against a real
HTTP server on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simlab.proxy.upstream import IMPLEMENTATIONS, open_upstream
from tests.server import serve


async def _cookie_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Sets a cookie on every answer and echoes the Cookie header it was sent."""
    cookie = dict(scope["headers"]).get(b"cookie", b"")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"set-cookie", b"session=someone-elses; Path=/")],
        }
    )
    await send({"type": "http.response.body", "body": cookie})


@pytest.mark.parametrize("kind", sorted(IMPLEMENTATIONS))
def test_upstream_cookies_are_never_sent_on(kind: str) -> None:
    """One pooled client serves every user: a cookie set in one answer must not ride
    along with the next request (someone else's)."""

    async def two_requests(url: str) -> list[bytes]:
        client = open_upstream(kind)
        bodies = []
        try:
            for _ in range(2):
                response = await client.send("GET", f"{url}/any", {}, b"")
                assert response.status_code == 200
                assert any(name.lower() == "set-cookie" for name, _ in response.headers)
                bodies.append(b"".join([chunk async for chunk in response.iter_raw()]))
                await response.aclose()
        finally:
            await client.aclose()
        return bodies

    with serve(_cookie_echo, lifespan="off") as served:
        # By name, not by IP: aiohttp's default jar ignores cookies from IP addresses.
        url = served.url.replace("127.0.0.1", "localhost")
        assert asyncio.run(two_requests(url)) == [b"", b""]
