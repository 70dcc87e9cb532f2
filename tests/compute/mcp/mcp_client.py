"""An MCP client session from the SDK, over streamable HTTP to a served platform."""

from __future__ import annotations

import asyncio
import base64
import json
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


PNG = b"\x89PNG\r\n\x1a\n"


async def run_watch_and_see(client: Client, project_id: int) -> dict[str, Any]:
    """What an agent does with a run: start a small DLA, wait for it with progress
    notifications, take its picture (tool and resource) and its summary resource."""
    reports: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    created = await client.call_tool(
        "run_simulation",
        {"project_id": project_id, "algorithm": "dla", "parameters": {"n_particles": 20_000}},
    )
    assert created.is_error is False, text_of(created)
    simulation_id = created.structured_content["id"]
    waited = await client.call_tool(
        "wait_for_simulation",
        {"simulation_id": simulation_id, "timeout_s": 150},
        progress_callback=on_progress,
    )
    picture = await client.call_tool("get_result_picture", {"simulation_id": simulation_id})
    resource = await client.read_resource(f"simlab://simulations/{simulation_id}/picture")
    summary = await client.read_resource(f"simlab://simulations/{simulation_id}")
    return {
        "id": simulation_id,
        "reports": reports,
        "waited": waited,
        "picture": picture,
        "resource": resource,
        "summary": summary,
    }


def assert_watched_and_seen(out: dict[str, Any], worker_output: str = "") -> None:
    """The run succeeded, its progress came in order up to done, its picture is a PNG
    (the same as the tool's and the resource's), its summary names it."""
    waited = out["waited"]
    assert waited.is_error is False, text_of(waited)
    assert waited.structured_content["finished"] is True, worker_output
    assert waited.structured_content["status"] == "SUCCEEDED"
    assert json.loads(text_of(waited)) == waited.structured_content

    reports = out["reports"]
    assert reports, "no progress notification"
    done = [report[0] for report in reports]
    assert done == sorted(done)
    assert reports[-1][:2] == (1.0, 1.0)
    assert reports[-1][2] == "SUCCEEDED"

    picture = out["picture"]
    assert picture.is_error is False, text_of(picture)
    (image,) = [block for block in picture.content if block.type == "image"]
    assert image.mime_type == "image/png"
    data = base64.b64decode(image.data)
    assert data.startswith(PNG)
    assert picture.structured_content["bytes"] == len(data)

    (blob,) = out["resource"].contents
    assert blob.mime_type == "image/png"
    assert base64.b64decode(blob.blob) == data
    (text,) = out["summary"].contents
    assert json.loads(text.text)["id"] == out["id"]
