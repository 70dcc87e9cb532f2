"""An agent over MCP runs a small DLA on a real worker, follows it with progress
notifications, and sees its picture (tool image content and the picture resource)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from mcp import Client

from tests.compute.mcp.mcp_client import run_session, text_of
from tests.factories import ProjectFactory
from tests.server import ServedApp
from tests.workers import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.timeout(180)]

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_run_wait_with_progress_and_see_the_picture(
    celery_worker: WorkerProcess, asgi_server: ServedApp, user: Any, token: str, mode: str
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)
    reports: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    async def scenario(client: Client) -> dict[str, Any]:
        created = await client.call_tool(
            "run_simulation",
            {"project_id": project.pk, "algorithm": "dla", "parameters": {"n_particles": 20_000}},
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
            "waited": waited,
            "picture": picture,
            "resource": resource,
            "summary": summary,
        }

    out = run_session(asgi_server.url, token, scenario, mode=mode)
    waited = out["waited"]
    assert waited.is_error is False, text_of(waited)
    assert waited.structured_content["finished"] is True, celery_worker.output()
    assert waited.structured_content["status"] == "SUCCEEDED"
    assert json.loads(text_of(waited)) == waited.structured_content

    # Progress notifications arrived before the result, in order, ending at done.
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
