"""The REST door of the registry, over HTTP on a served platform."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simlab.accounts.models import Role
from simlab.registry.scripted import Served, free_port
from tests.factories import PASSWORD, OrganizationFactory, member
from tests.http import assert_envelope, bearer, obtain_tokens
from tests.registry.factories import registered
from tests.server import ServedApp

BASE = "/api/v1/registry/services/"


@pytest.fixture
def admin_client(asgi_server: ServedApp) -> Any:
    admin = member(Role.ADMIN)
    token = obtain_tokens(asgi_server.url, admin.username, PASSWORD)["access"]
    with httpx.Client(base_url=asgi_server.url, headers=bearer(token), timeout=30) as client:
        client.organization_id = admin.memberships.get().organization_id  # type: ignore[attr-defined]
        yield client


def test_register_check_now_and_read_history(admin_client: Any, fake: Served) -> None:
    created = admin_client.post(
        BASE,
        json={
            "organization": admin_client.organization_id,
            "name": "fake wes",
            "url": f"{fake.url}/s/ok/0/1",
            "kind": "ga4gh-wes",
            "interval_s": 120,
            "timeout_s": 5,
            "credentials": {"Authorization": "Bearer secret"},
        },
    )
    assert created.status_code == 201, created.text
    service = created.json()
    assert service["has_credentials"] is True
    assert "credentials" not in service
    assert "credentials_encrypted" not in service
    assert service["state"]["status"] == "unknown"
    tested = admin_client.post(f"{BASE}{service['id']}/test-connection/")
    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] is True
    assert tested.json()["conformant"] is True
    history = admin_client.get(f"{BASE}{service['id']}/history/").json()
    assert history["count"] == 1
    assert history["results"][0]["status_code"] == 200
    assert admin_client.get(f"{BASE}{service['id']}/").json()["state"]["status"] == "up"
    usable = admin_client.get(BASE, params={"usable": "true"}).json()
    assert [s["id"] for s in usable["results"]] == [service["id"]]
    filtered = admin_client.get(
        BASE,
        params={"organization": admin_client.organization_id, "kind": "ga4gh-wes", "status": "up"},
    )
    assert [s["id"] for s in filtered.json()["results"]] == [service["id"]]
    assert admin_client.get(BASE, params={"status": "down"}).json()["count"] == 0
    changed = admin_client.patch(f"{BASE}{service['id']}/", json={"interval_s": 600})
    assert changed.json()["interval_s"] == 600
    assert admin_client.get(f"{BASE}{service['id']}/incidents/").json()["count"] == 0
    assert admin_client.delete(f"{BASE}{service['id']}/").status_code == 204


def create(client: Any, **fields: Any) -> httpx.Response:
    """POST a service in the client's organisation."""
    response: httpx.Response = client.post(
        BASE, json={"organization": client.organization_id, **fields}
    )
    return response


def test_a_dead_service_tested_now_is_a_failed_result_not_an_error(admin_client: Any) -> None:
    created = create(
        admin_client, name="dead", url=f"http://127.0.0.1:{free_port()}", timeout_s=2
    ).json()
    tested = admin_client.post(f"{BASE}{created['id']}/test-connection/")
    assert tested.status_code == 200
    assert tested.json()["ok"] is False
    assert tested.json()["error"].startswith("connection failed")


def test_bad_input_is_a_400_naming_the_fields(admin_client: Any) -> None:
    valid = {"name": "x", "url": "http://h"}
    for change, fields in [
        ({"kind": "ftp"}, {"kind"}),
        ({"interval_s": 10, "timeout_s": 10}, {"timeout_s"}),
        ({"url": "not a url"}, {"url"}),
        ({"notify_apprise": ["json://127.0.0.1/hook", "nosuchscheme://t@h"]}, {"notify_apprise.1"}),
        ({"credentials": {"Bad: name": "x"}}, {"credentials"}),
        ({"credentials": {"X-Token": "a\r\nInjected: yes"}}, {"credentials"}),
    ]:
        response = create(admin_client, **{**valid, **change})
        body = assert_envelope(response, 400, "validation_error")
        assert set(body["error"]["details"]) == fields, change


def test_apprise_urls_are_shown_back_with_their_secrets_masked(admin_client: Any) -> None:
    created = create(
        admin_client,
        name="alerting",
        url="http://127.0.0.1:9/x",
        notify_apprise=["json://ops:hunter2@127.0.0.1:9/alerts"],
    )
    assert created.status_code == 201, created.text
    (shown,) = created.json()["notify_apprise"]
    assert "hunter2" not in created.text
    assert shown.startswith("json://ops:")
    assert "127.0.0.1:9/alerts" in shown
    listed = admin_client.get(BASE).json()["results"]
    assert "hunter2" not in str(listed)


def test_another_organisations_service_is_a_404_on_every_route(admin_client: Any) -> None:
    foreign = registered("http://127.0.0.1:9/x", organization=OrganizationFactory())
    for method, path in [
        ("GET", f"{BASE}{foreign.pk}/"),
        ("PATCH", f"{BASE}{foreign.pk}/"),
        ("DELETE", f"{BASE}{foreign.pk}/"),
        ("POST", f"{BASE}{foreign.pk}/test-connection/"),
        ("GET", f"{BASE}{foreign.pk}/history/"),
        ("GET", f"{BASE}{foreign.pk}/incidents/"),
    ]:
        assert_envelope(admin_client.request(method, path, json={}), 404, "not_found")
    shared = registered("http://127.0.0.1:9/y")
    assert admin_client.get(f"{BASE}{shared.pk}/").status_code == 200
    # Seen, but changed by staff only.
    assert_envelope(admin_client.patch(f"{BASE}{shared.pk}/", json={"name": "n"}), 403)


@pytest.mark.django_db
def test_the_fast_rendering_is_the_serializers_output() -> None:
    from datetime import UTC, datetime

    from simlab.registry.api import ServiceSerializer, service_data
    from simlab.registry.models import Service
    from simlab.registry.probe import ProbeResult
    from simlab.registry.services import checker_record

    service = registered(
        "http://127.0.0.1:9/x",
        organization=OrganizationFactory(),
        tags=["gpu"],
        max_latency_ms=500,
        json_equals={"a.b": 1},
        credentials={"X-Token": "t"},
        notify_apprise=["json://u:secret@127.0.0.1:9/h"],
    )
    checker_record(None, [ProbeResult(service.pk, datetime.now(UTC), False, 1.5, 500, "boom")])
    fresh = Service.objects.select_related("state").get(pk=service.pk)
    assert service_data(fresh) == ServiceSerializer(fresh).data
