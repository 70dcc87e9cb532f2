"""An MCP client session from the SDK, over streamable HTTP to a served platform."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

T = TypeVar("T")

PATH = "/compute/mcp"


@asynccontextmanager
async def mcp_session(
    base_url: str, token: str | None, *, mode: str = "auto"
) -> AsyncIterator[Client]:
    """`mode`: "auto" (the 2026 protocol, probed) or "legacy" (the initialize handshake
    most clients still use)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(
            streamable_http_client(f"{base_url}{PATH}", http_client=http),
            mode=mode,  # type: ignore[arg-type]
        ) as client,
    ):
        yield client


def run_session(
    base_url: str,
    token: str | None,
    scenario: Callable[[Client], Awaitable[T]],
    *,
    mode: str = "auto",
) -> T:
    """Open a session, run `scenario` in it, close it; from sync test code."""

    async def main() -> T:
        async with mcp_session(base_url, token, mode=mode) as client:
            return await scenario(client)

    return asyncio.run(main())


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")
