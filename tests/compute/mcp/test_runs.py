"""An agent over MCP runs a small DLA on a real worker, follows it with progress
notifications, and sees its picture (tool image content and the picture resource)."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from tests.compute.mcp.mcp_client import assert_watched_and_seen, run_session, run_watch_and_see
from tests.factories import ProjectFactory
from tests.server import ServedApp
from tests.workers import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.timeout(180)]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_run_wait_with_progress_and_see_the_picture(
    celery_worker: WorkerProcess, asgi_server: ServedApp, user: Any, token: str, mode: str
) -> None:
    project = ProjectFactory(organization=user.memberships.get().organization)

    async def scenario(client: Client) -> dict[str, Any]:
        return await run_watch_and_see(client, project.pk)

    out = run_session(asgi_server.url, token, scenario, mode=mode)
    assert_watched_and_seen(out, celery_worker.output())
