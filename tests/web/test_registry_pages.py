"""The status page over a real server: the services a member may see with their state
and uptime (from real checks against a scripted service on loopback), filters and pages,
one service's incidents, checks and latency picture; another organisation's is a 404."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.core.actor import Actor
from simlab.registry.services import service_test_connection
from tests.factories import PASSWORD, member
from tests.http import browser_session
from tests.registry.factories import registered, set_mode
from tests.server import ServedApp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in(asgi_server: ServedApp) -> Iterator[tuple[httpx.Client, Any]]:
    user = member(Role.MEMBER)
    with browser_session(asgi_server.url, user.username, PASSWORD) as client:
        yield client, user.memberships.get().organization


def _row_of(page: str, name: str) -> str:
    found = re.search(rf"<tr>\s*<td><a [^>]*>{re.escape(name)}</a>.*?</tr>", page, re.S)
    assert found is not None, f"no row for {name}"
    return found.group(0)


def test_members_see_their_services_and_shared_ones_with_state_and_uptime(
    signed_in: tuple[httpx.Client, Any], fake: Any
) -> None:
    client, organization = signed_in
    own = registered(
        f"{fake.url}/named/page-own", organization=organization, name="own wes", failure_threshold=1
    )
    shared = registered(f"{fake.url}/named/page-shared", name="shared wes")
    theirs = registered(
        f"{fake.url}/named/page-theirs",
        organization=member().memberships.get().organization,
        name="their wes",
    )
    for service in (own, shared, theirs):
        assert service_test_connection(Actor.system(), service.pk).ok
    set_mode(fake.url, "page-own", "status503")
    assert not service_test_connection(Actor.system(), own.pk).ok

    page = client.get("/services/")
    assert page.status_code == 200
    assert "their wes" not in page.text
    own_row, shared_row = _row_of(page.text, "own wes"), _row_of(page.text, "shared wes")
    assert "status-down" in own_row
    assert "50.00 %" in own_row
    assert "status-up" in shared_row
    assert "100.00 %" in shared_row
    assert "shared</span>" in shared_row

    down = client.get("/services/", params={"status": "down"})
    assert "own wes" in down.text
    assert "shared wes" not in down.text

    detail = client.get(f"/services/{own.pk}/")
    assert detail.status_code == 200
    assert "<td>503</td>" in detail.text  # the failed check, in the latest checks
    assert "<strong>open</strong>" in detail.text  # the outage is an open incident
    picture = client.get(f"/services/{own.pk}/latency.png", params={"range": "24h"})
    assert picture.status_code == 200
    assert picture.content.startswith(b"\x89PNG")

    for path in (f"/services/{theirs.pk}/", f"/services/{theirs.pk}/latency.png"):
        assert client.get(path).status_code == 404


def test_the_list_pages_in_name_order(signed_in: tuple[httpx.Client, Any], fake: Any) -> None:
    client, organization = signed_in
    for index in range(53):
        registered(f"{fake.url}/named/p{index}", organization=organization, name=f"svc {index:02d}")
    first = client.get("/services/")
    names = re.findall(r">(svc \d\d)</a>", first.text)
    assert names == [f"svc {index:02d}" for index in range(50)]
    after = re.search(r'rel="next" href="\?([^"]+)"', first.text)
    assert after is not None
    second = client.get(f"/services/?{after.group(1).replace('&amp;', '&')}")
    assert re.findall(r">(svc \d\d)</a>", second.text) == ["svc 50", "svc 51", "svc 52"]
    assert 'rel="next"' not in second.text
    # A cursor that is not one is the first page, never an error.
    assert client.get("/services/", params={"after": "%%%"}).status_code == 200


def test_a_service_never_checked_has_no_picture_yet(
    signed_in: tuple[httpx.Client, Any], fake: Any
) -> None:
    client, organization = signed_in
    service = registered(f"{fake.url}/named/new", organization=organization, name="new one")
    assert "No checks yet." in client.get(f"/services/{service.pk}/").text
    assert client.get(f"/services/{service.pk}/latency.png").status_code == 404
