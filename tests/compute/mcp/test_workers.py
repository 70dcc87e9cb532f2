"""Two server processes behind a round-robin proxy, no sticky sessions: an MCP client
session works with 0 errors although consecutive requests land on different processes
(stateless HTTP; the request-state key is derived from the shared secret)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.compute.mcp.mcp_client import PATH, assert_watched_and_seen, run_watch_and_see, text_of
from tests.factories import ProjectFactory, api_key_for
from tests.workers import WorkerProcess, platform_processes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

CALLS = 12


class RoundRobinProxy:
    """A TCP proxy giving each new connection to the next backend in turn."""

    def __init__(self, ports: list[int]) -> None:
        self._next = itertools.cycle(ports)
        self.connections = dict.fromkeys(ports, 0)

    async def start(self) -> tuple[asyncio.Server, int]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return server, server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = next(self._next)
        self.connections[port] += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_session_through_a_round_robin_proxy_over_two_processes(
    celery_worker: WorkerProcess, user: Any, mode: str
) -> None:
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    _, raw = api_key_for(user, organization)

    async def scenario(ports: list[int]) -> tuple[list[Any], dict[int, int], dict[str, Any]]:
        proxy = RoundRobinProxy(ports)
        server, port = await proxy.start()
        # No keep-alive: every request is a new connection, so the proxy alternates
        # processes request by request, the worst case for a stateful server.
        http = httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {raw}"},
            limits=httpx2.Limits(max_keepalive_connections=0),
            timeout=httpx2.Timeout(30, read=120),
        )
        results: list[Any] = []
        async with (
            server,
            http,
            Client(
                streamable_http_client(f"http://127.0.0.1:{port}{PATH}", http_client=http)
            ) as client,
        ):
            results.append(await client.list_tools())
            for seed in range(CALLS):
                created = await client.call_tool(
                    "run_simulation",
                    {"project_id": project.pk, "algorithm": "dla", "seed": seed},
                )
                results.append(created)
                if not created.is_error:
                    results.append(
                        await client.call_tool(
                            "get_simulation", {"simulation_id": created.structured_content["id"]}
                        )
                    )
            watched = await run_watch_and_see(client, project.pk)
        return results, proxy.connections, watched

    with platform_processes(2) as processes:
        ports = [one.port for one in processes]
        results, connections, watched = asyncio.run(scenario(ports))
    errors = [text_of(r) for r in results[1:] if r.is_error]
    assert errors == []
    assert len(results) == 1 + 2 * CALLS
    # A run followed with progress notifications and its picture read, through the
    # round-robin proxy too (a long call's stream stays on its own connection).
    assert_watched_and_seen(watched, celery_worker.output())
    # Both processes answered a fair share.
    assert min(connections.values()) >= CALLS
