"""`/ws/registry` on a real server: the services a member may see, then each change of
status as the checks find it (checks made for real against a scripted service)."""

from __future__ import annotations

from typing import Any

import pytest

from simlab.core.actor import Actor
from simlab.registry.services import service_test_connection
from tests.factories import member
from tests.registry.factories import registered, set_mode
from tests.server import ServedApp
from tests.ws import open_ws, recv

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def test_a_member_hears_of_status_changes_of_the_services_they_may_see(
    asgi_server: ServedApp, user: Any, token: str, fake: Any, settings: Any
) -> None:
    settings.SIMLAB_LIVE_POLL_INTERVAL_S = 0.1
    organization = user.memberships.get().organization
    own = registered(
        f"{fake.url}/named/ws-own", organization=organization, name="ws own", failure_threshold=1
    )
    stranger = registered(
        f"{fake.url}/named/ws-theirs",
        organization=member().memberships.get().organization,
        name="ws theirs",
        failure_threshold=1,
    )
    assert service_test_connection(Actor.system(), own.pk).ok

    with open_ws(asgi_server, f"/ws/registry?token={token}") as ws:
        snapshot = recv(ws)
        assert snapshot["type"] == "snapshot"
        assert snapshot["truncated"] is False
        assert [(s["name"], s["status"]) for s in snapshot["services"]] == [("ws own", "up")]

        set_mode(fake.url, "ws-theirs", "status500")
        assert not service_test_connection(Actor.system(), stranger.pk).ok  # not theirs to hear
        set_mode(fake.url, "ws-own", "status503")
        assert not service_test_connection(Actor.system(), own.pk).ok
        change = recv(ws, timeout=10)
        assert change["type"] == "service"
        assert (change["service_id"], change["previous"], change["status"]) == (
            own.pk,
            "up",
            "down",
        )
        assert "503" in change["error"]

        set_mode(fake.url, "ws-own", "ok")
        service_test_connection(Actor.system(), own.pk)
        service_test_connection(Actor.system(), own.pk)  # two passes to be up again
        back = recv(ws, timeout=10)
        assert (back["service_id"], back["previous"], back["status"]) == (own.pk, "down", "up")
