"""/compute/mcp with the SDK's own client, on the served platform: tools from the
registry, SimLab's credentials, refusals as tool errors, audit rows with source `mcp`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from simlab.accounts.models import Role
from simlab.audit.models import AuditLog
from simlab.core.actor import Source
from simlab.simulations import services
from simlab.simulations.models import Simulation
from simlab.tools import tools
from tests.compute.mcp.mcp_client import PATH, run_session, text_of
from tests.factories import PASSWORD, ProjectFactory, actor_for, api_key_for, member
from tests.http import obtain_tokens
from tests.server import ServedApp

pytestmark = pytest.mark.timeout(120)


def _organization(user: Any) -> Any:
    return user.memberships.get().organization


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_every_registry_tool_is_listed_with_its_schema(
    asgi_server: ServedApp, token: str, mode: str
) -> None:
    async def scenario(client: Client) -> tuple[Any, Any, Any]:
        return (
            await client.list_tools(),
            await client.list_resource_templates(),
            await client.list_prompts(),
        )

    listed, templates, prompts = run_session(asgi_server.url, token, scenario, mode=mode)
    registry = tools()
    assert {t.name for t in listed.tools} == set(registry)
    for mcp_tool in listed.tools:
        assert mcp_tool.input_schema == registry[mcp_tool.name].json_schema()
        assert mcp_tool.description == registry[mcp_tool.name].description
        assert mcp_tool.annotations.read_only_hint == registry[mcp_tool.name].read_only
    assert {t.uri_template for t in templates.resource_templates} == {
        "simlab://simulations/{simulation_id}",
        "simlab://simulations/{simulation_id}/picture",
        "simlab://sweeps/{sweep_id}/results",
    }
    assert {p.name for p in prompts.prompts} >= {"parameter_study"}


def test_without_a_token_401_points_to_the_resource_metadata(asgi_server: ServedApp) -> None:
    response = httpx.post(
        f"{asgi_server.url}{PATH}",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream"},
    )
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    metadata_url = "http://127.0.0.1:8000/.well-known/oauth-protected-resource/compute/mcp"
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{metadata_url}"' in challenge

    metadata = httpx.get(f"{asgi_server.url}/.well-known/oauth-protected-resource/compute/mcp")
    assert metadata.status_code == 200
    body = metadata.json()
    assert body["resource"] == "http://127.0.0.1:8000/compute/mcp"
    assert body["authorization_servers"] == ["http://127.0.0.1:8000"]
    assert body["scopes_supported"] == ["read"]


def test_a_call_without_a_progress_token_is_answered_in_json_and_one_with_it_in_sse(
    asgi_server: ServedApp, token: str
) -> None:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    call: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "list_algorithms", "arguments": {}},
    }
    plain = httpx.post(f"{asgi_server.url}{PATH}", json=call, headers=headers)
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["id"] == 7
    assert not plain.json()["result"].get("isError")

    call["params"]["_meta"] = {"progressToken": "p-1"}
    streamed = httpx.post(f"{asgi_server.url}{PATH}", json=call, headers=headers)
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert '"id":7' in streamed.text

    broken = httpx.post(
        f"{asgi_server.url}{PATH}",
        content=b'{"jsonrpc": "2.0", "id": 8, "method": ',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert "Parse error" in broken.text


def test_a_bad_token_is_refused_like_none(asgi_server: ServedApp) -> None:
    response = httpx.post(
        f"{asgi_server.url}{PATH}",
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Authorization": "Bearer slk_nothing", "Accept": "application/json"},
    )
    assert response.status_code == 401
    assert "resource_metadata=" in response.headers["www-authenticate"]


def test_another_organisations_simulation_is_not_found(asgi_server: ServedApp, token: str) -> None:
    stranger = member()
    project = ProjectFactory(organization=_organization(stranger))
    theirs = services.simulation_create(
        actor_for(stranger), project_id=project.pk, algorithm="dla", queue=False
    )

    async def scenario(client: Client) -> tuple[Any, BaseException | None]:
        result = await client.call_tool("get_simulation", {"simulation_id": theirs.pk})
        try:
            await client.read_resource(f"simlab://simulations/{theirs.pk}")
        except MCPError as exc:
            return result, exc
        return result, None

    result, resource_error = run_session(asgi_server.url, token, scenario)
    assert result.is_error is True
    assert result.structured_content["error"]["code"] == "not_found"
    assert text_of(result) == "No such simulation."
    assert resource_error is not None


def test_a_viewer_may_read_but_not_run(asgi_server: ServedApp, user: Any) -> None:
    organization = _organization(user)
    project = ProjectFactory(organization=organization)
    viewer = member(Role.VIEWER, organization)
    viewer_token = obtain_tokens(asgi_server.url, viewer.username, PASSWORD)["access"]

    async def scenario(client: Client) -> tuple[Any, Any]:
        run = await client.call_tool(
            "run_simulation", {"project_id": project.pk, "algorithm": "dla"}
        )
        listing = await client.call_tool("list_simulations", {"project_id": project.pk})
        return run, listing

    run, listing = run_session(asgi_server.url, viewer_token, scenario)
    assert run.is_error is True
    assert run.structured_content["error"]["status_code"] == 403
    assert listing.is_error is False
    assert listing.structured_content["count"] == 0
    assert not Simulation.objects.filter(project=project).exists()


def test_bad_arguments_are_a_tool_error_naming_the_field(
    asgi_server: ServedApp, token: str
) -> None:
    async def scenario(client: Client) -> Any:
        return await client.call_tool("get_simulation", {"simulation_id": "seven"})

    result = run_session(asgi_server.url, token, scenario)
    assert result.is_error is True
    assert "simulation_id" in text_of(result)


def test_tool_calls_with_an_api_key_leave_audit_rows_with_source_mcp(
    asgi_server: ServedApp, user: Any
) -> None:
    organization = _organization(user)
    project = ProjectFactory(organization=organization)
    key, raw = api_key_for(user, organization)

    async def scenario(client: Client) -> list[Any]:
        created = await client.call_tool(
            "run_simulation", {"project_id": project.pk, "algorithm": "dla", "seed": 7}
        )
        cancelled = await client.call_tool(
            "cancel_simulation", {"simulation_id": created.structured_content["id"]}
        )
        return [created, cancelled]

    created, cancelled = run_session(asgi_server.url, raw, scenario)
    assert created.is_error is False, text_of(created)
    assert cancelled.is_error is False, text_of(cancelled)
    simulation_id = created.structured_content["id"]
    rows = list(AuditLog.objects.filter(object_id=str(simulation_id)).order_by("created_at"))
    assert len(rows) >= 2
    for row in rows:
        assert row.source == Source.MCP
        assert row.actor_id == user.pk
        assert row.api_key_id == key.pk
        assert row.ip == "127.0.0.1"
        assert row.request_id
    # One call, one request id: the two calls' rows are told apart.
    assert rows[0].request_id != rows[-1].request_id
