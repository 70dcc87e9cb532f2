"""`simlab mcp`: the same server over stdio, driven by the SDK's stdio client, acting
as the owner of an API key on this machine's database."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.simulations.models import Simulation
from simlab.tools import tools
from tests.compute.mcp.mcp_client import text_of
from tests.factories import ProjectFactory, api_key_for
from tests.workers import ROOT, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _server(**env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "simlab.cli", "mcp"], env=worker_env(**env), cwd=ROOT
    )


def test_stdio_server_lists_the_tools_and_runs_one_as_the_key(user: Any) -> None:
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    key, raw = api_key_for(user, organization)

    async def scenario() -> tuple[Any, Any, Any]:
        async with Client(_server(SIMLAB_API_KEY=raw)) as client:
            listed = await client.list_tools()
            created = await client.call_tool(
                "run_simulation", {"project_id": project.pk, "algorithm": "dla"}
            )
            refused = await client.call_tool("get_simulation", {"simulation_id": 10**9})
            return listed, created, refused

    listed, created, refused = asyncio.run(scenario())
    assert {t.name for t in listed.tools} == set(tools())
    assert created.is_error is False, text_of(created)
    simulation = Simulation.objects.get(pk=created.structured_content["id"])
    assert simulation.project_id == project.pk
    row = AuditLog.objects.get(object_id=str(simulation.pk), action__startswith="simulation")
    assert (row.source, row.actor_id, row.api_key_id) == (Source.MCP, user.pk, key.pk)
    assert refused.is_error is True
    assert refused.structured_content["error"]["code"] == "not_found"


def test_stdio_server_refuses_to_start_without_a_usable_key() -> None:
    env = worker_env()
    env.pop("SIMLAB_API_KEY", None)
    missing = subprocess.run(
        [sys.executable, "-m", "simlab.cli", "mcp"], env=env, cwd=ROOT, capture_output=True
    )
    assert missing.returncode == 2
    assert b"SIMLAB_API_KEY" in missing.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "simlab.cli", "mcp", "--api-key", "slk_nothing"],
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    assert bad.returncode == 1
    assert b"invalid" in bad.stderr
    assert bad.stdout == b""  # stdout is the protocol's: nothing else is written there
