"""A deactivated user or a revoked key is refused on every door within the recheck
interval: REST, compute, the proxy, the stream, and sockets already open."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from simlab.accounts import services
from simlab.accounts.models import Role, User
from tests.factories import ProjectFactory, actor_for, api_key_for, member
from tests.http import bearer, obtain_tokens
from tests.server import ServedApp
from tests.ws import open_ws, recv, recv_until_closed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

RECHECK_S = 0.5
# Invalid on purpose: past authentication the stream answers 400 without running anything
# (a first run would wait for the compute pool to start and compile).
STREAM_BODY = {"algorithm": "random_walk", "parameters": {"walkers": 0}}
ACTIVE = {"rest": 200, "compute": 200, "proxy": 200, "stream": 400}


@pytest.fixture
def fast_recheck(settings: Any) -> None:
    settings.SIMLAB_CREDENTIAL_RECHECK_S = RECHECK_S


def _doors(server: ServedApp, headers: dict[str, str]) -> dict[str, int]:
    return {
        "rest": httpx.get(f"{server.url}/api/v1/me/", headers=headers).status_code,
        "compute": httpx.get(f"{server.url}/compute/me", headers=headers).status_code,
        "proxy": httpx.get(f"{server.url}/api/v1/compute/me", headers=headers).status_code,
        "stream": httpx.post(
            f"{server.url}/compute/stream", json=STREAM_BODY, headers=headers
        ).status_code,
    }


def test_a_deactivated_users_jwt_is_refused_everywhere(
    asgi_server: ServedApp, fast_recheck: None, password: str
) -> None:
    user = member(Role.OWNER)
    project = ProjectFactory(organization=user.memberships.get().organization)
    access = obtain_tokens(asgi_server.url, user.username, password)["access"]
    assert _doors(asgi_server, bearer(access)) == ACTIVE

    with open_ws(asgi_server, f"/ws/projects/{project.pk}?token={access}") as ws:
        assert recv(ws)["type"] == "snapshot"
        User.objects.filter(pk=user.pk).update(is_active=False)
        messages, code = recv_until_closed(ws, timeout=30)
    assert code == 1008
    assert messages[-1]["error"]["code"] == "user_inactive"

    time.sleep(RECHECK_S * 2)  # every process's memo of the user has expired
    assert _doors(asgi_server, bearer(access)) == {
        "rest": 401,
        "compute": 401,
        "proxy": 401,
        "stream": 401,
    }
    with open_ws(asgi_server, f"/ws/compute?token={access}") as ws:
        _, code = recv_until_closed(ws, timeout=30)
    assert code == 1008


def test_a_revoked_key_closes_its_open_sockets(asgi_server: ServedApp, fast_recheck: None) -> None:
    user = member(Role.OWNER)
    organization = user.memberships.get().organization
    project = ProjectFactory(organization=organization)
    key, raw = api_key_for(user, organization, scopes=["read", "compute"])
    assert _doors(asgi_server, {"X-API-Key": raw}) == ACTIVE

    with (
        open_ws(asgi_server, f"/ws/projects/{project.pk}?token={raw}") as progress,
        open_ws(asgi_server, f"/ws/compute?token={raw}") as compute,
    ):
        assert recv(progress)["type"] == "snapshot"
        assert recv(compute)["type"] == "ready"
        services.api_key_revoke(actor_for(user), key_id=key.pk)
        progress_messages, progress_code = recv_until_closed(progress, timeout=30)
        compute_messages, compute_code = recv_until_closed(compute, timeout=30)
    assert (progress_code, compute_code) == (1008, 1008)
    assert progress_messages[-1]["error"]["code"] == "api_key_revoked"
    assert compute_messages[-1]["error"]["code"] == "api_key_revoked"
    assert set(_doors(asgi_server, {"X-API-Key": raw}).values()) == {401}
